"""W3C trace context kept in Redis with work items and executions.

A work item is processed later, perhaps by another replica, so the context of what caused
it travels as the two W3C header strings (stream fields ``tp``/``ts``, and the same
fields of the execution hash for the job's own trace). Nothing is parsed while no
``traceparent`` is present, which is the no-tracing fast path.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from microdcs.core.cloudevent import TRACEPARENT, TRACESTATE

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True, slots=True)
class Carried:
    """A trace context as stored: ``traceparent`` ("" for none) and ``tracestate``."""

    traceparent: str = ""
    tracestate: str = ""

    def __bool__(self) -> bool:
        return bool(self.traceparent)

    @classmethod
    def current(cls) -> Carried:
        """The current span's context (the request being handled), or an empty carrier."""
        span_context = trace.get_current_span().get_span_context()
        if not span_context.is_valid:
            return NONE
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return cls(carrier.get(TRACEPARENT, ""), carrier.get(TRACESTATE, ""))

    def fields(self) -> list[str]:
        """Stream or hash field/value pairs; none when there is no context."""
        if not self.traceparent:
            return []
        return ["tp", self.traceparent, "ts", self.tracestate]

    def context(self) -> Context:
        """The context to start a span under (empty, i.e. a new trace, if malformed)."""
        carrier = {TRACEPARENT: self.traceparent}
        if self.tracestate:
            carrier[TRACESTATE] = self.tracestate
        return _PROPAGATOR.extract(carrier)

    @property
    def trace_id(self) -> str:
        return self.traceparent.split("-", 2)[1] if self.traceparent.count("-") >= 2 else ""


NONE = Carried()


def step_parent(item: Carried, job: Carried) -> tuple[Context | None, list[Link]]:
    """Where the span processing a work item belongs.

    In the job's trace (the MES request that started it): under the item's own context
    when that is part of the job's trace (the exact cause, e.g. the equipment answer),
    otherwise under the job's context with a link to the item's (an MES Stop request,
    an event from equipment that does not propagate our context). ``(None, [])`` when
    neither is known.
    """
    if item and (not job or item.trace_id == job.trace_id):
        return item.context(), []
    if not job:
        return None, []
    links: list[Link] = []
    if item:
        linked = trace.get_current_span(item.context()).get_span_context()
        if linked.is_valid:
            links.append(Link(linked))
    return job.context(), links
