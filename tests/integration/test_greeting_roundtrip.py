"""Request/response through the real broker with the greeting processor."""

from __future__ import annotations

import asyncio

import orjson

from microdcs.app.config import AppConfig
from microdcs.examples.greeting import GREETING_TYPE
from tests.conftest import running
from tests.mesclient import MesClient, ce_properties, next_message


async def test_binary_request_gets_typed_response_with_echoed_correlation(
    config: AppConfig,
) -> None:
    topic = f"{config.greeting_prefix}/plant1/line2/commands"
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(
            topic, GREETING_TYPE, {"name": "Ada"}, correlation_data=b"\x00\xffcorr", event_id="e-1"
        )
    assert reply.correlation_data == b"\x00\xffcorr"
    assert reply.json() == {"greeting": "Hello, Ada!", "name": "Ada"}
    assert reply.attributes["type"] == GREETING_TYPE
    assert reply.attributes["causationid"] == "e-1"
    assert reply.attributes["correlationid"] == "e-1"
    assert reply.attributes["subject"] == "plant1.line2"
    assert reply.attributes["source"] == config.resolved_source
    assert reply.content_type == "application/json"
    assert reply.payload_format == 1
    assert "datacontenttype" not in reply.attributes


async def test_structured_mode_request_is_accepted(config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/cell/commands"
    event = {
        "specversion": "1.0",
        "id": "s-1",
        "source": "mes/structured",
        "type": GREETING_TYPE,
        "datacontenttype": "application/json",
        "correlationid": "wf-9",
        "data": {"name": "Grace"},
    }
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(
            topic,
            GREETING_TYPE,
            payload=orjson.dumps(event),
            content_type="application/cloudevents+json; charset=utf-8",
        )
    answer = reply.json()  # structured, like the request (test_response_mode.py)
    assert answer["data"]["greeting"] == "Hello, Grace!"
    assert answer["correlationid"] == "wf-9"
    assert answer["causationid"] == "s-1"
    assert answer["subject"] == "cell"


async def test_msgpack_request_gets_msgpack_response_without_utf8_indicator(
    config: AppConfig,
) -> None:
    import msgpack

    topic = f"{config.greeting_prefix}/commands"
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(
            topic,
            GREETING_TYPE,
            payload=msgpack.packb({"name": "Lin"}),
            content_type="application/msgpack",
        )
    assert reply.content_type == "application/msgpack"
    assert reply.payload_format is None
    assert msgpack.unpackb(reply.payload) == {"greeting": "Hello, Lin!", "name": "Lin"}


async def test_duplicate_request_gets_same_response_once_processed(config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        first = await mes.request(topic, GREETING_TYPE, {"name": "A"}, event_id="dup-1")
        second = await mes.request(topic, GREETING_TYPE, {"name": "A"}, event_id="dup-1")
        assert runtime.mqtt.stats.duplicates == 1
        assert runtime.mqtt.stats.processed == 1
    assert first.payload == second.payload
    assert first.attributes["id"] == second.attributes["id"]


async def test_event_without_response_topic_is_processed_and_acknowledged(
    config: AppConfig,
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        events = await mes.watch(f"{config.greeting_prefix}/events")
        await mes.publish(topic, b'{"name": "N"}', ce_properties(GREETING_TYPE))
        published = await next_message(events)
        assert published.json()["greeting"] == "Hello, N!"
        await asyncio.sleep(0.1)
        assert runtime.mqtt.stats.processed == 1


async def test_a_burst_mixing_new_and_duplicate_requests_gets_each_its_own_answer(
    config: AppConfig,
) -> None:
    """Requests arriving together are looked up for dedupe in one batch (MGET): every
    reply must still belong to its own request, duplicates to the first processing."""
    topic = f"{config.greeting_prefix}/commands"
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        first = await asyncio.gather(
            *(
                mes.request(topic, GREETING_TYPE, {"name": f"n{i}"}, event_id=f"burst-{i}")
                for i in range(10)
            )
        )
        # Even ids again (duplicates, deliberately with another name), odd ones new.
        second = await asyncio.gather(
            *(
                mes.request(
                    topic,
                    GREETING_TYPE,
                    {"name": f"other{i}"},
                    event_id=f"burst-{i}" if i % 2 == 0 else f"burst-new-{i}",
                )
                for i in range(10)
            )
        )
        assert runtime.mqtt.stats.duplicates == 5
        assert runtime.mqtt.stats.processed == 15
    for i, reply in enumerate(first):
        assert reply.json()["greeting"] == f"Hello, n{i}!"
        assert reply.attributes["causationid"] == f"burst-{i}"
    for i, reply in enumerate(second):
        if i % 2 == 0:  # the recorded answer of the first processing, byte for byte
            assert reply.payload == first[i].payload
            assert reply.attributes["id"] == first[i].attributes["id"]
        else:
            assert reply.json()["greeting"] == f"Hello, other{i}!"
            assert reply.attributes["causationid"] == f"burst-new-{i}"
