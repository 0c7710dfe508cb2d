"""The event pipeline reports each handled event's latency once, with its outcome."""

from __future__ import annotations

from microdcs.app.telemetry.metrics import LatencyHistogram
from microdcs.processing.pipeline import EventPipeline, TransportStats
from microdcs.processing.processor import MessageContext
from tests.unit.test_pipeline import TYPE, Counter, FlakyDedupe, _event


def _timed(
    dedupe: FlakyDedupe | None, retry: float = 5.0
) -> tuple[EventPipeline, LatencyHistogram]:
    histogram = LatencyHistogram("test")
    pipeline = EventPipeline(
        source="test",
        stats=TransportStats(),
        dedupe=dedupe,
        storage_retry_seconds=retry,
        latency=histogram,
    )
    return pipeline, histogram


def _counts(histogram: LatencyHistogram) -> dict[tuple[str, str], int]:
    return {(p.attributes["type"], p.attributes["outcome"]): p.count for p in histogram.points()}


async def test_each_handled_event_is_recorded_once_as_ok() -> None:
    pipeline, histogram = _timed(None)
    for n in range(3):
        event = _event(f"e{n}")
        await pipeline.process(event, Counter(), MessageContext(event, "test"))
    assert _counts(histogram) == {(TYPE, "ok"): 3}


async def test_an_event_answered_with_an_error_is_recorded_as_error() -> None:
    pipeline, histogram = _timed(FlakyDedupe(lookup_failures=100), retry=0.3)
    event = _event()
    await pipeline.process(event, Counter(), MessageContext(event, "test"))
    assert _counts(histogram) == {(TYPE, "error"): 1}
    (point,) = histogram.points()
    assert point.total >= 0.1  # the wait for Redis is part of the handling time


async def test_without_a_recorder_nothing_is_measured() -> None:
    pipeline = EventPipeline(
        source="test", stats=TransportStats(), dedupe=None, storage_retry_seconds=1.0
    )
    event = _event()
    responses = await pipeline.process(event, Counter(), MessageContext(event, "test"))
    assert responses[0].data == b'{"n":2}'
