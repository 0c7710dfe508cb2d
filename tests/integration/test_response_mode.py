"""Issue 15, item 5: a response travels in its request's mode.

An MES that sends structured-mode CloudEvents (the whole event as JSON, Content Type
``application/cloudevents+json``) parses the answer with the same ``cloudevents`` SDK
call, so it gets a structured-mode answer; a binary-mode request gets a binary one.
The MES here is plain aiomqtt plus the SDK, no microdcs code.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1.http import from_json
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microdcs.app.config import AppConfig
from microdcs.examples.greeting import GREETING_TYPE
from tests.conftest import running
from tests.mesclient import MesClient, Received, next_message

STRUCTURED = "application/cloudevents+json; charset=utf-8"


def structured_event(**attributes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"s-{uuid.uuid4().hex[:8]}",
        "source": "mes/structured",
        "type": GREETING_TYPE,
        "datacontenttype": "application/json",
        "data": {"name": "Grace"},
    }
    event.update(attributes)
    return event


async def structured_request(
    mes: MesClient, topic: str, event: dict[str, Any], *, expiry: int | None = None
) -> Received:
    """Publish ``event`` in structured mode (no CloudEvent User Properties) and await the
    message on the Response Topic that echoes the Correlation Data."""
    replies = await mes.watch(mes.response_topic)
    correlation = uuid.uuid4().bytes
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = STRUCTURED
    props.PayloadFormatIndicator = 1
    props.ResponseTopic = mes.response_topic
    props.CorrelationData = correlation
    if expiry is not None:
        props.MessageExpiryInterval = expiry
    await mes.publish(topic, orjson.dumps(event), props)
    while True:
        reply = await next_message(replies)
        if reply.correlation_data == correlation:
            return reply


def assert_structured(reply: Received) -> None:
    assert reply.content_type is not None
    assert reply.content_type.split(";")[0] == "application/cloudevents+json"
    assert reply.payload_format == 1
    # No binary-mode attributes beside the JSON event.
    assert "type" not in reply.attributes and "specversion" not in reply.attributes


async def test_a_structured_request_gets_a_structured_response_the_sdk_parses(
    config: AppConfig,
) -> None:
    topic = f"{config.greeting_prefix}/plant1/commands"
    request = structured_event(correlationid="wf-7")
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await structured_request(mes, topic, request, expiry=30)
    assert_structured(reply)
    answer = from_json(reply.payload)  # the classic SDK API (cloudevents.http)
    assert answer["type"] == GREETING_TYPE
    assert answer["source"] == config.resolved_source
    assert answer["id"] and answer["id"] != request["id"]
    assert answer["subject"] == "plant1"
    assert answer["causationid"] == request["id"]
    assert answer["correlationid"] == "wf-7"
    assert answer.data == {"greeting": "Hello, Grace!", "name": "Grace"}
    # The event format carries the expiry too, the same as the MQTT property.
    assert reply.expiry is not None and 0 < reply.expiry <= 30
    assert answer["expiryinterval"] == reply.expiry
    core = JSONFormat().read(None, reply.payload)  # and the SDK's v2 core API
    assert core.get_type() == GREETING_TYPE
    assert core.get_data() == {"greeting": "Hello, Grace!", "name": "Grace"}


async def test_a_structured_request_that_fails_gets_a_structured_error(
    config: AppConfig,
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    request = structured_event(data={"nom": "x"})
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await structured_request(mes, topic, request)
    assert_structured(reply)
    answer = from_json(reply.payload)
    assert answer["type"] == GREETING_TYPE
    assert answer["mdcserrorkind"] == "invalid_payload"
    assert answer["causationid"] == request["id"]
    assert reply.expiry == answer["expiryinterval"] == 60


async def test_an_undecodable_structured_request_gets_a_structured_error(
    config: AppConfig,
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    request = structured_event()
    del request["source"]
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await structured_request(mes, topic, request)
    assert_structured(reply)
    assert from_json(reply.payload)["mdcserrorkind"] == "invalid_event"


async def test_a_binary_request_still_gets_a_binary_response(config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(topic, GREETING_TYPE, {"name": "Ada"}, event_id="b-1")
    assert reply.content_type == "application/json"
    assert reply.attributes["type"] == GREETING_TYPE
    assert reply.attributes["causationid"] == "b-1"
    assert reply.json() == {"greeting": "Hello, Ada!", "name": "Ada"}


async def test_an_expiryinterval_in_the_event_bounds_the_response_without_a_message_expiry(
    config: AppConfig,
) -> None:
    """The event format carries the expiry as an attribute; without the MQTT property it
    is the request's expiry all the same."""
    topic = f"{config.greeting_prefix}/commands"
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await structured_request(mes, topic, structured_event(expiryinterval=20))
    assert reply.expiry is not None and 0 < reply.expiry <= 20
    assert from_json(reply.payload)["expiryinterval"] == reply.expiry
