"""SIGKILL of the replica holding a pending on-delay (issue 18): the on-delay is a timer in
Redis, not in that replica, so another replica raises the alarm on time.

The killed replica is a real process (``microdcs run``) that received the data event; the
survivor starts in the test's loop after the kill and never sees that event.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import replace
from pathlib import Path

import orjson

from microdcs.app.config import AppConfig
from tests.conftest import running
from tests.integration.test_alarms_mqtt import alarms_config
from tests.integration.test_jobs_helpers import start_replica, wait_logged
from tests.integration.test_plantdata_helpers import SCOPE, TEMP, plant_config, send, topic
from tests.mesclient import MesClient

ON_DELAY = 3.0
HIGH = {"ID": "TI-101.H", "Tag": "TI-101", "Kind": "H", "Setpoint": 50, "Deadband": 5,
        "OnDelay": ON_DELAY, "Priority": "high", "Message": "Reactor temperature high"}  # fmt: skip


def files_config(config: AppConfig, tmp: Path) -> AppConfig:
    tags, alarms = tmp / "tags.json", tmp / "alarms.json"
    tags.write_bytes(orjson.dumps({SCOPE: [TEMP]}))
    alarms.write_bytes(orjson.dumps({SCOPE: [HIGH]}))
    config = plant_config(alarms_config(config))
    return replace(
        config,
        plantdata=replace(config.plantdata, tags_file=str(tags)),
        alarms=replace(config.alarms, file=str(alarms), timer_rescan_seconds=0.2),
    )


async def test_a_pending_on_delay_rises_on_time_after_its_replica_is_killed(
    config: AppConfig, tmp_path: Path
) -> None:
    config = files_config(config, tmp_path)
    holder = start_replica(replace(config, instance_id=f"{config.instance_id}-holder"), tmp_path)
    try:
        await wait_logged(tmp_path, "connected to", count=1)
        async with MesClient(config.mqtt.port) as mes:
            events = await mes.watch(f"{config.alarms.topic_prefix}/{SCOPE}/events")
            stored = await mes.watch(topic(config, "cvt") + "/TI-101")
            await asyncio.sleep(0.5)  # the holder has stored its start-up files
            await send(mes, config, {"Tag": "TI-101", "Value": 40.0})
            async with asyncio.timeout(10):
                await stored.get()  # the holder stores data events
            sent = time.time()
            await send(mes, config, {"Tag": "TI-101", "Value": 60.0})
            async with asyncio.timeout(5):
                while b"60" not in (await stored.get()).payload:
                    pass
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            assert events.empty()  # still inside its on-delay
            async with running(config):
                async with asyncio.timeout(ON_DELAY + 5):
                    raised = (await events.get()).json()
                risen = time.time()
        assert raised["Event"] == "raised" and raised["Alarm"] == "TI-101.H"
        assert raised["State"] == "unacknowledged"
        assert ON_DELAY - 0.3 <= risen - sent <= ON_DELAY + 1.0, risen - sent
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
