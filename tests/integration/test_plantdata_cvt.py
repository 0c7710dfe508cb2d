"""The retained ``{prefix}/{scope}/cvt/{tag}`` topics through real Mosquitto: paced per
tag, the latest value wins, and a new subscriber gets the current value."""

from __future__ import annotations

import asyncio

from microdcs.app.config import AppConfig
from tests.conftest import running
from tests.integration.test_plantdata_helpers import (
    SCOPE,
    define,
    plant_config,
    send,
    topic,
    until_sample,
)
from tests.mesclient import MesClient, next_message

BURST = 200


async def test_a_burst_of_200_samples_gives_few_retained_publishes_the_last_holding_the_latest(
    config: AppConfig,
) -> None:
    config = plant_config(config, cvt_publish_interval_seconds=0.2)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        await define(mes, config, runtime, {"Name": "FI-9"}, {"Name": "PI-3"})
        cvt = await mes.watch(topic(config, "cvt") + "/+")
        for n in range(BURST):
            await send(mes, config, {"Tag": "FI-9", "Value": float(n)})
        await send(mes, config, {"Tag": "PI-3", "Value": 2.5})
        await until_sample(runtime, "FI-9", lambda s: s.value == float(BURST - 1))
        await asyncio.sleep(0.6)  # past the interval: the last value is out
        seen: list[tuple[str, float]] = []
        while not cvt.empty():
            message = cvt.get_nowait()
            seen.append((message.topic.rsplit("/", 1)[1], message.json()["Value"]))
        flow = [value for tag, value in seen if tag == "FI-9"]
        assert 1 <= len(flow) <= 10, flow
        assert flow[-1] == float(BURST - 1)
        assert ("PI-3", 2.5) in seen
        assert runtime.plantdata.stored == BURST + 1
    async with MesClient(config.mqtt.port) as late:  # retained: a new subscriber sees it
        retained = await late.watch(f"{config.plantdata.topic_prefix}/{SCOPE}/cvt/FI-9")
        message = await next_message(retained)
        body = message.json()
        assert message.retain
        assert (body["Tag"], body["Value"], body["Quality"]) == ("FI-9", float(BURST - 1), "good")
