"""Tracing: OpenTelemetry spans and W3C trace context carried in CloudEvent extensions.

The CloudEvents distributed-tracing extension puts ``traceparent``/``tracestate`` on the
event itself, so a trace survives every hop (MQTT, RPC, Redis work streams). Spans follow
the OpenTelemetry messaging conventions. Without an exporter the tracer is a no-op that
still propagates an incoming context, so a trace started by the MES continues through a
replica that records nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from microdcs.core.cloudevent import TRACEPARENT, TRACESTATE, CloudEvent

_PROPAGATOR = TraceContextTextMapPropagator()


class Tracing:
    """The tracer of one replica; ``Tracing(None)`` records nothing but propagates."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.enabled = provider is not None
        source = provider if provider is not None else trace.NoOpTracerProvider()
        self._tracer = source.get_tracer("microdcs")

    # -- propagation ------------------------------------------------------------------------
    @staticmethod
    def extract(event: CloudEvent) -> Context | None:
        """The trace context an incoming event carries, if any."""
        parent = event.extensions.get(TRACEPARENT)
        if parent is None:
            return None
        carrier = {TRACEPARENT: str(parent)}
        state = event.extensions.get(TRACESTATE)
        if state is not None:
            carrier[TRACESTATE] = str(state)
        return _PROPAGATOR.extract(carrier)

    @staticmethod
    def inject(event: CloudEvent) -> None:
        """Write the current span's context into an outgoing event."""
        if not otel_context.get_current():
            return  # no span is current (the common case when tracing is off): cheap exit
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        event.extensions[TRACEPARENT] = carrier[TRACEPARENT]
        if TRACESTATE in carrier:
            event.extensions[TRACESTATE] = carrier[TRACESTATE]

    # -- spans ------------------------------------------------------------------------------
    def consume(
        self, event: CloudEvent, *, system: str, destination: str | None
    ) -> AbstractContextManager[Span]:
        """A CONSUMER span for handling ``event``, child of the context it carries.

        Without an exporter and without a context to continue there is nothing to record
        or propagate: the current span stays current, at next to no cost per message.
        """
        if not self.enabled and TRACEPARENT not in event.extensions:
            return contextlib.nullcontext(trace.get_current_span())
        return self._consume(event, system, destination)

    @contextlib.contextmanager
    def _consume(self, event: CloudEvent, system: str, destination: str | None) -> Iterator[Span]:
        attributes: dict[str, Any] = {
            "messaging.system": system,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.message.id": event.id,
            "cloudevents.event_id": event.id,
            "cloudevents.event_source": event.source,
            "cloudevents.event_type": event.type,
        }
        if destination is not None:
            attributes["messaging.destination.name"] = destination
        if event.subject is not None:
            attributes["cloudevents.event_subject"] = event.subject
        correlation = event.correlationid
        if correlation is not None:
            attributes["messaging.message.conversation_id"] = correlation
        with self._tracer.start_as_current_span(
            f"process {event.type}",
            context=self.extract(event),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=True,
        ) as span:
            yield span

    def produce(
        self, event: CloudEvent, *, system: str, destination: str
    ) -> AbstractContextManager[Span]:
        """A PRODUCER span for sending ``event``; its context is written into the event.

        Without an exporter no span is made; the trace being handled, if any, is still
        written into the event, so equipment and the MES continue it.
        """
        if not self.enabled:
            self.inject(event)
            return contextlib.nullcontext(trace.get_current_span())
        return self._produce(event, system, destination)

    @contextlib.contextmanager
    def _produce(self, event: CloudEvent, system: str, destination: str) -> Iterator[Span]:
        with self._tracer.start_as_current_span(
            f"send {event.type}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": system,
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.name": destination,
                "messaging.message.id": event.id,
                "cloudevents.event_type": event.type,
            },
        ) as span:
            self.inject(event)
            yield span

    @contextlib.contextmanager
    def client(self, name: str, attributes: Mapping[str, Any]) -> Iterator[Span]:
        """A CLIENT span (e.g. one Redis script call), recorded only inside a trace.

        Background loops (publisher polls, lease renewals) call Redis many times a second;
        outside a trace such a call is not worth a root span of its own.
        """
        current = trace.get_current_span()
        if not current.get_span_context().is_valid:
            yield current
            return
        with self._tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=dict(attributes)
        ) as span:
            yield span

    def span(
        self,
        name: str,
        *,
        parent: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] = (),
    ) -> AbstractContextManager[Span]:
        """A span under an explicit ``parent`` (``None``: the current context), made current.

        For work resumed outside the request that caused it, e.g. an SFC step taken from a
        Redis work stream, whose parent is the context stored with the work item. Without
        an exporter and without a parent to continue, nothing would be recorded or
        propagated: the current span stays current and the call costs next to nothing, so
        callers never check whether tracing is on.
        """
        if not self.enabled and parent is None:
            return contextlib.nullcontext(trace.get_current_span())
        return self._span(name, parent, kind, attributes, links)

    @contextlib.contextmanager
    def _span(
        self,
        name: str,
        parent: Context | None,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None,
        links: Sequence[Link],
    ) -> Iterator[Span]:
        with self._tracer.start_as_current_span(
            name,
            context=parent,
            kind=kind,
            attributes=dict(attributes) if attributes else None,
            links=links,
            record_exception=True,
        ) as span:
            yield span

    @staticmethod
    def mark_error(span: Span, kind: str, message: str) -> None:
        """Flag a span whose outcome was an error response."""
        if span.is_recording():
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, message))
