"""Every action qualifier and both branch types, end to end against the simulator."""

from __future__ import annotations

from typing import Any

import orjson

from microdcs.app.config import AppConfig
from microdcs.jobs.contract import SFC_RECIPE_SCHEMA
from tests.conftest import running
from tests.integration.sfc_helpers import (
    DRIED,
    action,
    configure_and_start,
    simulator,
    states_until,
    work_master,
)
from tests.integration.test_jobs_helpers import Station
from tests.mesclient import MesClient

T = "com.example."
SLOW = {"DelayMs": 3000}


def qualifier_recipe() -> dict[str, Any]:
    """A: N, P, P1, S, SD, P0; B: D, L, DS, SL; a selection; E resets S, SD, DS."""
    return {
        "Steps": [{"Name": "A", "Initial": True}, {"Name": "B"}, {"Name": "D1"},
                  {"Name": "D2"}, {"Name": "E"}],
        "Actions": [
            action("n", "A", T + "n", "N", Parameters={"Result": {"Length": 120}}),
            action("p", "A", T + "p", "P"),
            action("p1", "A", T + "p1", "P1"),
            action("s", "A", T + "s", "S"),
            action("sd", "A", T + "sd", "SD", Time=0.1),
            action("p0", "A", T + "p0", "P0"),
            action("d", "B", T + "d", "D", Time=0.2),
            action("l", "B", T + "l", "L", Time=0.1, Parameters=SLOW),
            action("ds", "B", T + "ds", "DS", Time=0.1),
            action("sl", "B", T + "sl", "SL", Time=0.1, Parameters=SLOW),
            action("x", "D1", T + "x"),
            action("y", "D2", T + "y"),
            action("s", "E", T + "s", "R"),
            action("sd", "E", T + "sd", "R"),
            action("ds", "E", T + "ds", "R"),
            action("dry", "E", DRIED, Interaction="pull_event"),
        ],
        "Branches": [{"Name": "Sel", "Type": "selection", "Branches": [["D1"], ["D2"]]}],
        "Transitions": [
            {"Source": "A", "Target": "B"},
            {"Source": "B", "Target": "Sel", "Condition": "done"},
            {"Source": "Sel", "Target": "D1", "Condition": "result.Length >= 100", "Priority": 0},
            {"Source": "Sel", "Target": "D2", "Condition": "true", "Priority": 1},
            {"Source": "Sel", "Target": "E"},
        ],
    }  # fmt: skip


async def test_every_qualifier_and_a_selection_run_to_completed(config: AppConfig) -> None:
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, delay=0.01) as sim,
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        await configure_and_start(station, "Q1", qualifier_recipe())
        assert (await states_until(events, "Q1", 5))[-1] == [5, 1]
    commands = {corr.split("/")[2] for corr in sim.effects}
    assert commands == {"n", "p", "p1", "s", "sd", "p0", "d", "l", "ds", "sl", "x"}
    assert set(sim.effects.values()) == {1}
    cancelled = {corr.split("/")[2] for corr in sim.cancelled}
    assert {"l", "sl"} <= cancelled  # cut by their time limits


async def test_unhandled_equipment_failure_aborts_the_job_with_the_reason(
    config: AppConfig,
) -> None:
    recipe = {
        "Steps": [{"Name": "A", "Initial": True}],
        "Actions": [action("a", "A", T + "a", Parameters={"Fail": True})],
        "Transitions": [],
    }
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, delay=0.01, emit=None),
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        await configure_and_start(station, "F1", recipe)
        assert (await states_until(events, "F1", 6))[-1] == [6]
        reply = await station.call_raw("RequestJobResponseByJobOrderID", {"JobOrderID": "F1"})
        reason = reply.json()["JobResponse"]["JobResponseData"][0]["Value"]
        assert "simulated failure" in reason


async def test_action_timeout_routed_through_a_failed_transition_completes(
    config: AppConfig,
) -> None:
    recipe = {
        "Steps": [{"Name": "A", "Initial": True}, {"Name": "Recover"}],
        "Actions": [
            action("slow", "A", T + "slow", TimeoutSeconds=0.2, Parameters=SLOW),
            action("fix", "Recover", T + "fix"),
        ],
        "Transitions": [{"Source": "A", "Target": "Recover", "Condition": "failed.slow"}],
    }
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, delay=0.01, emit=None) as sim,
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        await configure_and_start(station, "T1", recipe)
        assert (await states_until(events, "T1", 5))[-1] == [5, 1]
    assert {corr.split("/")[2] for corr in sim.effects} == {"slow", "fix"}


async def test_a_job_whose_recipe_is_invalid_is_aborted_with_the_problems(
    config: AppConfig,
) -> None:
    recipe = {"Steps": [{"Name": "A"}], "Transitions": []}  # no initial step
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        # A PUT of this recipe is rejected now; a work master stored before that check
        # existed (written straight to Redis here) must still not run: the engine aborts.
        assert runtime.sfc_engine is not None
        job_store = runtime.sfc_engine.control.jobs  # type: ignore[attr-defined]
        wm = work_master("WM-V1", recipe)
        await job_store.put_work_master(station.scope, "WM-V1", orjson.dumps(wm), SFC_RECIPE_SCHEMA)
        assert await station.store("V1", "StoreAndStart", WorkMasterID=[{"ID": "WM-V1"}]) == 1
        assert (await states_until(events, "V1", 6))[-1] == [6]
        reply = await station.call_raw("RequestJobResponseByJobOrderID", {"JobOrderID": "V1"})
        reason = reply.json()["JobResponse"]["JobResponseData"][0]["Value"]
        assert reason.startswith("invalid recipe:") and "initial" in reason
