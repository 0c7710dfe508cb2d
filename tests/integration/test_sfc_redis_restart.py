"""A Redis restart (AOF on) in the middle of a recipe: the recipe resumes and completes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from microdcs.app.devstack import LocalMosquitto, LocalRedis
from tests.conftest import make_config, running
from tests.integration.sfc_helpers import (
    configure_and_start,
    scenario_recipe,
    simulator,
    states_until,
)
from tests.integration.test_jobs_helpers import Station
from tests.mesclient import MesClient, next_message


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    with LocalRedis(tmp_path / "redis", appendonly=True) as server:
        yield server


async def test_recipe_resumes_after_a_redis_restart(
    mosquitto: LocalMosquitto, aof_redis: LocalRedis
) -> None:
    config = make_config(mosquitto.port, aof_redis.port, sfc_command_resend_seconds=1.0)
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, delay=0.4, emit=0.1) as sim,
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        commands = await mes.watch(f"{config.equipment_prefix}/woodworking/commands")
        await configure_and_start(station, "R1", scenario_recipe())
        await next_message(commands)  # the first command is out; its answer comes in 0.4 s
        await asyncio.to_thread(aof_redis.restart)
        states = await states_until(events, "R1", 5, timeout=20)
    assert states[-1] == [5, 1]
    assert len(sim.effects) == 3 and set(sim.effects.values()) == {1}
