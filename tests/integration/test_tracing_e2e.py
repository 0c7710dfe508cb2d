"""One trace end to end: the MES request, the job's recipe steps and the equipment commands.

The runtime records spans in memory; the equipment simulator (plain MQTT) echoes each
command's trace context on its answers and events, as the equipment contract asks.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from microdcs.app.config import AppConfig
from microdcs.core.tracing import Tracing
from tests.conftest import running
from tests.integration.sfc_helpers import (
    DRIED,
    scenario_recipe,
    simulator,
    states_until,
    work_master,
)
from tests.integration.test_jobs_helpers import JC, STATUS_EVENT, Station
from tests.mesclient import MesClient

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
MES_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{MES_SPAN}-01"
COMMANDS = ("com.example.cut.v1", "com.example.drill.v1", "com.example.sand.v1")


def _tracing() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider), exporter


def _trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def _span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.span_id, "016x")


async def test_mes_request_recipe_steps_and_equipment_commands_form_one_trace(
    config: AppConfig,
) -> None:
    # The retained-state publisher runs too: its background Redis calls belong to no
    # request and record no spans, so every span the replica records is in the MES trace.
    tracing, exporter = _tracing()
    async with (
        running(config, tracing=tracing) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, scopes=()) as sim,
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        await station.configure("workmaster", work_master("WM-T1", scenario_recipe()))
        exporter.clear()  # the configuration was a request of its own (another trace)
        order = {"JobOrderID": "T1", "WorkMasterID": [{"ID": "WM-T1"}]}
        reply = await station.call_raw(
            "StoreAndStart", {"JobOrder": order}, extra={"traceparent": TRACEPARENT}
        )
        assert reply.json() == {"ReturnStatus": 1}
        assert await states_until(events, "T1", 5) == [[2, 2], [3], [5, 1]]
    spans = exporter.get_finished_spans()

    assert {_trace_id(s) for s in spans} == {TRACE_ID}
    # One tree: every span hangs under the MES request's span or another recorded span.
    ids = {_span_id(s) for s in spans} | {MES_SPAN}
    orphans = [s.name for s in spans if s.parent is None or format(s.parent.span_id, "016x")
               not in ids]  # fmt: skip
    assert orphans == []

    names = {(s.kind, s.name) for s in spans}
    assert (SpanKind.CONSUMER, f"process {JC}.StoreAndStart.v2") in names
    assert (SpanKind.CLIENT, "EVALSHA sfc.cas") in names
    assert (SpanKind.CLIENT, "EVALSHA sfc.match") in names
    assert {(SpanKind.INTERNAL, "sfc step start"), (SpanKind.INTERNAL, "sfc step done")} <= names
    assert {(SpanKind.PRODUCER, f"send {t}") for t in COMMANDS} <= names
    assert {(SpanKind.CONSUMER, f"process {t}.response") for t in COMMANDS} <= names
    assert (SpanKind.CONSUMER, f"process {DRIED}") in names
    assert (SpanKind.PRODUCER, f"send {STATUS_EVENT}") in names

    # The equipment got every command with the trace, from the span that sent it.
    senders = {_span_id(s) for s in spans if s.kind is SpanKind.PRODUCER}
    assert {c.split("/")[2] for c, _ in sim.command_traces} == {"cut", "drill", "sand"}
    for _, traceparent in sim.command_traces:
        _, trace_id, span_id, _ = traceparent.split("-")
        assert trace_id == TRACE_ID
        assert span_id in senders
