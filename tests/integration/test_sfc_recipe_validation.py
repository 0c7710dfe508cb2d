"""A work master whose SFC recipe is invalid is rejected with an error event; nothing stored."""

from __future__ import annotations

from microdcs.app.config import AppConfig
from microdcs.jobs.contract import SFC_RECIPE_SCHEMA
from tests.conftest import running
from tests.integration.test_jobs_helpers import Station
from tests.mesclient import MesClient, next_message


async def test_invalid_recipe_put_gets_an_error_event_and_is_not_stored(
    config: AppConfig,
) -> None:
    # Two initial steps, and a transition to a step that does not exist.
    recipe = {
        "Steps": [{"Name": "A", "Initial": True}, {"Name": "B", "Initial": True}],
        "Transitions": [{"Source": "A", "Target": "nowhere"}],
    }
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        await station.configure(
            "workmaster", {"ID": "WM-BAD", "data": recipe, "dataschema": SFC_RECIPE_SCHEMA}
        )
        error = await next_message(events)
        assert error.attributes["mdcserrorkind"] == "invalid_recipe"
        assert "nowhere" in error.attributes["mdcserrormessage"]
        # Nothing was stored: a job referencing the work master is not acceptable.
        assert await station.store("J1", WorkMasterID=[{"ID": "WM-BAD"}]) == 16


async def test_recipe_that_violates_the_recipe_schema_is_rejected(config: AppConfig) -> None:
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        await station.configure(
            "workmaster",
            {"ID": "WM-BAD", "data": {"Steps": "not a list"}, "dataschema": SFC_RECIPE_SCHEMA},
        )
        error = await next_message(events)
        assert error.attributes["mdcserrorkind"] == "invalid_payload"
        assert await station.store("J1", WorkMasterID=[{"ID": "WM-BAD"}]) == 16
