"""Issue 12: what a hostile MQTT client sends cannot take a replica off the broker.

Each test reproduces a defect found against real Mosquitto: a poison Response Topic or
outgoing string that made the broker drop the runtime's connection over and over, a
confused-deputy Response Topic, a flood beyond the runtime's own bounds, requests
processed long after their expiry, and a publish the broker refuses forever.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import ClassVar

import orjson
import pytest

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.app.runtime import Runtime
from microdcs.examples.greeting import GREETING_TYPE
from microdcs.models import Model
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.transports.mqtt.mapping import MqttEnvelope
from tests.conftest import running
from tests.mesclient import MesClient, ce_properties, next_message

POISON_TYPE = "com.example.test.poison.v1"
SLOW_TYPE = "com.example.test.hostile.slow.v1"


@dataclass(kw_only=True)
class Poison(Model):
    __ce_type__: ClassVar[str] = POISON_TYPE
    subject: str


@dataclass(kw_only=True)
class SlowRequest(Model):
    __ce_type__: ClassVar[str] = SLOW_TYPE
    n: int
    seconds: float = 0.0


class HostileTestProcessor(CloudEventProcessor):
    """Emits an event on whatever scope it is told (a processor bug, on purpose) and
    answers slowly when asked to; counts what it really handled."""

    default_prefix = "test/hostile"

    def __init__(self, *, source: str) -> None:
        super().__init__(source=source)
        self.handled: list[int] = []

    @handles(Poison)
    async def poison(self, message: Poison, context: MessageContext) -> Model:
        await self.publish(message, subject=message.subject)
        return message

    @handles(SlowRequest)
    async def slow(self, message: SlowRequest, context: MessageContext) -> Model:
        self.handled.append(message.n)
        if message.seconds:
            await asyncio.sleep(message.seconds)
        return message


def _factory(prefix: str) -> tuple[list[HostileTestProcessor], object]:
    made: list[HostileTestProcessor] = []

    def bind(binder: Binder) -> None:
        processor = HostileTestProcessor(source=binder.source)
        made.append(processor)
        binder.bind(processor, prefix=prefix, rpc=False)

    return made, bind


async def _still_serving(mes: MesClient, config: AppConfig, name: str = "after") -> None:
    reply = await mes.request(f"{config.greeting_prefix}/commands", GREETING_TYPE, {"name": name})
    assert reply.json()["greeting"] == f"Hello, {name}!"


async def _stays_connected(runtime: Runtime, seconds: float = 1.5) -> None:
    """The connection the runtime had is still the one it has (no broker disconnect)."""
    epoch = runtime.mqtt.client.epoch
    await asyncio.sleep(seconds)
    assert runtime.mqtt.client.epoch == epoch
    assert runtime.mqtt.ready


async def test_wildcard_response_topic_gets_no_reply_and_keeps_the_connection(
    config: AppConfig,
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        errors = await mes.watch(f"{config.greeting_prefix}/events")
        props = ce_properties(
            GREETING_TYPE, response_topic="mes/x/#", correlation_data=b"c1", event_id="wild-1"
        )
        await mes.publish(topic, orjson.dumps({"name": "x"}), props)
        error = await next_message(errors)
        assert error.attributes["mdcserrorkind"] == "invalid_response_topic"
        assert error.attributes["causationid"] == "wild-1"
        await _stays_connected(runtime)
        assert runtime.mqtt.stats.failed["invalid_response_topic"] == 1
        await _still_serving(mes, config)


async def test_control_character_in_an_id_never_reaches_the_broker(config: AppConfig) -> None:
    """Structured mode carries any JSON string; the id comes back as correlationid."""
    topic = f"{config.greeting_prefix}/commands"
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        for bad in ("req-1\nsecond-line", "nul\x00byte", "bell\x07", "c1\x85"):
            event = {
                "specversion": "1.0",
                "id": bad,
                "source": "mes/test",
                "type": GREETING_TYPE,
                "datacontenttype": "application/json",
                "data": {"name": "x"},
            }
            reply = await mes.request(
                topic,
                GREETING_TYPE,
                payload=orjson.dumps(event),
                content_type="application/cloudevents+json",
            )
            assert reply.structured  # answered in the request's mode
            assert reply.ce_attributes()["mdcserrorkind"] in ("invalid_event", "invalid_outgoing")
            for value in reply.attributes.values():
                assert "\n" not in value and "\x00" not in value
        await _stays_connected(runtime)
        await _still_serving(mes, config)


async def test_processor_emitting_an_unsendable_topic_is_refused_at_the_boundary(
    config: AppConfig,
) -> None:
    prefix = f"{config.greeting_prefix}-hostile"
    made, bind = _factory(prefix)
    async with running(config, [bind]) as runtime, MesClient(config.mqtt.port) as mes:
        for subject in ("line\x01one", "tab\tscope", "del\x7f"):
            reply = await mes.request(
                f"{prefix}/commands", POISON_TYPE, {"subject": subject}, timeout=5
            )
            assert reply.attributes["mdcserrorkind"] == "invalid_outgoing"
            assert "cannot be sent" in reply.attributes["mdcserrormessage"]
        assert runtime.mqtt.stats.failed["invalid_outgoing"] == 3
        for subject in ("wild+card", "hash#tag"):  # the topic layout refuses these itself
            reply = await mes.request(f"{prefix}/commands", POISON_TYPE, {"subject": subject})
            assert reply.attributes["mdcserrorkind"] == "invalid_request"
        await _stays_connected(runtime)
        await _still_serving(mes, config)
    assert made


@pytest.mark.parametrize(
    "target",
    ["other-replica", "equipment-events", "own-jobs-commands", "reserved"],
)
async def test_response_topic_of_the_runtime_itself_is_refused(
    config: AppConfig, target: str
) -> None:
    """Confused deputy: a reply must not land on a topic the runtime serves or answers on."""
    response_topic = {
        "other-replica": f"{config.mqtt.response_topic_base}/another-replica",
        "equipment-events": f"{config.equipment_prefix}/ww/events",
        "own-jobs-commands": f"{config.jobs_prefix}/ww/commands",
        "reserved": "$SYS/broker/x",
    }[target]
    topic = f"{config.greeting_prefix}/commands"
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        victim = await mes.watch(response_topic)
        errors = await mes.watch(f"{config.greeting_prefix}/events")
        props = ce_properties(
            GREETING_TYPE, response_topic=response_topic, correlation_data=b"stolen-correlation"
        )
        await mes.publish(topic, orjson.dumps({"name": "deputy"}), props)
        error = await next_message(errors)
        assert error.attributes["mdcserrorkind"] == "invalid_response_topic"
        await asyncio.sleep(0.3)
        assert victim.empty()
        assert runtime.mqtt.stats.failed["invalid_response_topic"] == 1
        await _still_serving(mes, config)


async def test_response_topic_allow_list_is_enforced(config: AppConfig) -> None:
    mqtt = replace(config.mqtt, response_topic_allow="mes/+/responses")
    topic = f"{config.greeting_prefix}/commands"
    async with running(replace(config, mqtt=mqtt)), MesClient(config.mqtt.port) as mes:
        await _still_serving(mes, config)  # mes/<hex>/responses matches
        outside = await mes.watch("elsewhere/replies")
        errors = await mes.watch(f"{config.greeting_prefix}/events")
        props = ce_properties(
            GREETING_TYPE, response_topic="elsewhere/replies", correlation_data=b"c"
        )
        await mes.publish(topic, orjson.dumps({"name": "x"}), props)
        error = await next_message(errors)
        assert "APP_MQTT_RESPONSE_TOPIC_ALLOW" in error.attributes["mdcserrormessage"]
        assert outside.empty()


async def test_flood_beyond_receive_maximum_keeps_the_runtime_within_its_queue_bound(
    config: AppConfig,
) -> None:
    """The broker may send more than Receive Maximum; the runtime stops reading instead."""
    prefix = f"{config.greeting_prefix}-flood"
    made, bind = _factory(prefix)
    mqtt = replace(config.mqtt, receive_maximum=20000)
    bounded = replace(config, mqtt=mqtt, queue_size=64, workers=4)
    total = 3000
    async with running(bounded, [bind]) as runtime, MesClient(config.mqtt.port) as mes:
        peak = 0
        answered = 0
        done = asyncio.Event()
        replies = await mes.watch(f"{mes.response_topic}")

        async def count() -> None:
            nonlocal answered
            while answered < total:
                await replies.get()
                answered += 1
            done.set()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, runtime.mqtt.queue_depth)
                await asyncio.sleep(0.002)

        async with asyncio.TaskGroup() as group:
            group.create_task(count())
            group.create_task(sample())
            for n in range(total):
                props = ce_properties(
                    SLOW_TYPE, response_topic=mes.response_topic, correlation_data=b"%d" % n
                )
                await mes.publish(
                    f"{prefix}/commands", orjson.dumps({"n": n, "seconds": 0.005}), props
                )
            async with asyncio.timeout(60):
                await done.wait()
        assert answered == total
        assert sorted(made[0].handled) == list(range(total))
        # Mosquitto allows itself 1,000 in flight to us; the runtime holds 64.
        assert peak <= 64, peak


async def test_requests_that_expired_in_the_queue_are_answered_expired_not_processed(
    config: AppConfig,
) -> None:
    prefix = f"{config.greeting_prefix}-expiry"
    made, bind = _factory(prefix)
    slow = replace(config, workers=1, queue_size=512)
    total = 12
    async with running(slow, [bind]) as runtime, MesClient(config.mqtt.port) as mes:
        replies = await mes.watch(mes.response_topic)
        for n in range(total):
            props = ce_properties(
                SLOW_TYPE, response_topic=mes.response_topic, correlation_data=b"%d" % n
            )
            props.MessageExpiryInterval = 1
            await mes.publish(f"{prefix}/commands", orjson.dumps({"n": n, "seconds": 0.4}), props)
        kinds: list[str | None] = []
        for _ in range(total):
            reply = await next_message(replies, timeout=15)
            kinds.append(reply.attributes.get("mdcserrorkind"))
        processed = made[0].handled
        assert 1 <= len(processed) < total
        assert kinds.count("expired") == total - len(processed)
        assert runtime.mqtt.stats.failed["expired"] == total - len(processed)


async def test_a_publish_the_broker_refuses_is_dropped_after_bounded_attempts(
    config: AppConfig,
) -> None:
    """Mosquitto disconnects on a wildcard topic; re-sending it forever kept us offline."""
    mqtt = replace(config.mqtt, publish_attempts=3, reconnect_max_seconds=0.2)
    async with running(replace(config, mqtt=mqtt)) as runtime, MesClient(config.mqtt.port) as mes:
        client = runtime.mqtt.client
        acked = asyncio.Event()
        envelope = MqttEnvelope(payload=b"x")
        client.publish("bypass/#/check", envelope.payload, b"\x00", on_ack=acked.set)
        async with asyncio.timeout(20):
            await acked.wait()  # released as dropped, after three connections
        assert client.abandoned_publishes == 1
        assert runtime.mqtt.stats.failed["publish_abandoned"] == 1
        async with asyncio.timeout(10):
            await runtime.mqtt.connected.wait()
        epoch = client.epoch
        await _still_serving(mes, config)
        await asyncio.sleep(1)
        assert client.epoch == epoch


async def test_rejection_log_lines_are_capped_and_rate_limited(
    config: AppConfig, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    long_type = "t" * 10_000
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        caplog.set_level(logging.INFO)
        caplog.clear()
        for n in range(200):
            props = ce_properties(long_type, response_topic=mes.response_topic, event_id=f"l{n}")
            await mes.publish(topic, b"{}", props)
        await _still_serving(mes, config)
        rejected = sum(runtime.mqtt.stats.failed.values())
        assert rejected == 200
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert len(text) < 20_000, len(text)
        assert all(len(r.getMessage()) < 2_000 for r in caplog.records)


async def test_session_expiry_is_short_by_default_and_sent_to_the_broker(
    config: AppConfig,
) -> None:
    """A dead replica must not keep its share of the shared subscription for an hour."""
    default = AppConfig().mqtt.session_expiry
    assert 0 < default <= 15
    mqtt = replace(config.mqtt, session_expiry=default)
    async with running(replace(config, mqtt=mqtt)) as runtime:
        assert runtime.mqtt.client.options.session_expiry == default


async def test_an_overlong_topic_scope_is_an_invalid_request(config: AppConfig) -> None:
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        reply = await mes.request(
            f"{config.greeting_prefix}/{'s' * 5000}/commands", GREETING_TYPE, {"name": "x"}
        )
        assert reply.attributes["mdcserrorkind"] == "invalid_request"
        assert "scope longer than" in reply.attributes["mdcserrormessage"]
        assert runtime.mqtt.stats.failed["invalid_request"] == 1
