"""Acceptance scenario 15 and the MES acting on a running recipe (one replica)."""

from __future__ import annotations

from microdcs.config import AppConfig
from tests.conftest import running
from tests.integration.sfc_helpers import (
    configure_and_start,
    scenario_recipe,
    simulator,
    states_until,
)
from tests.integration.test_jobs_helpers import Station, retained_until, state_numbers
from tests.mesclient import MesClient


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
        assert set(data) == {"cut", "drill", "sand", "dry"}
        assert final.json()["StartTime"] and final.json()["EndTime"]
        assert len(sim.effects) == 3
        assert set(sim.effects.values()) == {1}
        assert state_numbers(final.json()["JobState"]) == [5, 1]
