"""Scenario 18: every kind of bad input gets an error response and the runtime survives."""

from __future__ import annotations

import uuid

import pytest

from microdcs.app.config import AppConfig
from microdcs.examples.greeting import GREETING_TYPE
from tests.conftest import running
from tests.mesclient import MesClient, ce_properties


async def _assert_still_serving(mes: MesClient, topic: str) -> None:
    reply = await mes.request(topic, GREETING_TYPE, {"name": "after"})
    assert reply.json()["greeting"] == "Hello, after!"


@pytest.mark.parametrize(
    ("payload", "content_type", "kind"),
    [
        (b"{not json", "application/json", "invalid_payload"),
        (b'{"nom": "missing name"}', "application/json", "invalid_payload"),
        (b"[1, 2, 3]", "application/json", "invalid_payload"),
        (b"\xc1\xc1", "application/msgpack", "invalid_payload"),
        (b"plain text", "text/plain", "invalid_payload"),
    ],
    ids=["not-json", "missing-field", "array", "bad-msgpack", "unknown-content-type"],
)
async def test_undecodable_payload_gets_error_response(
    config: AppConfig, payload: bytes, content_type: str, kind: str
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        reply = await mes.request(
            topic, GREETING_TYPE, payload=payload, content_type=content_type, event_id="bad-1"
        )
        assert reply.attributes["mdcserrorkind"] == kind
        assert reply.attributes["mdcserrormessage"]
        assert reply.attributes["causationid"] == "bad-1"
        assert reply.attributes["type"] == GREETING_TYPE
        assert runtime.mqtt.stats.failed[kind] == 1
        await _assert_still_serving(mes, topic)


async def test_unknown_event_type_gets_unknown_type_error(config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(topic, "com.example.nobody.handles.this", {"x": 1})
        assert reply.attributes["mdcserrorkind"] == "unknown_type"
        await _assert_still_serving(mes, topic)


async def test_missing_cloudevent_attributes_get_invalid_event_error(config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config), MesClient(config.mqtt.port) as mes:
        # No user properties at all: not a CloudEvent.
        reply = await mes.request(
            topic, GREETING_TYPE, {"name": "x"}, extra=None, event_id="", source=""
        )
        assert reply.attributes["mdcserrorkind"] == "invalid_event"
        await _assert_still_serving(mes, topic)


async def test_odd_correlation_data_is_echoed_byte_for_byte(config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/commands"
    odd = bytes(range(256)) * 4
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(topic, GREETING_TYPE, {"name": "c"}, correlation_data=odd)
        assert reply.correlation_data == odd
        empty = await mes.request(topic, GREETING_TYPE, {"name": "c"}, correlation_data=b"")
        assert empty.json()["name"] == "c"
        await _assert_still_serving(mes, topic)


async def test_ten_megabyte_payload_gets_payload_too_large(config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/commands"
    big = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(topic, GREETING_TYPE, payload=big, timeout=15)
        assert reply.attributes["mdcserrorkind"] == "payload_too_large"
        await _assert_still_serving(mes, topic)


async def test_subject_that_disagrees_with_topic_is_invalid_request(config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/line1/commands"
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(topic, GREETING_TYPE, {"name": "s"}, subject="line2")
        assert reply.attributes["mdcserrorkind"] == "invalid_request"
        await _assert_still_serving(mes, topic)


async def test_bad_input_without_response_topic_is_logged_and_dropped(
    config: AppConfig, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        errors = await mes.watch(f"{config.greeting_prefix}/events")
        props = ce_properties(GREETING_TYPE, event_id=str(uuid.uuid4()))
        await mes.publish(topic, b"\x00garbage", props)
        error_event = await errors.get()
        assert error_event.attributes["mdcserrorkind"] == "invalid_payload"
        assert runtime.mqtt.stats.failed["invalid_payload"] == 1
        await _assert_still_serving(mes, topic)
    assert any("rejected" in record.message for record in caplog.records)
