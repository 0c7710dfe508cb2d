"""Acceptance scenario 15 and the MES acting on a running recipe (one replica)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from microdcs.app.config import AppConfig
from microdcs.equipment.contract import CANCEL_TYPE
from microdcs.sfc.engine.plan import WorkItem
from microdcs.sfc.state import ExecutionStatus
from tests.conftest import running
from tests.integration.sfc_helpers import (
    action,
    configure_and_start,
    scenario_recipe,
    simulator,
    states_until,
)
from tests.integration.test_jobs_helpers import Station, retained_until, state_numbers
from tests.mesclient import MesClient, next_message


async def test_recipe_runs_to_completed_with_every_status_event_and_each_command_once(
    config: AppConfig,
) -> None:
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config) as sim,
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        result = await station.watch("result/J1")
        await configure_and_start(station, "J1", scenario_recipe())
        states = await states_until(events, "J1", 5)
        assert states == [[2, 2], [3], [5, 1]]
        final = await retained_until(result, lambda m: m.json()["JobState"][0]["StateNumber"] == 5)
        data = {p["ID"]: p["Value"] for p in final.json()["JobResponseData"]}
        assert data["cut"] == {"Length": 120}
        assert set(data) == {"cut", "drill", "sand", "dry", "ExecutionSummary"}
        summary = data["ExecutionSummary"]
        steps = {s["Step"]: s for s in summary["Steps"]}
        assert list(steps) == ["Cut", "Drill", "Sand", "Dry"]
        assert all(s["EnteredAt"] <= s["LeftAt"] for s in steps.values())
        assert steps["Cut"]["LeftAt"] <= steps["Drill"]["EnteredAt"] == steps["Sand"]["EnteredAt"]
        assert max(steps["Drill"]["LeftAt"], steps["Sand"]["LeftAt"]) <= steps["Dry"]["EnteredAt"]
        outcomes = {a["Action"]: a["Outcome"] for a in summary["Actions"]}
        assert outcomes == dict.fromkeys(["cut", "drill", "sand", "dry"], "completed")
        assert final.json()["StartTime"] and final.json()["EndTime"]
        assert len(sim.effects) == 3
        assert set(sim.effects.values()) == {1}
        assert state_numbers(final.json()["JobState"]) == [5, 1]


def two_step_recipe(delay_ms: int) -> dict[str, Any]:
    """A slow command, then a delayed (D) command: something to pause, resume or abort."""
    return {
        "Steps": [{"Name": "A", "Initial": True}, {"Name": "B"}],
        "Actions": [
            action("first", "A", "com.example.first.v1", Parameters={"DelayMs": delay_ms}),
            action("second", "B", "com.example.second.v1", "D", Time=0.2),
        ],
        "Transitions": [{"Source": "A", "Target": "B"}],
    }


async def test_pause_holds_the_recipe_and_resume_finishes_it(config: AppConfig) -> None:
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=None) as sim,
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        commands = await mes.watch(f"{config.equipment_prefix}/woodworking/commands")
        await configure_and_start(station, "P1", two_step_recipe(300))
        await next_message(commands)  # "first" is out
        assert await station.do("Pause", "P1") == 1
        assert await states_until(events, "P1", 4) == [[2, 2], [3], [4, 1]]
        # The answer to "first" arrives while paused; "second" must wait for Resume.
        with pytest.raises(TimeoutError):
            await next_message(commands, timeout=0.8)
        assert await station.do("Resume", "P1") == 1
        assert (await next_message(commands)).attributes["type"] == "com.example.second.v1"
        assert await states_until(events, "P1", 5) == [[3], [5, 1]]
    assert sorted(corr.split("/")[2] for corr in sim.effects) == ["first", "second"]


async def test_abort_from_the_mes_cancels_the_running_command(config: AppConfig) -> None:
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=None) as sim,
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        commands = await mes.watch(f"{config.equipment_prefix}/woodworking/commands")
        await configure_and_start(station, "A1", two_step_recipe(5000))
        first = await next_message(commands)
        assert await station.do("Abort", "A1") == 1
        assert (await states_until(events, "A1", 6))[-1] == [6]
        cancel = await next_message(commands)
        assert cancel.attributes["type"] == CANCEL_TYPE
        assert cancel.attributes["correlationid"] == first.attributes["correlationid"]
        assert cancel.correlation_data == first.correlation_data
    assert "second" not in {corr.split("/")[2] for corr in sim.effects}


async def test_stop_from_the_mes_ends_the_recipe(config: AppConfig) -> None:
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=None),
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        commands = await mes.watch(f"{config.equipment_prefix}/woodworking/commands")
        await configure_and_start(station, "S1", two_step_recipe(5000))
        await next_message(commands)
        assert await station.do("Stop", "S1") == 1
        assert (await states_until(events, "S1", 5))[-1][0] == 5
        assert (await next_message(commands)).attributes["type"] == CANCEL_TYPE


async def test_a_running_recipe_counts_as_active_until_it_ends(config: AppConfig) -> None:
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config),
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        assert runtime.sfc_engine is not None
        engine_store = runtime.sfc_engine.store
        await configure_and_start(station, "JA", two_step_recipe(delay_ms=800))
        await states_until(events, "JA", 3)  # Running (the dispatcher), then the engine
        async with asyncio.timeout(2):  # stores the execution and sends the slow command
            while await engine_store.active_count({"woodworking"}) != 1:
                await asyncio.sleep(0.01)
        await states_until(events, "JA", 5)
        assert await engine_store.active_count({"woodworking"}) == 0


async def test_a_claimed_pause_that_a_resume_already_undid_is_not_applied_again(
    config: AppConfig,
) -> None:
    """A replica applies Pause and dies before acknowledging it; Resume is applied after;
    then the Pause item is claimed. It must count as applied, not pause the job again."""
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=None),
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        commands = await mes.watch(f"{config.equipment_prefix}/woodworking/commands")
        await configure_and_start(station, "P2", two_step_recipe(10_000))  # "first" runs 10 s
        await next_message(commands)  # "first" is out
        engine = runtime.sfc_engine
        assert engine is not None
        assert await station.do("Pause", "P2") == 1
        assert await station.do("Resume", "P2") == 1
        before = None
        for _ in range(100):  # until the engine applied the Resume
            before = await engine.store.load(station.scope, "P2")
            if before is not None and len(before.recent) >= 3:  # start, pause, resume
                break
            await asyncio.sleep(0.05)
        assert before is not None and before.execution.status is ExecutionStatus.RUNNING
        work = engine.store.keys(station.scope).work
        entries = await engine.store.redis.client.xrange(work)
        (pause_id, pause_fields), *_ = [
            (entry_id, fields) for entry_id, fields in entries if fields.get(b"k") == b"pause"
        ]
        entry_id = pause_id.decode() if isinstance(pause_id, bytes) else pause_id
        assert entry_id in before.recent
        # What a claim does with the item: process it again.
        assert await engine._process(station.scope, entry_id, WorkItem.from_fields(pause_fields))
        after = await engine.store.load(station.scope, "P2")
        assert after is not None and after.version == before.version  # nothing applied
        assert after.execution.status is ExecutionStatus.RUNNING
