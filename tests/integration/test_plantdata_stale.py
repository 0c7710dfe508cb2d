"""Stale tags through real Mosquitto and Redis: a tag that receives nothing for its stale
timeout turns bad and stale once, the listeners hear it, and the deadline survives a
restart of the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import replace

from microdcs.app.config import AppConfig
from microdcs.plantdata.contract import Quality, TagChange
from tests.conftest import running
from tests.integration.test_plantdata_helpers import SCOPE, define, plant_config, send, until_sample
from tests.mesclient import MesClient

FAST = {"Name": "TI-101", "StaleTimeout": 0.5}


class Recorder:
    """A TagChangeListener that keeps what it heard."""

    def __init__(self) -> None:
        self.changes: list[TagChange] = []

    async def tags_changed(self, scope: str, changes: Sequence[TagChange]) -> None:
        self.changes += changes


async def test_a_tag_without_samples_for_its_timeout_turns_bad_and_stale_once(
    config: AppConfig,
) -> None:
    config = plant_config(config)
    heard = Recorder()
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        runtime.plantdata.add_listener(heard)
        await define(mes, config, runtime, FAST)
        for value in (1.0, 2.0, 3.0):  # samples within the timeout keep it fresh
            await send(mes, config, {"Tag": "TI-101", "Value": value})
            await asyncio.sleep(0.3)
        assert not (await until_sample(runtime, "TI-101", lambda s: s.value == 3.0)).stale
        stale = await until_sample(runtime, "TI-101", lambda s: s.stale, timeout=3)
        assert (stale.value, stale.quality) == (3.0, Quality.BAD)
        await asyncio.sleep(0.8)  # no second staleness without a new sample
        marks = [c for c in heard.changes if c.sample.stale]
        assert len(marks) == 1 and marks[0].previous is not None
        assert marks[0].previous.value == 3.0 and not marks[0].previous.stale
        assert await runtime.store.execute("ZCARD", runtime.plantdata.store.keys(SCOPE).stale) == 0
        assert runtime.plantdata.stale == 1
        await send(mes, config, {"Tag": "TI-101", "Value": 3.0})  # same value: stored again
        fresh = await until_sample(runtime, "TI-101", lambda s: not s.stale)
        assert fresh.quality is Quality.GOOD


async def test_two_replicas_report_a_staleness_exactly_once(config: AppConfig) -> None:
    config = plant_config(config, stale_rescan_seconds=0.05)
    heard = [Recorder(), Recorder()]
    async with contextlib.AsyncExitStack() as stack:
        runtimes = []
        for n in range(2):
            own = replace(config, instance_id=f"{config.instance_id}-{n}")
            runtime = await stack.enter_async_context(running(own))
            runtime.plantdata.add_listener(heard[n])
            runtimes.append(runtime)
        mes = await stack.enter_async_context(MesClient(config.mqtt.port))
        await define(mes, config, runtimes[0], *({**FAST, "Name": f"T{i}"} for i in range(20)))
        await send(mes, config, *({"Tag": f"T{i}", "Value": 1.0} for i in range(20)))
        await until_sample(runtimes[0], "T19", lambda s: s.stale, timeout=3)
        await asyncio.sleep(0.5)
    stale = [c.sample.tag for r in heard for c in r.changes if c.sample.stale]
    assert sorted(stale) == sorted(f"T{i}" for i in range(20))


async def test_the_stale_deadline_survives_a_restart_of_the_runtime(config: AppConfig) -> None:
    config = plant_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        await define(mes, config, runtime, {**FAST, "StaleTimeout": 1.0})
        await send(mes, config, {"Tag": "TI-101", "Value": 7.0})
        await until_sample(runtime, "TI-101", lambda s: s.value == 7.0)
    await asyncio.sleep(1.2)  # the deadline passes while no replica runs
    async with running(config) as runtime:  # a fresh replica finds the passed deadline
        stale = await until_sample(runtime, "TI-101", lambda s: s.stale, timeout=3)
        assert (stale.value, stale.quality) == (7.0, Quality.BAD)
        assert stale.receive_time > stale.source_time + 1.0
        assert runtime.plantdata.stale == 1  # this replica marked it (and told its listeners)


async def test_a_staleness_claimed_by_a_replica_that_died_is_reported_after_its_lease(
    config: AppConfig,
) -> None:
    config = plant_config(config, stale_rescan_seconds=0.05)
    heard = Recorder()
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        await define(mes, config, runtime, {**FAST, "StaleTimeout": 30})
        await send(mes, config, {"Tag": "TI-101", "Value": 5.0})
        await until_sample(runtime, "TI-101", lambda s: s.value == 5.0)
        runtime.plantdata.add_listener(heard)
        store = runtime.plantdata.store
        # A replica claims the deadline as if it were due, and dies before telling anyone.
        now = time.time() + 31
        claimed = await store.claim_stale(SCOPE, now, lease_until=time.time() + 0.3)
        assert [c.sample.stale for c in claimed] == [True]
        async with asyncio.timeout(3):
            while not heard.changes:
                await asyncio.sleep(0.01)
        (change,) = heard.changes
        assert change.sample.stale and change.sample.quality is Quality.BAD
        await asyncio.sleep(0.3)
        assert len(heard.changes) == 1  # reported, then released: once
        assert await runtime.store.execute("ZCARD", store.keys(SCOPE).stale) == 0
