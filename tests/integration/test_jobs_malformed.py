"""Malformed requests: every method answers 4294967296 and nothing changes; an invalid
station configuration event is rejected with an error event."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from microdcs.app.config import AppConfig
from tests.conftest import running
from tests.integration.test_jobs_helpers import (
    INVALID,
    METHODS,
    QUERIES,
    Station,
    next_json,
    state_numbers,
)
from tests.mesclient import MesClient, next_message

BAD_PAYLOADS = {
    "not-json": b"{nope",
    "not-an-object": b"[1, 2]",
    "missing-fields": b"{}",
    "wrong-types": b'{"JobOrder": 5, "JobOrderID": 7, "JobOrderState": "x"}',
    "empty-id": b'{"JobOrder": {"JobOrderID": ""}, "JobOrderID": ""}',
}


@pytest.fixture
async def station(config: AppConfig) -> AsyncIterator[Station]:
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        yield Station(mes, config.jobs_prefix, runtime)


@pytest.mark.parametrize("payload", BAD_PAYLOADS.values(), ids=BAD_PAYLOADS.keys())
async def test_every_method_answers_invalid_request_and_changes_nothing(
    station: Station, payload: bytes
) -> None:
    assert await station.store("J1") == 1
    events = await station.watch("events")
    for method in METHODS + QUERIES:
        reply = await station.call_raw(method, payload=payload)
        assert reply.json()["ReturnStatus"] == INVALID, method
        assert reply.attributes["type"].split(".")[-2] == method
    assert await station.do("Start", "J1") == 1  # J1 untouched: still NotAllowedToStart
    assert state_numbers((await next_json(events))["JobState"]) == [2, 2]


@pytest.mark.parametrize("job_id", ["", "a/b", "a+b", "a#b", "/", "#", "a\x00b"])
@pytest.mark.parametrize("method", ["Store", "StoreAndStart"])
async def test_job_ids_unusable_as_topic_level_are_rejected_as_invalid(
    station: Station, method: str, job_id: str
) -> None:
    order = await station.watch("order/#")
    assert await station.store(job_id, method) == INVALID
    assert await station.store("ok", method) == 1  # the scope still accepts usable IDs
    stored = await next_message(order)
    assert stored.topic == f"{station.base}/order/ok"


@pytest.mark.parametrize(
    ("kind", "data", "method"),
    [
        ("equipment", {"ID": ""}, None),
        ("equipment", {"ID": "EQ-1"}, "PATCH"),
        ("personnel", {}, None),
        ("workmaster", {"ID": "WM", "data": {"x": 1}}, None),
        ("jobacceptance", {"max_downloadable_job_orders": -1}, None),
        ("jobacceptance", {"max_downloadable_job_orders": "many"}, None),
    ],
)
async def test_invalid_configuration_gets_error_event_and_changes_nothing(
    station: Station, kind: str, data: object, method: str | None
) -> None:
    events = await station.watch("events")
    await station.configure(kind, data, method=method)
    error = await next_message(events)
    assert error.attributes["mdcserrorkind"] in ("invalid_request", "invalid_payload")
    assert error.attributes["type"].endswith(f"config.{kind}.v1")
    assert await station.store("J1", EquipmentRequirements=[{"ID": "EQ-1"}]) == 16
    assert await station.store("J1", WorkMasterID=[{"ID": "WM"}]) == 16
    assert await station.store("J1") == 1
    assert await station.store("J2") == 1  # no limit was set
