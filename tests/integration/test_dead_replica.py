"""Issue 12, defect 6: a replica that dies stops receiving its share within seconds.

With the old default Session Expiry (3,600 s) Mosquitto kept queueing half of the
shared-subscription traffic for a SIGKILLed replica: those commands waited until it came
back, or for an hour. With the short default the session, and its share, is gone soon.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from pathlib import Path

from microdcs.app.config import AppConfig, MqttConfig
from microdcs.examples.greeting import GREETING_TYPE
from tests.conftest import running
from tests.integration.test_lifecycle import _start_replica
from tests.mesclient import MesClient


async def test_sigkilled_replica_loses_its_share_after_the_default_session_expiry(
    config: AppConfig, tmp_path: Path
) -> None:
    default_expiry = MqttConfig().session_expiry
    config = replace(config, mqtt=replace(config.mqtt, session_expiry=default_expiry))
    other = replace(config, instance_id=config.instance_id + "-survivor")
    topic = f"{config.greeting_prefix}/commands"
    victim = _start_replica(config, tmp_path)
    try:
        async with running(other), MesClient(config.mqtt.port) as mes:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while True:  # until the victim has answered once: then it is subscribed
                assert loop.time() < deadline, "the victim replica never answered"
                try:
                    reply = await mes.request(topic, GREETING_TYPE, {"name": "up"}, timeout=0.5)
                except TimeoutError:
                    continue
                if reply.attributes["source"].endswith(config.instance_id):
                    break
                await asyncio.sleep(0.05)
            victim.send_signal(signal.SIGKILL)
            await asyncio.to_thread(victim.wait, 10)
            await asyncio.sleep(default_expiry + 2)
            replies = await asyncio.gather(
                *(
                    mes.request(topic, GREETING_TYPE, {"name": f"d{i}"}, timeout=3)
                    for i in range(20)
                ),
                return_exceptions=True,
            )
        answered = [r for r in replies if not isinstance(r, BaseException)]
        assert len(answered) == 20, f"{20 - len(answered)} requests went to the dead replica"
        assert all(r.attributes["source"].endswith("-survivor") for r in answered)
    finally:
        victim.kill()
