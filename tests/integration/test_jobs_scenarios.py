"""Acceptance scenarios 1-14 of job management, black-box over a real broker and Redis
with a plain MQTT client as the MES."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from microdcs.app.config import AppConfig
from tests.conftest import running
from tests.integration.test_jobs_helpers import (
    INVALID,
    JC,
    SCOPE,
    STATUS_EVENT,
    Station,
    next_json,
    retained_until,
    state_numbers,
)
from tests.mesclient import MesClient, next_message


@pytest.fixture
async def station(config: AppConfig) -> AsyncIterator[Station]:
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        yield Station(mes, config.jobs_prefix, runtime)


async def running_job(station: Station, job_id: str = "J1") -> None:
    assert await station.store(job_id, "StoreAndStart") == 1  # no recipe: runs at once


async def test_1_store_answers_raises_status_event_and_retains_order(station: Station) -> None:
    events = await station.watch("events")
    order = await station.watch("order/J1")
    reply = await station.call_raw(
        "Store", {"JobOrder": {"JobOrderID": "J1", "Priority": 3}},
        correlation_data=b"\x01corr", event_id="req-1",
    )  # fmt: skip
    assert reply.json() == {"ReturnStatus": 1}
    assert reply.attributes["type"] == f"{JC}.Store.v2"
    assert reply.attributes["dataschema"].endswith("#/$defs/StoreResponse")
    assert reply.correlation_data == b"\x01corr"
    assert reply.attributes["causationid"] == "req-1"
    assert reply.attributes["subject"] == SCOPE
    event = await next_message(events)
    assert event.attributes["type"] == STATUS_EVENT
    assert state_numbers(event.json()["JobState"]) == [1, 2]
    assert event.json()["JobOrder"]["JobOrderID"] == "J1"
    retained = await next_message(order)
    assert retained.retain or retained.topic.endswith("order/J1")
    assert retained.json()["JobOrder"] == {"JobOrderID": "J1", "Priority": 3}
    assert state_numbers(retained.json()["State"]) == [1, 2]
    assert retained.expiry is not None and retained.expiry > 172000


async def test_2_store_without_job_order_is_invalid_and_stores_nothing(station: Station) -> None:
    events = await station.watch("events")
    reply = await station.call_raw("Store", {"Comment": []})
    assert reply.json()["ReturnStatus"] == INVALID
    assert reply.attributes["mdcserrorkind"] == "invalid_payload"
    assert await station.do("Start", "J1") == 2
    assert await station.store("J2") == 1
    assert (await next_json(events))["JobOrder"]["JobOrderID"] == "J2"  # the first event


async def test_3_unknown_work_master_is_refused_until_configured(station: Station) -> None:
    wm = {"WorkMasterID": [{"ID": "WM-X"}]}
    assert await station.store("J1", **wm) == 16
    await station.configure("workmaster", {"ID": "WM-X", "Description": {"Text": "x"}})
    assert await station.store("J1", **wm) == 1


async def test_4_deleted_equipment_is_refused(station: Station) -> None:
    needs = {"EquipmentRequirements": [{"ID": "EQ-1"}]}
    await station.configure("equipment", {"ID": "EQ-1"})
    assert await station.store("J1", **needs) == 1
    await station.configure("equipment", {"ID": "EQ-1"}, method="DELETE")
    assert await station.store("J2", **needs) == 16


async def test_5_store_and_start_allows_start(station: Station) -> None:
    events = await station.watch("events")
    await station.configure("workmaster", holding_work_master())
    job = {"WorkMasterID": [{"ID": "WM-R"}], "StartTime": tomorrow()}
    assert await station.store("J1", "StoreAndStart", **job) == 1
    # Ready, then Waiting: the dispatcher holds it until its StartTime (the engine is on).
    states = [state_numbers((await next_json(events))["JobState"]) for _ in range(2)]
    assert states == [[2, 2], [2, 1]]


def holding_work_master() -> dict[str, object]:
    """A work master with a valid one-step recipe (its jobs go through the SFC engine)."""
    from microdcs.jobs.contract import SFC_RECIPE_SCHEMA

    recipe = {"Steps": [{"Name": "only", "Initial": True}], "Transitions": []}
    return {"ID": "WM-R", "data": recipe, "dataschema": SFC_RECIPE_SCHEMA}


def tomorrow() -> str:
    """A StartTime the dispatcher waits for: the job stays AllowedToStart in the test."""
    return (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")


async def test_6_start_rules(station: Station) -> None:
    events = await station.watch("events")
    assert await station.store("J1") == 1
    assert await station.do("Start", "J1") == 1
    states = [state_numbers((await next_json(events))["JobState"]) for _ in range(3)]
    assert states == [[1, 2], [2, 2], [3]]  # no recipe: the start policy runs it at once
    assert await station.do("Start", "nope") == 2
    reply = await station.call_raw("Start", {"Comment": []})
    assert reply.json()["ReturnStatus"] == INVALID
    assert await station.do("Start", "J1") == 8
    assert await station.store("J9") == 1
    assert (await next_json(events))["JobOrder"]["JobOrderID"] == "J9"  # no event in between


async def test_7_pause_resume_stop(station: Station) -> None:
    events = await station.watch("events")
    await running_job(station)
    assert await station.do("Pause", "J1") == 1
    assert await station.do("Resume", "J1") == 1
    assert await station.do("Stop", "J1") == 1
    states = [state_numbers((await next_json(events))["JobState"]) for _ in range(5)]
    assert states == [[2, 2], [3], [4, 1], [3], [5, 1]]
    assert await station.store("J2") == 1
    assert await station.do("Pause", "J2") == 8


async def test_8_cancel_removes_job_and_retained_order(station: Station) -> None:
    order = await station.watch("order/J1")
    index = await station.watch("state-index")
    assert await station.store("J1") == 1
    await retained_until(order, lambda m: m.payload)
    assert await station.do("Cancel", "J1") == 1
    await retained_until(order, lambda m: m.payload == b"")
    latest = await retained_until(index, lambda m: not m.json()["jobs"])
    assert latest.json()["scope"] == SCOPE
    assert await station.do("Start", "J1") == 2
    assert await station.store("J2", "StoreAndStart", StartTime=tomorrow()) == 1
    assert await station.do("Cancel", "J2") == 1  # AllowedToStart: it waits for tomorrow
    assert await station.store("J3", "StoreAndStart") == 1
    assert await station.do("Cancel", "J3") == 8  # running


async def test_9_clear_removes_order_and_result(station: Station) -> None:
    order = await station.watch("order/J1")
    result = await station.watch("result/J1")
    await running_job(station)
    assert await station.do("Clear", "J1") == 8
    assert await station.do("Stop", "J1") == 1
    ended = await retained_until(
        result, lambda m: m.payload and m.json()["JobState"][0]["StateNumber"] == 5
    )
    assert state_numbers(ended.json()["JobState"]) == [5, 1]
    assert await station.do("Clear", "J1") == 1
    await retained_until(order, lambda m: m.payload == b"")
    await retained_until(result, lambda m: m.payload == b"")
    assert await station.store("J2") == 1
    assert await station.do("Abort", "J2") == 1
    assert await station.do("Clear", "J2") == 1


async def test_10_revoke_start(station: Station) -> None:
    assert await station.store("J1", "StoreAndStart", WorkMasterID=[]) == 1  # runs
    assert await station.store("J2") == 1
    assert await station.do("RevokeStart", "J2") == 8
    assert await station.do("Start", "J2") == 1  # waits: the station's one slot is taken
    assert await station.do("RevokeStart", "J2") == 1
    assert await station.do("RevokeStart", "J2") == 8


async def test_10_revoke_start_from_allowed_to_start(station: Station) -> None:
    events = await station.watch("events")
    await station.configure("workmaster", holding_work_master())
    job = {"WorkMasterID": [{"ID": "WM-R"}], "StartTime": tomorrow()}
    assert await station.store("J1", "StoreAndStart", **job) == 1
    assert await station.do("RevokeStart", "J1") == 1
    states = [state_numbers((await next_json(events))["JobState"]) for _ in range(3)]
    assert states == [[2, 2], [2, 1], [1, 2]]


async def test_11_update(station: Station) -> None:
    order = await station.watch("order/J1")
    assert await station.store("J1", Priority=1) == 1
    assert await station.store("J1", "Update", Priority=7) == 1
    updated = await retained_until(order, lambda m: m.json()["JobOrder"].get("Priority") == 7)
    assert state_numbers(updated.json()["State"]) == [1, 2]
    assert await station.store("nope", "Update") == 2
    assert await station.store("J1", "Update", Priority=2, StartTime=tomorrow()) == 1
    assert await station.do("Start", "J1") == 1  # AllowedToStart until tomorrow
    assert await station.store("J1", "Update", Priority=3, StartTime=tomorrow()) == 1
    updated = await retained_until(order, lambda m: m.json()["JobOrder"].get("Priority") == 3)
    assert updated.json()["State"][0]["StateNumber"] == 2
    assert await station.store("J2", "StoreAndStart") == 1  # runs
    assert await station.store("J2", "Update", Priority=9) == 8


@pytest.mark.parametrize("where", ["NotAllowedToStart", "AllowedToStart", "Running", "Interrupted"])
async def test_12_abort_from_every_active_state(config: AppConfig, where: str) -> None:
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        await station.configure("workmaster", holding_work_master())
        if where == "AllowedToStart":
            job = {"WorkMasterID": [{"ID": "WM-R"}], "StartTime": tomorrow()}
            assert await station.store("J1", "StoreAndStart", **job) == 1
        elif where == "NotAllowedToStart":
            assert await station.store("J1") == 1
        else:
            await running_job(station)
            if where == "Interrupted":
                assert await station.do("Pause", "J1") == 1
        events = await station.watch("events")
        assert await station.do("Abort", "J1") == 1
        event = await next_json(events)
        assert state_numbers(event["JobState"]) == [6]
        assert state_numbers(event["JobResponse"]["JobState"]) == [6]
        assert await station.do("Abort", "J1") == 8


async def test_13_job_response_by_id(station: Station) -> None:
    assert await station.store("J1") == 1
    never = await station.call_raw("RequestJobResponseByJobOrderID", {"JobOrderID": "J1"})
    assert never.json()["ReturnStatus"] == 2
    assert await station.store("J2", "StoreAndStart") == 1
    assert await station.do("Stop", "J2") == 1
    ended = await station.call_raw("RequestJobResponseByJobOrderID", {"JobOrderID": "J2"})
    assert ended.json()["ReturnStatus"] == 1
    response = ended.json()["JobResponse"]
    assert response["JobOrderID"] == "J2"
    assert state_numbers(response["JobState"]) == [5, 1]
    assert response["StartTime"] <= response["EndTime"]


async def test_13_job_responses_by_state(station: Station) -> None:
    for job_id in ("A", "B", "C"):
        assert await station.store(job_id, "StoreAndStart") == 1
    assert await station.do("Stop", "A") == 1
    assert await station.do("Abort", "B") == 1
    ended = await station.call_raw(
        "RequestJobResponseByJobOrderState", {"JobOrderState": [{"StateNumber": 5}]}
    )
    assert ended.json()["ReturnStatus"] == 1
    assert [r["JobOrderID"] for r in ended.json()["JobResponses"]] == ["A"]
    empty = await station.call_raw("RequestJobResponseByJobOrderState", {"JobOrderState": []})
    assert empty.json()["ReturnStatus"] == INVALID


async def test_14_job_acceptance_limit(station: Station) -> None:
    await station.configure("jobacceptance", {"max_downloadable_job_orders": 1})
    assert await station.store("J1") == 1
    assert await station.store("J2") == 16
    assert await station.do("Cancel", "J1") == 1
    assert await station.store("J2") == 1
