"""A recipe condition on a tag fired by a real data event (issue 17, item 2, with the
plant data store instead of test_sfc_tags.py's in-memory stand-in): the replica that
stores the change tells its SFC tag watch, and the waiting transition fires once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

import orjson

from microdcs.app.config import AppConfig
from microdcs.app.runtime import Runtime
from microdcs.sfc.engine.keys import EngineKeys
from tests.conftest import running
from tests.integration.sfc_helpers import configure_and_start, simulator, states_until
from tests.integration.test_jobs_helpers import SCOPE, Station
from tests.integration.test_plantdata_helpers import DATA, TAG_CONFIG, plant_config
from tests.integration.test_sfc_tags import TEMP, oven_recipe, progress_until
from tests.mesclient import MesClient, ce_properties, next_message


async def put_tag(mes: MesClient, config: AppConfig, runtime: Runtime) -> None:
    props = ce_properties(TAG_CONFIG, subject=SCOPE)
    topic = f"{config.plantdata.topic_prefix}/{SCOPE}/commands"
    await mes.publish(topic, orjson.dumps({"Name": TEMP}), props)
    async with asyncio.timeout(5):
        while not await runtime.plantdata.read(SCOPE, [TEMP]):
            await asyncio.sleep(0.01)


async def measure(mes: MesClient, config: AppConfig, value: float) -> None:
    """A data event of the oven's temperature, as the equipment would send it."""
    props = ce_properties(DATA, subject=SCOPE)
    body = orjson.dumps({"Samples": [{"Tag": TEMP, "Value": value}]})
    await mes.publish(f"{config.plantdata.topic_prefix}/{SCOPE}/data", body, props)


async def test_a_data_event_from_170_to_190_fires_the_waiting_transition_once(
    config: AppConfig,
) -> None:
    config = plant_config(config)
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(running(config))
        second = replace(config, instance_id=f"{config.instance_id}-b")
        await stack.enter_async_context(running(second))
        mes = await stack.enter_async_context(MesClient(config.mqtt.port))
        sim = await stack.enter_async_context(simulator(config, emit=None))
        await put_tag(mes, config, first)
        await measure(mes, config, 170.0)
        station = Station(mes, config.jobs_prefix, first)
        events = await station.watch("events")
        commands = await mes.watch(f"{config.equipment_prefix}/{SCOPE}/commands")
        await configure_and_start(station, "J1", oven_recipe())
        await progress_until(events, "action_completed")  # Heat done, waiting on the oven
        assert (await next_message(commands)).attributes["type"] == "com.example.heat.v1"
        await asyncio.sleep(0.3)
        assert commands.empty(), "the transition fired at 170"
        watchers = EngineKeys.of(first.store, SCOPE).tag_watch(TEMP)
        assert await first.store.execute("SMEMBERS", watchers) == [b"J1"]
        changed_at = time.monotonic()
        await measure(mes, config, 190.0)  # stored by whichever replica takes it
        bake = await next_message(commands, timeout=5)
        latency = time.monotonic() - changed_at
        for value in (191.0, 192.0, 193.0):
            await measure(mes, config, value)
        after = await progress_until(events, "step_exited")
        after += await progress_until(events, "step_exited")
        assert (await states_until(events, "J1", 5))[-1] == [5, 1]
        await asyncio.sleep(0.3)
        assert commands.empty(), "a second command after the transition fired"
    print(f"transition fired {latency * 1000:.1f} ms after the data event was published")
    assert bake.attributes["type"] == "com.example.bake.v1"
    assert latency < 0.1
    fired = [e["Transition"] for e in after if e["Kind"] == "transition_fired"]
    assert fired == ["Heat -> Bake"]
    assert sorted(c.split("/")[2] for c in sim.effects) == ["bake", "heat"]
