"""Traces: one MES request, its handling, Redis scripts and emitted events share a trace."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from microdcs.app.config import AppConfig
from microdcs.core.tracing import Tracing
from microdcs.examples.greeting import GREETING_TYPE
from tests.conftest import running
from tests.mesclient import MesClient, next_message

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"


def _tracing() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider), exporter


async def test_response_continues_the_trace_of_the_request(config: AppConfig) -> None:
    tracing, exporter = _tracing()
    topic = f"{config.greeting_prefix}/cell/commands"
    async with running(config, tracing=tracing), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(
            topic, GREETING_TYPE, {"name": "T"}, extra={"traceparent": TRACEPARENT}
        )
    assert reply.attributes["traceparent"].split("-")[1] == TRACE_ID
    [consumer] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert consumer.name == f"process {GREETING_TYPE}"
    assert format(consumer.context.trace_id, "032x") == TRACE_ID
    assert consumer.parent is not None and format(consumer.parent.span_id, "016x") == PARENT_SPAN
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.system"] == "mqtt"
    assert consumer.attributes["messaging.destination.name"] == topic
    assert consumer.attributes["cloudevents.event_type"] == GREETING_TYPE


async def test_store_request_status_event_and_redis_script_share_one_trace(
    config: AppConfig,
) -> None:
    tracing, exporter = _tracing()
    topic = f"{config.jobs_prefix}/woodworking/commands"
    async with running(config, tracing=tracing), MesClient(config.mqtt.port) as mes:
        events = await mes.watch(f"{config.jobs_prefix}/woodworking/events")
        reply = await mes.request(
            topic,
            f"{JC}.Store.v2",
            {"JobOrder": {"JobOrderID": "JT1"}, "Comment": []},
            extra={"traceparent": TRACEPARENT},
        )
        status = await next_message(events)
    assert reply.json() == {"ReturnStatus": 1}
    assert status.attributes["traceparent"].split("-")[1] == TRACE_ID
    spans = exporter.get_finished_spans()
    kinds = {s.kind for s in spans if format(s.context.trace_id, "032x") == TRACE_ID}
    assert {SpanKind.CONSUMER, SpanKind.CLIENT, SpanKind.PRODUCER} <= kinds
    scripts = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert scripts and all(s.name.startswith("EVALSHA ") for s in scripts)


async def test_without_an_exporter_an_incoming_trace_is_still_propagated(
    config: AppConfig,
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(
            topic, GREETING_TYPE, {"name": "P"}, extra={"traceparent": TRACEPARENT}
        )
    assert reply.attributes["traceparent"].split("-")[1] == TRACE_ID


async def test_without_incoming_trace_and_exporter_no_traceparent_is_invented(
    config: AppConfig,
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await mes.request(topic, GREETING_TYPE, {"name": "Q"})
    assert "traceparent" not in reply.attributes
