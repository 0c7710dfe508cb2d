"""Data events need no dedupe, through real Mosquitto and Redis: storing a sample is
idempotent (``ingest.lua`` never lets an older or repeated sample replace the stored one),
so the processor declares ``tag.data.v1`` ``deduplicate=False`` and neither the MQTT inbox
nor the pipeline claims or records data events, while configuration events still are."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson

from microdcs.alarms.options import AlarmsConfig
from microdcs.app.config import AppConfig
from microdcs.storage.dedupe import Deduplicator
from microdcs.storage.redis import RedisStore
from tests.conftest import running
from tests.integration.test_alarms_mqtt import HIGH, configure
from tests.integration.test_plantdata_helpers import (
    SCOPE,
    TAG_CONFIG,
    TEMP,
    define,
    plant_config,
    send,
    topic,
    until_sample,
)
from tests.mesclient import MesClient, ce_properties, next_message


async def _dedupe_held(config: AppConfig, event_id: str) -> bytes | None:
    """What the dedupe registry holds for the test MES's event ``event_id``."""
    async with RedisStore(config.redis) as store:
        held: bytes | None = await store.execute(
            "GET", Deduplicator(store, 60).key("mes/test", event_id)
        )
        return held


async def test_a_redelivered_data_event_stores_nothing_and_sends_no_alarm_event_again(
    config: AppConfig,
) -> None:
    alarms = config.jobs_prefix.replace("/jobs", "/alarms")
    config = replace(plant_config(config), alarms=AlarmsConfig(topic_prefix=alarms))
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        events = await mes.watch(f"{alarms}/{SCOPE}/events")
        await define(mes, config, runtime, TEMP)
        await configure(mes, config, runtime, HIGH)  # TI-101 high at 50, deadband 5
        high = {"Tag": "TI-101", "Value": 55.0, "Timestamp": 1000.0}
        await send(mes, config, high, event_id="d1")
        assert (await next_message(events)).json()["Event"] == "raised"
        await send(mes, config, {"Tag": "TI-101", "Value": 30.0, "Timestamp": 1001.0})
        assert (await next_message(events)).json()["Event"] == "cleared"
        stored = runtime.plantdata.stored
        await send(mes, config, high, event_id="d1")  # redelivered: no dedupe record
        await send(mes, config, high, event_id="d1-copy")  # the same sample, another id
        await send(mes, config, {"Tag": "TI-101", "Value": 40.0, "Timestamp": 1002.0})
        await until_sample(runtime, "TI-101", lambda s: s.value == 40.0)
        await asyncio.sleep(0.2)
        assert runtime.plantdata.stored == stored + 1  # only the last sample
        assert events.empty()  # the alarm was not raised a second time


async def test_an_older_sample_after_a_newer_one_leaves_the_newer(config: AppConfig) -> None:
    config = plant_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        await define(mes, config, runtime, TEMP)
        await send(mes, config, {"Tag": "TI-101", "Value": 70.0, "Timestamp": 2000.0})
        newer = await until_sample(runtime, "TI-101", lambda s: s.value == 70.0)
        await send(mes, config, {"Tag": "TI-101", "Value": 10.0, "Timestamp": 1999.5})
        await send(mes, config, {"Tag": "TI-101", "Value": 71.0, "Timestamp": 2000.5})  # probe
        latest = await until_sample(runtime, "TI-101", lambda s: s.source_time == 2000.5)
        assert latest.value == 71.0 and newer.source_time == 2000.0
        # Out of order inside one event too: the older second sample is not stored.
        await send(
            mes, config,
            {"Tag": "TI-101", "Value": 80.0, "Timestamp": 2002.0},
            {"Tag": "TI-101", "Value": 20.0, "Timestamp": 2001.0},
        )  # fmt: skip
        last = await until_sample(runtime, "TI-101", lambda s: s.source_time == 2002.0)
        await asyncio.sleep(0.1)
        assert last == (await runtime.plantdata.read(SCOPE, ["TI-101"]))["TI-101"]
        assert last.value == 80.0


async def test_no_dedupe_key_is_written_for_data_events_but_one_is_for_configuration(
    config: AppConfig,
) -> None:
    config = plant_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        props = ce_properties(TAG_CONFIG, subject=SCOPE, event_id="c1")
        await mes.publish(topic(config, "commands"), orjson.dumps(TEMP), props)
        await define(mes, config, runtime, TEMP)
        await send(mes, config, {"Tag": "TI-101", "Value": 5.0}, event_id="d1")
        await until_sample(runtime, "TI-101", lambda s: s.value == 5.0)
        async with asyncio.timeout(5):
            while await _dedupe_held(config, "c1") is None:  # recorded after the handler
                await asyncio.sleep(0.02)
        assert await _dedupe_held(config, "d1") is None
