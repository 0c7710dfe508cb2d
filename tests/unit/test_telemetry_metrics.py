"""Metrics: transport counters read at scrape time, latency histograms, and their
Prometheus text as prometheus-client writes it from the replica's own registry."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from microdcs.app.telemetry.metrics import LatencyHistogram, Metrics
from microdcs.app.telemetry.prometheus import exposition, registry_of
from microdcs.processing.pipeline import TransportStats


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics("replica-1")
    yield m
    m.shutdown()


def scrape(metrics: Metrics) -> str:
    return exposition(registry_of(metrics)).decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in exposition text (labels must match exactly)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)", line)
        assert match, f"malformed line {line!r}"
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if match.group(1) == name and found == labels:
            return float(match.group(4))
    return None


def test_transport_counters_are_read_when_scraped_not_when_counted(metrics: Metrics) -> None:
    stats = TransportStats()
    metrics.observe_transport("mqtt", stats, queue_depth=lambda: 7, awaited=lambda: 2)
    stats.received = 5
    stats.processed = 3
    stats.fail("invalid_request")
    stats.fail("storage_unavailable")
    text = scrape(metrics)
    assert sample(text, "microdcs_messages_received_total", transport="mqtt") == 5
    assert sample(text, "microdcs_messages_processed_total", transport="mqtt") == 3
    assert (
        sample(text, "microdcs_messages_failed_total", transport="mqtt", kind="invalid_request")
        == 1
    )
    assert sample(text, "microdcs_redis_errors_total", where="mqtt") == 1
    assert sample(text, "microdcs_queue_depth", transport="mqtt") == 7
    assert sample(text, "microdcs_responses_awaited", transport="mqtt") == 2


def test_counters_are_typed_counter_and_gauges_gauge(metrics: Metrics) -> None:
    metrics.observe_transport("mqtt", TransportStats(), queue_depth=lambda: 0)
    text = scrape(metrics)
    assert "# TYPE microdcs_messages_received_total counter" in text
    assert sample(text, "microdcs_messages_received_total", transport="mqtt") == 0
    assert "# TYPE microdcs_queue_depth gauge" in text


def test_registered_component_sources_are_exported(metrics: Metrics) -> None:
    steps = [0]
    metrics.observe("microdcs.sfc.steps_fired", lambda: steps[0])
    metrics.observe("microdcs.sfc.active_executions", lambda: 4)
    metrics.observe("microdcs.publisher.lag_seconds", lambda: 0.25)
    steps[0] = 12
    text = scrape(metrics)
    assert sample(text, "microdcs_sfc_steps_fired_total") == 12
    assert sample(text, "microdcs_sfc_active_executions") == 4
    assert sample(text, "microdcs_publisher_lag_seconds") == 0.25


def test_observing_an_unknown_instrument_is_refused(metrics: Metrics) -> None:
    with pytest.raises(KeyError):
        metrics.observe("microdcs.no.such.thing", lambda: 1)


def test_latency_histogram_buckets_are_cumulative_with_inf_last() -> None:
    histogram = LatencyHistogram("mqtt", bounds=(0.01, 0.1))
    for seconds in (0.005, 0.01, 0.05, 3.0):
        histogram.record("t.v1", seconds, False)
    (point,) = histogram.points()
    assert point.cumulative == ((0.01, 2), (0.1, 3), (float("inf"), 4))
    assert point.count == 4
    assert point.total == pytest.approx(3.065)
    assert point.attributes == {"transport": "mqtt", "type": "t.v1", "outcome": "ok"}


def test_latency_histogram_separates_types_and_outcomes() -> None:
    histogram = LatencyHistogram("rpc")
    histogram.record("a.v1", 0.001, False)
    histogram.record("a.v1", 0.001, True)
    histogram.record("b.v1", 0.001, False)
    keys = {(p.attributes["type"], p.attributes["outcome"]) for p in histogram.points()}
    assert keys == {("a.v1", "ok"), ("a.v1", "error"), ("b.v1", "ok")}


def test_histogram_exposition_has_buckets_sum_and_count(metrics: Metrics) -> None:
    metrics.latency("mqtt").record("x.v1", 0.002, False)
    text = scrape(metrics)
    labels = {"outcome": "ok", "transport": "mqtt", "type": "x.v1"}
    assert "# TYPE microdcs_handling_seconds histogram" in text
    assert sample(text, "microdcs_handling_seconds_bucket", **labels, le="0.001") == 0
    assert sample(text, "microdcs_handling_seconds_bucket", **labels, le="0.0025") == 1
    assert sample(text, "microdcs_handling_seconds_bucket", **labels, le="+Inf") == 1
    assert sample(text, "microdcs_handling_seconds_count", **labels) == 1
    assert sample(text, "microdcs_handling_seconds_sum", **labels) == pytest.approx(0.002)


def test_label_values_are_escaped(metrics: Metrics) -> None:
    metrics.latency("mqtt").record('we"ird\\type\n', 0.001, False)
    text = scrape(metrics)
    assert 'type="we\\"ird\\\\type\\n"' in text
    for line in text.splitlines():
        assert line.startswith("#") or " " in line


def test_nothing_registered_renders_an_empty_exposition(metrics: Metrics) -> None:
    assert scrape(metrics) == ""
