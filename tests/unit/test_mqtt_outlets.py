"""The MQTT outlets: what the publisher and the equipment processor send looks as before."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.tracing import Tracing
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.mapping import MqttEnvelope
from microdcs.transports.mqtt.outlets import MqttCommandOutlet, MqttRetainedOutlet
from microdcs.transports.mqtt.topics import TopicLayout


class FakeHandler:
    """The public names of :class:`MqttHandler` the outlets use, recording calls."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.session_listeners: list[Any] = []
        self.calls: list[tuple[Any, ...]] = []

    async def publish(self, topic: str, envelope: MqttEnvelope) -> None:
        self.calls.append(("publish", topic, envelope))

    def publish_retained_nowait(
        self, topic: str, payload: bytes, *, expiry: int | None
    ) -> asyncio.Future[None]:
        self.calls.append(("retained", topic, payload, expiry))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def publish_retained(self, topic: str, payload: bytes, *, expiry: int | None) -> None:
        await self.publish_retained_nowait(topic, payload, expiry=expiry)

    def delete_retained_nowait(self, topic: str) -> asyncio.Future[None]:
        self.calls.append(("delete", topic))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _command_outlet(tracing: Tracing | None = None) -> tuple[FakeHandler, MqttCommandOutlet]:
    handler = FakeHandler()
    layout = TopicLayout("app/equipment", 3)
    return handler, MqttCommandOutlet(cast(MqttHandler, handler), layout, tracing or Tracing())


async def test_a_command_goes_to_the_scopes_commands_topic_with_its_correlation_data() -> None:
    handler, outlet = _command_outlet()
    await outlet.send(CloudEvent(type="t.cut", source="s", subject="plant.ww"), "J1/A/cut/1")
    [(_, topic, envelope)] = handler.calls
    assert topic == "app/equipment/plant/ww/commands"
    assert envelope.correlation_data == b"J1/A/cut/1"


async def test_the_answer_is_asked_for_on_the_scopes_shared_events_topic() -> None:
    handler, outlet = _command_outlet()
    await outlet.send(CloudEvent(type="t.cut", source="s"), "c")
    [(_, _, envelope)] = handler.calls
    assert envelope.response_topic == "app/equipment/events"


async def test_a_command_is_sent_in_a_producer_span_whose_context_it_carries() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _, outlet = _command_outlet(Tracing(provider))
    event = CloudEvent(type="t.cut", source="s", subject="ww")
    await outlet.send(event, "c")
    [span] = exporter.get_finished_spans()
    assert span.kind is SpanKind.PRODUCER
    assert span.attributes and span.attributes["messaging.destination.name"] == (
        "app/equipment/ww/commands"
    )
    trace_id = format(span.context.trace_id, "032x") if span.context else "none"
    assert trace_id in str(event.extensions["traceparent"])


async def test_retained_state_goes_through_the_handlers_retained_publishes() -> None:
    handler = FakeHandler()
    outlet = MqttRetainedOutlet(cast(MqttHandler, handler))
    await outlet.publish_nowait("app/jobs/order/J1", b"{}", expiry=60)
    await outlet.publish("app/jobs/metadata", b"{}", expiry=None)
    await outlet.delete_nowait("app/jobs/result/J1")
    assert handler.calls == [
        ("retained", "app/jobs/order/J1", b"{}", 60),
        ("retained", "app/jobs/metadata", b"{}", None),
        ("delete", "app/jobs/result/J1"),
    ]


def test_session_listeners_and_the_connected_event_are_the_handlers() -> None:
    handler = FakeHandler()
    outlet = MqttRetainedOutlet(cast(MqttHandler, handler))
    outlet.on_session(print)
    assert handler.session_listeners == [print]
    assert outlet.connected is handler.connected
