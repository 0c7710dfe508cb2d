"""SIGKILL of the replica holding a waiting tag condition (issue 17): the execution waits in
Redis, not in that replica, so another replica fires the transition when the tag changes.

The killed replica is a real process (``microdcs run``); the survivor runs in the test's
loop with the in-memory :class:`TagTable` as its current value table and stores the
change, so its tag watch queues the re-evaluation that its engine then applies.
"""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

from microdcs.app.config import AppConfig
from microdcs.sfc.engine.keys import EngineKeys
from tests.integration.sfc_helpers import simulator, states_until
from tests.integration.test_jobs_helpers import SCOPE, Station, start_replica, wait_logged
from tests.integration.test_sfc_replicas import configure_until_accepted, replicas_config
from tests.integration.test_sfc_tags import (
    TEMP,
    TagTable,
    oven_recipe,
    progress_until,
    replicas,
)
from tests.mesclient import MesClient, next_message


async def test_another_replica_fires_a_waiting_tag_condition_after_its_holder_is_killed(
    config: AppConfig, tmp_path: Path
) -> None:
    config = replicas_config(config)
    holder = start_replica(replace(config, instance_id=f"{config.instance_id}-holder"), tmp_path)
    try:
        await wait_logged(tmp_path, "connected to", count=1)
        async with (
            MesClient(config.mqtt.port) as mes,
            simulator(config, emit=None) as sim,
        ):
            station = Station(mes, config.jobs_prefix, None)
            events = await station.watch("events")
            commands = await mes.watch(f"{config.equipment_prefix}/{SCOPE}/commands")
            await configure_until_accepted(station, oven_recipe())
            waiting = await progress_until(events, "action_completed")
            assert [e["Kind"] for e in waiting][-1] == "action_completed"
            assert (await next_message(commands)).attributes["type"] == "com.example.heat.v1"
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            table = TagTable()
            async with replicas(config, table, 1) as (survivor,):
                watchers = EngineKeys.of(survivor.store, SCOPE).tag_watch(TEMP)
                assert await survivor.store.execute("SMEMBERS", watchers) == [b"J1"]
                await table.store(TEMP, 190.0)
                bake = await next_message(commands, timeout=10)
                assert bake.attributes["type"] == "com.example.bake.v1"
                assert (await states_until(events, "J1", 5, timeout=15))[-1] == [5, 1]
                assert await survivor.store.execute("SMEMBERS", watchers) == []
        assert sorted(c.split("/")[2] for c in sim.effects) == ["bake", "heat"]
        assert set(sim.effects.values()) == {1}
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
