"""No silent stalls, end to end: a transition timeout, and the watchdog suspending a job."""

from __future__ import annotations

import time
from typing import Any

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.sfc import ConditionContext
from tests.conftest import running
from tests.integration.sfc_helpers import action, configure_and_start, simulator, states_until
from tests.integration.test_jobs_helpers import Station, retained_until
from tests.mesclient import MesClient


def rework_recipe() -> dict[str, Any]:
    """Cut reports ok false, so Cut -> Pack never holds; its timeout sends it to Rework."""
    return {
        "Steps": [{"Name": "Cut", "Initial": True}, {"Name": "Pack"}, {"Name": "Rework"}],
        "Actions": [
            action("cut", "Cut", "com.example.cut.v1", Parameters={"Result": {"ok": False}}),
            action("pack", "Pack", "com.example.pack.v1"),
            action("rework", "Rework", "com.example.rework.v1"),
        ],
        "Transitions": [{"Source": "Cut", "Target": "Pack", "Condition": "done and result.ok",
                         "TimeoutSeconds": 0.6, "OnTimeout": "Rework"}],
    }  # fmt: skip


def release_recipe() -> dict[str, Any]:
    """A selection that only the ``released`` predicate opens; a 0.5 s watchdog."""
    return {
        "Steps": [{"Name": "Cut", "Initial": True}, {"Name": "Ship"}, {"Name": "Scrap"}],
        "Actions": [action("cut", "Cut", "com.example.cut.v1"),
                    action("ship", "Ship", "com.example.ship.v1")],
        "Branches": [{"Name": "Decide", "Type": "selection", "Branches": [["Ship"], ["Scrap"]]}],
        "Transitions": [{"Source": "Cut", "Target": "Decide"},
                        {"Source": "Decide", "Target": "Ship", "Condition": "released"},
                        {"Source": "Decide", "Target": "Scrap", "Condition": "param.scrap"}],
        "WatchdogSeconds": 0.5,
    }  # fmt: skip


async def test_a_transition_timeout_sends_the_job_to_its_on_timeout_step(
    config: AppConfig,
) -> None:
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=None),
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        result = await station.watch("result/T1")
        started = time.monotonic()
        await configure_and_start(station, "T1", rework_recipe())
        assert await states_until(events, "T1", 5) == [[2, 2], [3], [5, 1]]
        assert time.monotonic() - started >= 0.6
        final = await retained_until(result, lambda m: m.json()["JobState"][0]["StateNumber"] == 5)
        data = {p["ID"]: p["Value"] for p in final.json()["JobResponseData"]}
        assert set(data) == {"cut", "rework", "ExecutionSummary"}
        assert [s["Step"] for s in data["ExecutionSummary"]["Steps"]] == ["Cut", "Rework"]


async def test_a_stalled_selection_is_suspended_by_the_watchdog_and_runs_on_after_resume(
    config: AppConfig,
) -> None:
    released = False

    def factory(binder: Binder) -> None:
        @binder.predicate("released")
        def is_released(context: ConditionContext) -> bool:
            return released

    async with (
        running(config, [factory]) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=None) as sim,
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        await configure_and_start(station, "W1", release_recipe())
        running_at = 0.0
        states = await states_until(events, "W1", 3)
        running_at = time.monotonic()
        assert states == [[2, 2], [3]]
        # Interrupted/Suspended (4, 2) once no choice held for the watchdog's 0.5 s.
        assert await states_until(events, "W1", 4) == [[4, 2]]
        assert time.monotonic() - running_at >= 0.5
        released = True  # the operator fixed the cause
        assert await station.do("Resume", "W1") == 1
        assert await states_until(events, "W1", 5) == [[3], [5, 1]]
    assert sorted(corr.split("/")[2] for corr in sim.effects) == ["cut", "ship"]
