"""Predicates registered through the binder, used by a recipe's transition conditions."""

from __future__ import annotations

from typing import Any

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.sfc import ConditionContext
from tests.conftest import running
from tests.integration.sfc_helpers import action, configure_and_start, simulator, states_until
from tests.integration.test_jobs_helpers import Station, retained_until
from tests.mesclient import MesClient


def gated_recipe() -> dict[str, Any]:
    """Cut, then Drill only when the predicate says the cut is long enough, else Reject."""
    return {
        "Steps": [{"Name": "Cut", "Initial": True}, {"Name": "Drill"}, {"Name": "Reject"}],
        "Actions": [
            action("cut", "Cut", "com.example.cut.v1", Parameters={"Result": {"Length": 120}}),
            action("drill", "Drill", "com.example.drill.v1"),
            action("reject", "Reject", "com.example.reject.v1"),
        ],
        "Transitions": [
            {"Source": "Cut", "Target": "Drill", "Condition": "done and long_enough"},
            {"Source": "Cut", "Target": "Reject", "Condition": "done and not long_enough"},
        ],
    }


async def test_a_predicate_registered_through_the_binder_decides_a_transition(
    config: AppConfig,
) -> None:
    seen: list[ConditionContext] = []

    def factory(binder: Binder) -> None:
        @binder.predicate("long_enough")
        def long_enough(context: ConditionContext) -> bool:
            seen.append(context)
            return bool(context.merged.get("Length", 0) >= 100)

    async with (
        running(config, [factory]) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config),
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        result = await station.watch("result/J1")
        await configure_and_start(station, "J1", gated_recipe())
        await states_until(events, "J1", 5)
        final = await retained_until(result, lambda m: m.json()["JobState"][0]["StateNumber"] == 5)
        data = {p["ID"]: p["Value"] for p in final.json()["JobResponseData"]}
        assert set(data) == {"cut", "drill", "ExecutionSummary"}
        assert seen and all(c.merged.get("Length") == 120 for c in seen if c.done)
