"""The replica's metrics in Prometheus form, through prometheus-client.

The instruments stay OpenTelemetry's (:class:`~microdcs.app.telemetry.metrics.Metrics`,
read at scrape time) plus the latency histograms the pipeline feeds directly; this module
only translates them into prometheus-client metric families at each scrape, on a registry
of the replica's own (no process-global state): counters are exposed as ``*_total``,
gauges as they are, histograms as cumulative ``_bucket{le=...}``, ``_sum`` and ``_count``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from opentelemetry.sdk.metrics.export import Gauge, MetricsData, Sum
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from microdcs.app.telemetry.metrics import LatencyHistogram, Metrics

__all__ = ["CONTENT_TYPE", "MetricsCollector", "exposition", "metric_name", "registry_of"]

#: The text exposition format prometheus-client writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metric_name(name: str) -> str:
    """``microdcs.messages.received`` -> ``microdcs_messages_received``."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def _bound(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class MetricsCollector(Collector):
    """Turns one replica's :class:`Metrics` into metric families when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from families(self.metrics.collect(), self.metrics.histograms)


def families(data: MetricsData | None, histograms: Iterable[LatencyHistogram]) -> Iterator[Metric]:
    """Counter and gauge families in name order, then the histograms."""
    metrics = (
        [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
        if data is not None
        else []
    )
    for metric in sorted(metrics, key=lambda m: m.name):
        points = list(getattr(metric.data, "data_points", ()))
        if not points:
            continue
        name = metric_name(metric.name)
        labels = sorted({str(k) for p in points for k in (p.attributes or {})})
        family: CounterMetricFamily | GaugeMetricFamily
        if isinstance(metric.data, Sum) and metric.data.is_monotonic:
            family = CounterMetricFamily(name, metric.description or "", labels=labels)
        elif isinstance(metric.data, Sum | Gauge):
            family = GaugeMetricFamily(name, metric.description or "", labels=labels)
        else:
            continue  # no other kinds are created by Metrics
        for point in points:
            attributes = point.attributes or {}
            family.add_metric([str(attributes.get(k, "")) for k in labels], float(point.value))
        yield family
    by_name: dict[str, list[LatencyHistogram]] = {}
    for histogram in histograms:
        by_name.setdefault(histogram.name, []).append(histogram)
    for name, group in sorted(by_name.items()):
        series = [point for histogram in group for point in histogram.points()]
        if not series:
            continue
        labels = sorted({k for point in series for k in point.attributes})
        hist = HistogramMetricFamily(name, group[0].description, labels=labels)
        for point in series:
            buckets = [(_bound(bound), float(count)) for bound, count in point.cumulative]
            hist.add_metric(
                [point.attributes.get(k, "") for k in labels], buckets, sum_value=point.total
            )
        yield hist


def registry_of(metrics: Metrics) -> CollectorRegistry:
    """A registry of this replica's metrics only (``auto_describe`` off: described when
    scraped, since what is registered changes until the replica is wired)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(metrics))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition of everything in ``registry``."""
    return generate_latest(registry)
