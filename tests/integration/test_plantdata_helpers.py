"""Shared pieces of the plant data tests: a configuration with its own topics, tag
configuration and data events over MQTT, and waiting for the table to hold something."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import msgpack
import orjson

from microdcs.app.config import AppConfig
from microdcs.app.runtime import Runtime
from microdcs.plantdata.contract import TagSample
from microdcs.plantdata.options import PlantDataConfig
from tests.mesclient import MesClient, ce_properties

SCOPE = "line1"
TAG_CONFIG = "com.github.aschamberger.microdcs.config.tag.v1"
DATA = "com.github.aschamberger.microdcs.tag.data.v1"
READ = "com.github.aschamberger.microdcs.tag.read.v1"
TEMP = {"Name": "TI-101", "DataType": "float", "Unit": "degC", "Deadband": 0.5}


def plant_config(config: AppConfig, **options: Any) -> AppConfig:
    """Plant data under the test's own prefix, fast pacing and rescans."""
    prefix = config.jobs_prefix.replace("/jobs", "/plant")
    fields: dict[str, Any] = {"cvt_publish_interval_seconds": 0.1, "stale_rescan_seconds": 0.2}
    fields.update(options)
    return replace(config, plantdata=PlantDataConfig(topic_prefix=prefix, **fields))


def topic(config: AppConfig, intent: str, scope: str = SCOPE) -> str:
    return f"{config.plantdata.topic_prefix}/{scope}/{intent}"


async def define(mes: MesClient, config: AppConfig, runtime: Runtime, *tags: Any) -> None:
    """PUT each tag over MQTT and wait until the table knows it."""
    for tag in tags:
        props = ce_properties(TAG_CONFIG, subject=SCOPE)
        await mes.publish(topic(config, "commands"), orjson.dumps(tag), props)
    names = [t["Name"] for t in tags]
    async with asyncio.timeout(5):
        while len(await runtime.plantdata.read(SCOPE, names)) < len(names):
            await asyncio.sleep(0.01)


async def send(
    mes: MesClient, config: AppConfig, *samples: Any, msgpack_payload: bool = False, **ce: Any
) -> None:
    """Publish one data event with ``samples`` on the scope's data topic."""
    body = {"Samples": list(samples)}
    if msgpack_payload:
        payload = msgpack.packb(body)
        props = ce_properties(DATA, subject=SCOPE, content_type="application/msgpack", **ce)
    else:
        payload = orjson.dumps(body)
        props = ce_properties(DATA, subject=SCOPE, **ce)
    await mes.publish(topic(config, "data"), payload, props)


async def until_sample(runtime: Runtime, tag: str, check: Any, timeout: float = 5.0) -> TagSample:
    """Wait until the table's sample of ``tag`` satisfies ``check(sample)``."""
    async with asyncio.timeout(timeout):
        while True:
            sample = (await runtime.plantdata.read(SCOPE, [tag])).get(tag)
            if sample is not None and check(sample):
                return sample
            await asyncio.sleep(0.01)
