"""Tracing without an exporter: nothing recorded, an incoming trace still carried on.

Callers never ask whether tracing is on; :class:`Tracing` decides inside, so these
behaviours are the whole contract of the no-op path.
"""

from __future__ import annotations

from microdcs.core.cloudevent import TRACEPARENT, CloudEvent
from microdcs.core.tracing import Tracing

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def event(**extensions: str) -> CloudEvent:
    return CloudEvent(type="t", source="s", id="1", extensions=dict(extensions))


def test_an_untraced_event_gets_no_span_and_sends_no_context() -> None:
    tracing = Tracing()
    with tracing.consume(event(), system="mqtt", destination="a/b") as span:
        assert not span.is_recording()
        out = event()
        with tracing.produce(out, system="mqtt", destination="a/c"):
            pass
    assert TRACEPARENT not in out.extensions


def test_an_incoming_trace_is_continued_into_what_is_sent() -> None:
    tracing = Tracing()
    with tracing.consume(event(traceparent=PARENT), system="mqtt", destination="a/b") as span:
        assert not span.is_recording()
        out = event()
        with tracing.produce(out, system="mqtt", destination="a/c"):
            pass
    assert str(out.extensions[TRACEPARENT]).split("-")[1] == PARENT.split("-")[1]


def test_a_span_without_a_parent_is_free_and_one_with_a_parent_continues_it() -> None:
    tracing = Tracing()
    with tracing.span("step") as span:
        assert not span.get_span_context().is_valid
    parent = Tracing.extract(event(traceparent=PARENT))
    with tracing.span("step", parent=parent):
        out = event()
        Tracing.inject(out)
    assert str(out.extensions[TRACEPARENT]).split("-")[1] == PARENT.split("-")[1]
