"""Trace context through the engine's work stream: what is stored, and where a step belongs."""

from __future__ import annotations

import contextlib
from typing import cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from microdcs.core.tracing import Tracing
from microdcs.equipment.ports import CommandOutlet
from microdcs.equipment.processor import EquipmentProcessor
from microdcs.jobs.contract import JobControl
from microdcs.sfc.engine.engine import SfcEngine
from microdcs.sfc.engine.plan import WorkItem
from microdcs.sfc.engine.ports import RecipeSource
from microdcs.sfc.engine.store import EngineStore
from microdcs.sfc.engine.tracecontext import NONE, Carried, step_parent

JOB_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
JOB = Carried(f"00-{JOB_TRACE}-00f067aa0ba902b7-01", "vendor=1")
IN_JOB = Carried(f"00-{JOB_TRACE}-1111111111111111-01")
FOREIGN = Carried("00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2222222222222222-01")


def _raw(item: WorkItem) -> dict[bytes, bytes]:
    """The item as Redis returns a stream entry (read or claimed alike)."""
    flat = item.fields()
    return {flat[i].encode(): flat[i + 1].encode() for i in range(0, len(flat), 2)}


def _parent_span_id(context: Context) -> str:
    span_context = trace.get_current_span(context).get_span_context()
    return format(span_context.span_id, "016x")


def _engine(tracing: Tracing) -> SfcEngine:
    return SfcEngine(
        cast(EngineStore, None), cast(JobControl, None), cast(RecipeSource, None),
        EquipmentProcessor(cast(CommandOutlet, None)), consumer="c", tracing=tracing,
    )  # fmt: skip


def test_a_work_item_keeps_the_trace_context_it_was_queued_with() -> None:
    item = WorkItem("done", "J1", "J1/A/a/1", '{"x":1}', trace=JOB)
    assert WorkItem.from_fields(_raw(item)) == item


def test_a_work_item_queued_outside_any_trace_has_no_trace_fields() -> None:
    item = WorkItem("start", "J1")
    assert "tp" not in item.fields() and "ts" not in item.fields()
    assert WorkItem.from_fields(_raw(item)).trace is NONE


def test_outside_any_span_no_context_is_captured() -> None:
    assert not Carried.current()


def test_inside_a_span_its_context_is_captured() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        carried = Carried.current()
    assert carried.trace_id == format(span.get_span_context().trace_id, "032x")
    assert carried.traceparent.split("-")[2] == format(span.get_span_context().span_id, "016x")


def test_a_step_caused_within_the_jobs_trace_is_a_child_of_its_cause() -> None:
    parent, links = step_parent(IN_JOB, JOB)
    assert parent is not None and _parent_span_id(parent) == "1111111111111111"
    assert links == []


def test_a_step_caused_from_another_trace_stays_in_the_jobs_trace_and_links_the_cause() -> None:
    parent, links = step_parent(FOREIGN, JOB)
    assert parent is not None and _parent_span_id(parent) == "00f067aa0ba902b7"
    assert [format(link.context.trace_id, "032x") for link in links] == [FOREIGN.trace_id]


def test_a_timer_step_runs_in_the_jobs_trace() -> None:
    parent, links = step_parent(NONE, JOB)
    assert parent is not None and _parent_span_id(parent) == "00f067aa0ba902b7"
    assert links == []


def test_the_start_of_a_job_continues_the_request_that_started_it() -> None:
    parent, _ = step_parent(IN_JOB, NONE)
    assert parent is not None and _parent_span_id(parent) == "1111111111111111"


def test_without_any_context_a_step_has_no_parent() -> None:
    assert step_parent(NONE, NONE) == (None, [])


def test_a_malformed_traceparent_starts_no_trace_and_links_nothing() -> None:
    parent, links = step_parent(Carried("garbage"), JOB)
    assert parent is not None and _parent_span_id(parent) == "00f067aa0ba902b7"
    assert links == []


def test_without_an_exporter_and_without_a_context_a_step_opens_no_span() -> None:
    engine = _engine(Tracing())
    assert isinstance(engine._step_span("s", WorkItem("done", "J1"), None), contextlib.nullcontext)


def test_a_step_span_is_a_child_of_the_items_context() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = _engine(Tracing(provider))
    with engine._step_span("s", WorkItem("done", "J1", "c", trace=IN_JOB), None):
        inner = Carried.current()
    [span] = exporter.get_finished_spans()
    assert span.name == "sfc step done" and span.kind is trace.SpanKind.INTERNAL
    assert span.parent is not None and format(span.parent.span_id, "016x") == "1111111111111111"
    assert inner.trace_id == JOB_TRACE
