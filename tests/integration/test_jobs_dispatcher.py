"""The station dispatcher, black-box over a real broker and Redis with a plain MQTT MES:
a scope runs ``max_running_jobs`` jobs at a time, waiting jobs start by Priority, StartTime
and Start, a StartTime is met to the second (also after the accepting replica died), and
replicas racing for one slot never both fill it. Also the substates the dispatcher and
the runtime use: Waiting/Ready, Held/Suspended, Completed/Closed."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from microdcs.app.config import AppConfig
from microdcs.app.runtime import Runtime
from microdcs.jobs.contract import SFC_RECIPE_SCHEMA
from tests.conftest import running
from tests.integration.test_jobs_helpers import (
    SCOPE,
    STATUS_EVENT,
    Station,
    next_json,
    start_replica,
    state_numbers,
)
from tests.mesclient import MesClient, Received, next_message


@pytest.fixture
async def station(config: AppConfig) -> AsyncIterator[Station]:
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        yield Station(mes, config.jobs_prefix, runtime)


def at(seconds: float) -> str:
    """A StartTime ``seconds`` from now (ISO 8601, UTC, ms)."""
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def states_of(runtime: Runtime, *job_ids: str) -> list[list[int]]:
    """The stored [state, substate] of each job (what the status events also carry)."""
    out = []
    for job_id in job_ids:
        record = await runtime.jobs.jobs.listed(SCOPE, job_id)
        assert record is not None, job_id
        out.append(state_numbers(record.status.to_wire()))
    return out


async def event_of(events: asyncio.Queue[Received], job_id: str, state: list[int]) -> float:
    """Wait for the status event putting ``job_id`` into ``state``; its arrival time."""
    async with asyncio.timeout(15):
        while True:
            data = (await events.get()).json()
            if (
                data["JobOrder"]["JobOrderID"] == job_id
                and state_numbers(data["JobState"]) == state
            ):
                return time.time()


async def test_second_job_waits_in_allowed_to_start_until_the_first_ends(station: Station) -> None:
    assert station.runtime is not None
    events = await station.watch("events")
    for job_id in ("J1", "J2", "J3"):
        assert await station.store(job_id, "StoreAndStart") == 1
    # J1 runs; J2 is next (Ready); J3 waits behind it (Waiting).
    assert await states_of(station.runtime, "J1", "J2", "J3") == [[3], [2, 2], [2, 1]]
    seen = [
        (e["JobOrder"]["JobOrderID"], state_numbers(e["JobState"]))
        for e in [await next_json(events) for _ in range(5)]
    ]
    assert seen == [("J1", [2, 2]), ("J1", [3]), ("J2", [2, 2]), ("J3", [2, 2]), ("J3", [2, 1])]
    assert await station.do("RevokeStart", "J2") == 1  # a waiting job can be revoked: not 8
    assert await station.do("Start", "J2") == 1  # back in line, behind J3 now
    assert await states_of(station.runtime, "J2", "J3") == [[2, 1], [2, 2]]
    assert await station.do("Stop", "J1") == 1
    assert await states_of(station.runtime, "J1", "J2", "J3") == [[5, 1], [2, 2], [3]]


async def test_waiting_jobs_start_by_priority_then_start_time_then_start(
    station: Station,
) -> None:
    assert station.runtime is not None
    assert await station.store("J0", "StoreAndStart") == 1  # holds the slot
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    orders: list[tuple[str, dict[str, Any]]] = [
        ("low", {"Priority": 5}),
        ("high-late", {"Priority": 1}),
        ("mid", {"Priority": 3}),
        ("high-early", {"Priority": 1, "StartTime": past}),  # same Priority, earlier StartTime
    ]
    for job_id, fields in orders:
        assert await station.store(job_id, "StoreAndStart", **fields) == 1
    started = []
    running_job = "J0"
    for _ in orders:
        assert await station.do("Stop", running_job) == 1
        running_now = [
            job_id for job_id, _ in orders if (await states_of(station.runtime, job_id))[0] == [3]
        ]
        assert len(running_now) == 1
        running_job = running_now[0]
        started.append(running_job)
    assert started == ["high-early", "high-late", "mid", "low"]


async def test_start_time_ahead_waits_and_starts_within_a_second_of_it(station: Station) -> None:
    assert station.runtime is not None
    events = await station.watch("events")
    start_time = time.time() + 2.5
    when = datetime.fromtimestamp(start_time, UTC).isoformat(timespec="milliseconds")
    assert await station.store("J1", "StoreAndStart", StartTime=when) == 1
    assert await states_of(station.runtime, "J1") == [[2, 1]]  # Waiting for its StartTime
    started = await event_of(events, "J1", [3])
    assert start_time <= started + 0.05  # not before it (clocks of one host)
    assert started - start_time < 1.0


async def test_start_time_is_met_when_the_accepting_replica_was_killed(
    config: AppConfig, tmp_path: Path
) -> None:
    """The due time lives in Redis: a replica started later starts the job on time."""
    victim = start_replica(config, tmp_path)
    try:
        async with MesClient(config.mqtt.port) as mes:
            station = Station(mes, config.jobs_prefix, None)
            events = await station.watch("events")
            query = "org.opcfoundation.Machinery.Jobs.RequestJobResponseByJobOrderID.v1"
            async with asyncio.timeout(30):
                while True:  # until the victim answers: it is up and subscribed
                    try:
                        await mes.request(station.commands, query, {"JobOrderID": "x"}, timeout=0.5)
                        break
                    except TimeoutError:
                        continue
            start_time = time.time() + 6
            when = datetime.fromtimestamp(start_time, UTC).isoformat(timespec="milliseconds")
            assert await station.store("J1", "StoreAndStart", StartTime=when) == 1
            victim.send_signal(signal.SIGKILL)
            await asyncio.to_thread(victim.wait, 10)
            other = replace(config, instance_id=config.instance_id + "-survivor")
            async with running(other):
                started = await event_of(events, "J1", [3])
            assert start_time <= started + 0.05
            assert started - start_time < 1.0
    finally:
        victim.kill()


async def test_two_replicas_racing_for_one_slot_never_start_two_jobs(config: AppConfig) -> None:
    other = replace(config, instance_id=config.instance_id + "-b")
    async with (
        running(config) as first,
        running(other) as second,
        MesClient(config.mqtt.port) as mes,
    ):
        station = Station(mes, config.jobs_prefix, first)
        dispatchers = [first.jobs.dispatcher, second.jobs.dispatcher]
        for n in range(50):
            a, b = f"A{n}", f"B{n}"
            # Both at once: the shared subscription hands them to both replicas, and each
            # replica's dispatcher (and both again, here) decides for the one slot.
            statuses = await asyncio.gather(
                station.store(a, "StoreAndStart"),
                station.store(b, "StoreAndStart"),
                *(d.dispatch(SCOPE) for d in dispatchers),
            )
            assert statuses[:2] == [1, 1]
            states = await states_of(first, a, b)
            assert sorted(s[0] for s in states) == [2, 3], (n, states)
            assert await first.store.execute("SCARD", first.jobs.jobs.keys(SCOPE).active) == 1
            waiting, running_one = (a, b) if states[0][0] == 2 else (b, a)
            assert await station.do("Cancel", waiting) == 1
            assert await station.do("Abort", running_one) == 1
    assert first.jobs.dispatcher.started + second.jobs.dispatcher.started == 50


async def test_max_running_jobs_is_station_configuration(station: Station) -> None:
    assert station.runtime is not None
    await station.configure("dispatch", {"max_running_jobs": 2})
    for job_id in ("J1", "J2", "J3"):
        assert await station.store(job_id, "StoreAndStart") == 1
    assert await states_of(station.runtime, "J1", "J2", "J3") == [[3], [3], [2, 2]]
    await station.configure("dispatch", {"max_running_jobs": 0})  # unlimited: J3 starts now
    assert await states_of(station.runtime, "J3") == [[3]]
    await station.configure("dispatch", {"max_running_jobs": 0}, method="DELETE")  # 1 again
    assert await station.store("J4", "StoreAndStart") == 1
    assert await states_of(station.runtime, "J4") == [[2, 2]]


async def test_a_job_with_a_recipe_takes_its_slot_like_any_other(station: Station) -> None:
    events = await station.watch("events")
    recipe = {"Steps": [{"Name": "only", "Initial": True}], "Transitions": []}  # ends at once
    await station.configure(
        "workmaster", {"ID": "WM-R", "data": recipe, "dataschema": SFC_RECIPE_SCHEMA}
    )
    assert await station.store("R1", "StoreAndStart", WorkMasterID=[{"ID": "WM-R"}]) == 1
    assert await station.store("J2", "StoreAndStart") == 1
    moves = []
    async with asyncio.timeout(10):
        while ("J2", [3]) not in moves:
            message = await next_message(events)
            if message.attributes.get("type") != STATUS_EVENT:
                continue  # the recipe's step progress events share the topic
            data = message.json()
            moves.append((data["JobOrder"]["JobOrderID"], state_numbers(data["JobState"])))
    # The dispatcher started R1, the engine ran its recipe to the end, then J2 got the slot.
    assert moves.index(("R1", [3])) < moves.index(("R1", [5, 1])) < moves.index(("J2", [3]))


async def test_fetching_the_job_response_closes_the_job(station: Station) -> None:
    events = await station.watch("events")
    assert await station.store("J1", "StoreAndStart") == 1
    assert await station.do("Stop", "J1") == 1
    await event_of(events, "J1", [5, 1])
    reply = await station.call_raw("RequestJobResponseByJobOrderID", {"JobOrderID": "J1"})
    assert state_numbers(reply.json()["JobResponse"]["JobState"]) == [5, 1]  # as fetched
    await event_of(events, "J1", [5, 2])
    again = await station.call_raw("RequestJobResponseByJobOrderID", {"JobOrderID": "J1"})
    assert state_numbers(again.json()["JobResponse"]["JobState"]) == [5, 2]


async def test_fetching_responses_by_state_closes_the_completed_ones(station: Station) -> None:
    assert station.runtime is not None
    events = await station.watch("events")
    for job_id in ("J1", "J2"):
        assert await station.store(job_id, "StoreAndStart") == 1
    assert await station.do("Stop", "J1") == 1  # Completed; J2 starts
    assert await station.do("Abort", "J2") == 1
    await event_of(events, "J2", [6])
    reply = await station.call_raw(
        "RequestJobResponseByJobOrderState", {"JobOrderState": [{"StateNumber": 5}]}
    )
    assert [r["JobOrderID"] for r in reply.json()["JobResponses"]] == ["J1"]
    await event_of(events, "J1", [5, 2])
    assert await states_of(station.runtime, "J1", "J2") == [[5, 2], [6]]


async def test_a_completed_job_is_closed_after_the_configured_time(config: AppConfig) -> None:
    config = replace(config, jobs_close_after_seconds=1.0)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        assert await station.store("J1", "StoreAndStart") == 1
        assert await station.do("Stop", "J1") == 1
        ended = await event_of(events, "J1", [5, 1])
        closed = await event_of(events, "J1", [5, 2])
        assert 0.9 < closed - ended < 2.0


async def test_pause_holds_and_a_system_interrupt_suspends(station: Station) -> None:
    assert station.runtime is not None
    assert await station.store("J1", "StoreAndStart") == 1
    assert await station.do("Pause", "J1") == 1
    assert await states_of(station.runtime, "J1") == [[4, 1]]  # Held: the MES paused it
    assert await station.do("Resume", "J1") == 1
    assert await station.runtime.jobs.suspend_job(SCOPE, "J1") == 1
    assert await states_of(station.runtime, "J1") == [[4, 2]]  # Suspended: the system did
    assert await station.store("J2", "StoreAndStart") == 1
    assert await states_of(station.runtime, "J2") == [[2, 2]]  # an Interrupted job holds its slot
    assert await station.do("Resume", "J1") == 1
    assert await states_of(station.runtime, "J1") == [[3]]


async def test_the_job_list_limit_has_a_code_default(config: AppConfig) -> None:
    config = replace(config, jobs_max_downloadable=2)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        assert await station.store("J1") == 1
        assert await station.store("J2") == 1
        assert await station.store("J3") == 16
        await station.configure("jobacceptance", {"max_downloadable_job_orders": 0})
        assert await station.store("J3") == 1  # the MES lifted it: unlimited


async def test_a_stored_job_waits_while_a_resource_it_references_is_withdrawn(
    station: Station,
) -> None:
    assert station.runtime is not None
    events = await station.watch("events")
    await station.configure("equipment", {"ID": "EQ-1"})
    await station.configure("workmaster", {"ID": "WM-1"})
    needs = {"EquipmentRequirements": [{"ID": "EQ-1"}], "WorkMasterID": [{"ID": "WM-1"}]}
    assert await station.store("J1", **needs) == 1
    assert await station.store("J2") == 1  # references nothing: stays Ready throughout
    await station.configure("equipment", {"ID": "EQ-1"}, method="DELETE")
    await event_of(events, "J1", [1, 1])  # NotAllowedToStart/Waiting: EQ-1 is not available
    await station.configure("equipment", {"ID": "EQ-1"})
    await event_of(events, "J1", [1, 2])  # Ready again
    await station.configure("workmaster", {"ID": "WM-1"}, method="DELETE")
    # Re-checked by the dispatcher after the configuration's answer, like the equipment's.
    await event_of(events, "J1", [1, 1])
    assert await states_of(station.runtime, "J1", "J2") == [[1, 1], [1, 2]]
    await station.configure("workmaster", {"ID": "WM-1"})
    await event_of(events, "J1", [1, 2])
    assert await states_of(station.runtime, "J1") == [[1, 2]]


async def test_a_start_time_learnt_inline_wakes_the_task_before_its_next_poll(
    config: AppConfig,
) -> None:
    config = replace(config, jobs_dispatch_poll_seconds=30.0)  # polling would be far too late
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        await asyncio.sleep(0.2)  # the task's first round is done: it sleeps for 30 s
        start_time = time.time() + 1.5
        when = datetime.fromtimestamp(start_time, UTC).isoformat(timespec="milliseconds")
        assert await station.store("J1", "StoreAndStart", StartTime=when) == 1
        started = await event_of(events, "J1", [3])
        assert start_time <= started + 0.05
        assert started - start_time < 0.5
