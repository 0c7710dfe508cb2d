"""The current value table through real Mosquitto and Redis: tags configured by
CloudEvent and by file, data events (JSON and msgpack), the deadband, refusals that store
nothing, reads over MQTT and MessagePack-RPC, and deleting a tag."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from microdcs.app.config import AppConfig, RpcConfig
from microdcs.core.errors import ConfigurationError
from microdcs.plantdata.contract import Quality
from tests.conftest import running
from tests.integration.test_msgpack_rpc_helpers import raw_client
from tests.integration.test_plantdata_helpers import (
    DATA,
    READ,
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

SPEED = {"Name": "SI-7", "DataType": "int"}
RUNNING = {"Name": "M-1.running", "DataType": "bool"}
MODE = {"Name": "M-1.mode", "DataType": "string"}


async def test_a_data_event_stores_value_quality_source_and_receive_time_of_each_sample(
    config: AppConfig,
) -> None:
    config = plant_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        await define(mes, config, runtime, TEMP, SPEED, RUNNING, MODE)
        before = time.time()
        await send(
            mes, config,
            {"Tag": "TI-101", "Value": 181.5, "Timestamp": 1_700_000_000.25},
            {"Tag": "SI-7", "Value": 1200, "Quality": "uncertain"},
            {"Tag": "M-1.running", "Value": True},
            {"Tag": "M-1.mode", "Value": "auto mode", "Quality": "bad"},
        )  # fmt: skip
        temp = await until_sample(runtime, "TI-101", lambda s: s.value is not None)
        assert (temp.value, temp.quality, temp.source_time) == (181.5, Quality.GOOD, 1.7e9 + 0.25)
        assert before <= temp.receive_time <= time.time()
        samples = await runtime.plantdata.read(SCOPE, ["SI-7", "M-1.running", "M-1.mode"])
        assert samples["SI-7"].value == 1200 and samples["SI-7"].quality is Quality.UNCERTAIN
        assert samples["SI-7"].source_time == samples["SI-7"].receive_time  # no Timestamp
        assert samples["M-1.running"].value is True
        assert (samples["M-1.mode"].value, samples["M-1.mode"].quality) == (
            "auto mode",
            Quality.BAD,
        )
        # msgpack carries the same; an int is a valid value of a float tag.
        await send(mes, config, {"Tag": "TI-101", "Value": 190}, msgpack_payload=True)
        temp = await until_sample(runtime, "TI-101", lambda s: s.value == 190)
        assert isinstance(temp.value, float)
        assert runtime.plantdata.stored == 5


async def test_a_change_inside_the_deadband_is_not_stored_but_a_quality_change_is(
    config: AppConfig,
) -> None:
    config = plant_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        await define(mes, config, runtime, TEMP)  # deadband 0.5
        await send(mes, config, {"Tag": "TI-101", "Value": 100.0})
        first = await until_sample(runtime, "TI-101", lambda s: s.value == 100.0)
        await send(mes, config, {"Tag": "TI-101", "Value": 100.4})
        await send(mes, config, {"Tag": "TI-101", "Value": 99.5})
        await send(mes, config, {"Tag": "TI-101", "Value": 100.2, "Quality": "uncertain"})
        changed = await until_sample(runtime, "TI-101", lambda s: s.quality is Quality.UNCERTAIN)
        assert changed.value == 100.2 and changed.receive_time > first.receive_time
        await send(mes, config, {"Tag": "TI-101", "Value": 100.8, "Quality": "uncertain"})
        await until_sample(runtime, "TI-101", lambda s: s.value == 100.8)
        assert runtime.plantdata.stored == 3  # 100.4 and 99.5 were inside the deadband


async def test_bad_samples_give_one_error_event_naming_each_and_store_nothing(
    config: AppConfig,
) -> None:
    config = plant_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        await define(mes, config, runtime, TEMP, SPEED)
        events = await mes.watch(topic(config, "events"))
        cvt = runtime.plantdata.store.keys(SCOPE).cvt
        await send(
            mes, config,
            {"Tag": "TI-101", "Value": 20.0},  # good, but its event is refused
            {"Tag": "nope", "Value": 1.0},
            {"Tag": "SI-7", "Value": 2.5},
            {"Tag": "SI-7", "Value": "fast"},
        )  # fmt: skip
        refused = await next_message(events)
        assert refused.attributes["mdcserrorkind"] == "invalid_request"
        message = refused.attributes["mdcserrormessage"]
        assert "Samples[1] (tag 'nope'): no such tag" in message
        assert "Samples[2] (tag 'SI-7'): an int tag, got a number" in message
        assert "Samples[3] (tag 'SI-7'): an int tag, got a string" in message
        assert "Samples[0]" not in message
        await send(
            mes, config,
            {"Tag": "TI-101", "Value": 21.0},
            {"Tag": "TI-101", "Value": [1, 2]},
            {"Value": 3.0},
            {"Tag": "TI-101", "Value": 1.0, "Quality": "great"},
            {"Tag": "TI-101", "Value": 1.0, "Timestamp": "yesterday"},
        )  # fmt: skip
        malformed = (await next_message(events)).attributes["mdcserrormessage"]
        for index in (1, 2, 3, 4):
            assert f"Samples[{index}]" in malformed
        for payload in (b"{not json", b'{"Samples": []}', b'{"Samples": 3}'):
            props = ce_properties(DATA, subject=SCOPE)
            await mes.publish(topic(config, "data"), payload, props)
            error = await next_message(events)
            assert error.attributes["mdcserrorkind"] in ("invalid_payload", "invalid_request")
        assert await runtime.store.execute("HGETALL", cvt) in ([], {})
        assert runtime.plantdata.stored == 0 and runtime.plantdata.rejected >= 7


async def test_a_bad_tag_configuration_is_an_error_and_stores_nothing(config: AppConfig) -> None:
    config = plant_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        for tag in (
            {"Name": "a/b"},
            {"Name": ""},
            {"Name": "x", "DataType": "complex"},
            {"Name": "x", "Deadband": -1},
            {"Name": "x", "StaleTimeout": 1e12},
            {"Name": "x", "Colour": "red"},
        ):
            response = await mes.request(topic(config, "commands"), TAG_CONFIG, tag, subject=SCOPE)
            assert response.attributes["mdcserrorkind"] in ("invalid_payload", "invalid_request")
        assert await runtime.plantdata.store.definitions(SCOPE) == {}


async def test_a_read_over_mqtt_answers_many_tags_and_lists_the_unknown_ones(
    config: AppConfig,
) -> None:
    config = plant_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        await define(mes, config, runtime, TEMP, SPEED)
        await send(mes, config, {"Tag": "TI-101", "Value": 55.0, "Timestamp": 1000.0})
        await until_sample(runtime, "TI-101", lambda s: s.value == 55.0)
        response = await mes.request(
            topic(config, "commands"), READ, {"Tags": ["TI-101", "nope", "SI-7"]}, subject=SCOPE
        )
        assert response.attributes["type"] == READ
        body = response.json()
        assert body["Unknown"] == ["nope"]
        temp, speed = body["Samples"]
        assert (temp["Tag"], temp["Value"], temp["Quality"], temp["SourceTime"]) == (
            "TI-101", 55.0, "good", 1000.0
        )  # fmt: skip
        assert (speed["Tag"], speed.get("Value"), speed["Quality"]) == ("SI-7", None, "bad")


async def test_a_read_over_messagepack_rpc_answers_like_mqtt(config: AppConfig) -> None:
    config = replace(plant_config(config), rpc=RpcConfig(enabled=True, port=0))
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        server = runtime.rpc
        assert server is not None
        async with asyncio.timeout(5):
            while not server.ready:
                await asyncio.sleep(0.02)
        await define(mes, config, runtime, TEMP)
        event = {
            "specversion": "1.0", "id": "rpc-data-1", "source": "sidecar/test", "type": DATA,
            "subject": SCOPE, "datacontenttype": "application/json",
            "data": {"Samples": [{"Tag": "TI-101", "Value": 42.0}]},
        }  # fmt: skip
        async with raw_client(server.port) as rpc:
            _, _, error, responses = await rpc.call(1, "publish", event)
            assert error is None and responses == []
            read = {**event, "id": "rpc-read-1", "type": READ, "data": {"Tags": ["TI-101", "x"]}}
            _, _, error, [answer] = await rpc.call(2, "publish", read)
        assert error is None
        assert answer["data"]["Unknown"] == ["x"]
        assert answer["data"]["Samples"][0]["Value"] == 42.0


async def test_deleting_a_tag_drops_its_value_and_later_samples_are_refused(
    config: AppConfig,
) -> None:
    config = plant_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        await define(mes, config, runtime, TEMP)
        cvt = await mes.watch(topic(config, "cvt") + "/TI-101")
        await send(mes, config, {"Tag": "TI-101", "Value": 1.0})
        await until_sample(runtime, "TI-101", lambda s: s.value == 1.0)
        assert (await next_message(cvt)).json()["Value"] == 1.0
        events = await mes.watch(topic(config, "events"))
        props = ce_properties(TAG_CONFIG, subject=SCOPE, extra={"method": "DELETE"})
        await mes.publish(topic(config, "commands"), orjson.dumps({"Name": "TI-101"}), props)
        async with asyncio.timeout(5):
            while await runtime.plantdata.read(SCOPE, ["TI-101"]):
                await asyncio.sleep(0.01)
        assert (await next_message(cvt)).payload == b""  # the retained value removed
        await send(mes, config, {"Tag": "TI-101", "Value": 2.0})
        assert "no such tag" in (await next_message(events)).attributes["mdcserrormessage"]
        assert await runtime.store.execute("HGETALL", runtime.plantdata.store.keys(SCOPE).cvt) in (
            [], {}
        )  # fmt: skip


async def test_the_tag_file_is_stored_at_start_up_and_a_bad_one_stops_the_start(
    config: AppConfig, tmp_path: Path
) -> None:
    path = tmp_path / "tags.json"
    path.write_bytes(orjson.dumps({SCOPE: [TEMP, SPEED]}))
    good = plant_config(config, tags_file=str(path))
    async with running(good) as runtime:
        async with asyncio.timeout(5):
            while len(await runtime.plantdata.read(SCOPE, ["TI-101", "SI-7"])) < 2:
                await asyncio.sleep(0.02)
    path.write_bytes(orjson.dumps({SCOPE: [{"Name": "ok"}, {"Name": "a/b"}, {"Deadband": 1}]}))
    with pytest.raises(ConfigurationError) as raised:
        async with running(good):
            pass
    assert "APP_PLANT_TAGS_FILE" in str(raised.value)
    assert "[1]" in str(raised.value) and "[2]" in str(raised.value)
    assert "[0]" not in str(raised.value)
