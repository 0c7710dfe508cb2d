"""Prometheus text exposition (format 0.0.4) of the OpenTelemetry data and histograms.

Small enough to write here instead of pulling in prometheus-client: counters become
``*_total``, gauges stay as they are, and latency histograms expose cumulative
``_bucket{le=...}``, ``_sum`` and ``_count`` series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from opentelemetry.sdk.metrics.export import Gauge, MetricsData, NumberDataPoint, Sum

from microdcs.app.telemetry.metrics import HistogramPoint, LatencyHistogram

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metric_name(name: str) -> str:
    """``microdcs.messages.received`` -> ``microdcs_messages_received``."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(attributes: Mapping[str, object], extra: str = "") -> str:
    parts = [f'{metric_name(k)}="{_escape(str(v))}"' for k, v in sorted(attributes.items())]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _family(lines: list[str], name: str, kind: str, description: str) -> None:
    lines.append(f"# HELP {name} {_escape(description)}")
    lines.append(f"# TYPE {name} {kind}")


def render(data: MetricsData | None, histograms: Iterable[LatencyHistogram] = ()) -> str:
    """The exposition text of everything collected, metric families in a stable order."""
    lines: list[str] = []
    metrics = (
        [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
        if data is not None
        else []
    )
    for metric in sorted(metrics, key=lambda m: m.name):
        points: list[NumberDataPoint]
        name = metric_name(metric.name)
        if isinstance(metric.data, Sum) and metric.data.is_monotonic:
            name += "_total"
            kind = "counter"
        elif isinstance(metric.data, Sum | Gauge):
            kind = "gauge"
        else:
            continue  # no other kinds are created by Metrics
        points = list(metric.data.data_points)
        if not points:
            continue
        _family(lines, name, kind, metric.description or "")
        for point in points:
            lines.append(f"{name}{_labels(dict(point.attributes or {}))} {_number(point.value)}")
    by_name: dict[str, list[tuple[str, HistogramPoint]]] = {}
    for histogram in histograms:
        for hp in histogram.points():
            by_name.setdefault(histogram.name, []).append((histogram.description, hp))
    for name, entries in sorted(by_name.items()):
        _family(lines, name, "histogram", entries[0][0])
        for _, hp in entries:
            for bound, count in hp.cumulative:
                le = f'le="{_number(bound)}"'
                lines.append(f"{name}_bucket{_labels(hp.attributes, le)} {count}")
            lines.append(f"{name}_sum{_labels(hp.attributes)} {_number(hp.total)}")
            lines.append(f"{name}_count{_labels(hp.attributes)} {hp.count}")
    return "\n".join(lines) + "\n" if lines else ""
