"""The job's retained step state (``{jobs prefix}/{scope}/steps/{job}``): the active steps
and since when, kept while the recipe runs and removed when it ends."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from microdcs.app.config import AppConfig
from tests.conftest import running
from tests.integration.sfc_helpers import (
    DRIED,
    action,
    configure_and_start,
    simulator,
    states_until,
)
from tests.integration.test_jobs_helpers import Station
from tests.mesclient import MesClient, Received


def waiting_recipe() -> dict[str, Any]:
    """Cut (a command), then Dry, which waits for the simulator's next dried event."""
    return {
        "Steps": [{"Name": "Cut", "Initial": True}, {"Name": "Dry"}],
        "Actions": [
            action("cut", "Cut", "com.example.cut.v1", Parameters={"DelayMs": 200}),
            action("dry", "Dry", DRIED, Interaction="pull_event"),
        ],
        "Transitions": [{"Source": "Cut", "Target": "Dry", "Condition": "done"}],
    }


async def next_state(queue: asyncio.Queue[Received]) -> Received:
    async with asyncio.timeout(5):
        return await queue.get()


async def test_the_retained_step_state_names_the_active_steps_since_when_until_the_end(
    config: AppConfig,
) -> None:
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=1.0),
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        states = await station.watch("steps/J1")
        before = time.time()
        await configure_and_start(station, "J1", waiting_recipe())
        first = (await next_state(states)).json()
        assert [s["Step"] for s in first["ActiveSteps"]] == ["Cut"]
        assert before <= first["ActiveSteps"][0]["Since"] <= time.time()
        second = (await next_state(states)).json()
        assert [s["Step"] for s in second["ActiveSteps"]] == ["Dry"]
        assert second["Version"] > first["Version"] and second["JobOrderID"] == "J1"
        assert second["ActiveSteps"][0]["Since"] >= first["ActiveSteps"][0]["Since"] + 0.2
        # An MES that connects now reads the step the job is in, without any event.
        async with MesClient(config.mqtt.port) as late:
            retained = await next_state(await late.watch(f"{station.base}/steps/J1"))
        assert retained.retain and retained.json() == second
        await states_until(events, "J1", 5)
        removed = await next_state(states)
        assert removed.payload == b""  # the recipe ended: the retained state is gone
