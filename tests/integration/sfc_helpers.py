"""Shared pieces of the SFC engine integration tests: recipes, a simulator, job watching."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from microdcs.app.config import AppConfig
from microdcs.app.simulator import Emission, EquipmentSimulator, SimulatorSettings
from microdcs.jobs.contract import SFC_RECIPE_SCHEMA
from tests.integration.test_jobs_helpers import Station, state_numbers
from tests.mesclient import Received

DRIED = "com.example.wood.dried.v1"


def action(
    name: str, step: str, type_id: str, qualifier: str = "N", **extra: Any
) -> dict[str, Any]:
    interaction = extra.pop("Interaction", "push_command")
    return {"Name": name, "Step": step, "Qualifier": qualifier, "Interaction": interaction,
            "TypeId": type_id, **extra}  # fmt: skip


def scenario_recipe(*, delay_ms: int | None = None) -> dict[str, Any]:
    """Scenario 15: a command, a simultaneous branch of two commands, an awaited event."""
    params: dict[str, Any] = {"Result": {"Length": 120}}
    if delay_ms is not None:
        params["DelayMs"] = delay_ms
    slow = {"DelayMs": delay_ms} if delay_ms is not None else {}
    return {
        "Steps": [{"Name": "Cut", "Initial": True}, {"Name": "Drill"}, {"Name": "Sand"},
                  {"Name": "Dry"}],
        "Actions": [
            action("cut", "Cut", "com.example.cut.v1", Parameters=params),
            action("drill", "Drill", "com.example.drill.v1", Parameters=slow),
            action("sand", "Sand", "com.example.sand.v1", Parameters=slow),
            action("dry", "Dry", DRIED, Interaction="pull_event"),
        ],
        "Branches": [{"Name": "Finish", "Type": "simultaneous", "Branches": [["Drill"], ["Sand"]]}],
        "Transitions": [{"Source": "Cut", "Target": "Finish", "Condition": "done"},
                        {"Source": "Finish", "Target": "Dry", "Condition": "done"}],
    }  # fmt: skip


def work_master(wm_id: str, recipe: dict[str, Any]) -> dict[str, Any]:
    return {"ID": wm_id, "data": recipe, "dataschema": SFC_RECIPE_SCHEMA}


@contextlib.asynccontextmanager
async def simulator(
    config: AppConfig,
    *,
    delay: float = 0.02,
    emit: float | None = 0.1,
    scopes: tuple[str, ...] = ("woodworking",),
    **kw: Any,
) -> AsyncIterator[EquipmentSimulator]:
    """An equipment simulator (MQTT only) on the config's equipment prefix.

    With ``scopes=()`` it knows no scope before the first command, so every event it
    emits follows a command (and carries that command's trace context).
    """
    emissions = (Emission(DRIED, emit),) if emit else ()
    settings = SimulatorSettings(
        port=config.mqtt.port, prefix=config.equipment_prefix, delay=delay,
        scopes=scopes, emissions=emissions, mqtt=config.mqtt, **kw,
    )  # fmt: skip
    sim = EquipmentSimulator(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(sim.run(stop))
    try:
        async with asyncio.timeout(5):
            await sim.connected.wait()
        yield sim
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def states_until(
    events: asyncio.Queue[Received], job_id: str, final: int, timeout: float = 10.0
) -> list[list[int]]:
    """Status events of ``job_id`` until its state is ``final`` (5 Ended, 6 Aborted)."""
    seen: list[list[int]] = []
    async with asyncio.timeout(timeout):
        while not seen or seen[-1][0] != final:
            data = (await events.get()).json()
            if data.get("JobOrder", {}).get("JobOrderID") == job_id:
                seen.append(state_numbers(data["JobState"]))
    return seen


async def configure_and_start(station: Station, job_id: str, recipe: dict[str, Any],
                              **order: Any) -> None:  # fmt: skip
    await station.configure("workmaster", work_master("WM-" + job_id, recipe))
    status = await station.store(job_id, "StoreAndStart", WorkMasterID=[{"ID": "WM-" + job_id}],
                                 **order)  # fmt: skip
    assert status == 1
