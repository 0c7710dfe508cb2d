"""The metrics of one replica: OpenTelemetry instruments read at scrape time.

Counters that transports already keep (:class:`~microdcs.processing.pipeline.TransportStats`)
are read by observable instruments when Prometheus scrapes, so the hot path pays nothing
for them. Other components register zero-argument callables the same way. The one
per-message measurement, handling latency, uses :class:`LatencyHistogram` instead of an
OpenTelemetry histogram: the SDK's ``Histogram.record`` costs ~5 µs here, ours ~0.3 µs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import Resource

from microdcs.processing.pipeline import TransportStats

#: Upper bounds (seconds) of the latency buckets: 0.5 ms .. 30 s (the storage retry range).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

Attributes = Mapping[str, str]
Reading = Callable[[], Iterable[tuple[float, Attributes]]]
"""A source of observations: ``(value, attributes)`` pairs, read at scrape time."""


class _Series:
    """Bucket counts of one (type, outcome); the last bucket is +Inf."""

    __slots__ = ("count", "counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.total = 0.0
        self.count = 0


@dataclass(frozen=True, slots=True)
class HistogramPoint:
    """One series of a histogram as Prometheus exposes it (cumulative buckets)."""

    attributes: Attributes
    cumulative: tuple[tuple[float, int], ...]  # (upper bound, count <= bound); last is +Inf
    total: float
    count: int


class LatencyHistogram:
    """Handling latency of one transport by CloudEvent type and outcome.

    Fed once per handled message by the event pipeline, so it is a dict lookup, a bisect
    and three additions. Types are bounded by the handlers bound (unroutable events never
    reach the pipeline), so the series are too.
    """

    name = "microdcs_handling_seconds"
    description = "Time from routing an event to having its responses, by type and outcome."

    def __init__(self, transport: str, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.transport = transport
        self._bounds = bounds
        self._series: dict[tuple[str, bool], _Series] = {}

    def record(self, event_type: str, seconds: float, failed: bool) -> None:
        key = (event_type, failed)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(len(self._bounds))
        series.counts[bisect_left(self._bounds, seconds)] += 1
        series.total += seconds
        series.count += 1

    def points(self) -> Iterator[HistogramPoint]:
        for (event_type, failed), series in list(self._series.items()):
            running = 0
            cumulative: list[tuple[float, int]] = []
            for bound, n in zip((*self._bounds, float("inf")), series.counts, strict=True):
                running += n
                cumulative.append((bound, running))
            yield HistogramPoint(
                {
                    "transport": self.transport,
                    "type": event_type,
                    "outcome": "error" if failed else "ok",
                },
                tuple(cumulative),
                series.total,
                series.count,
            )


class Metrics:
    """Instruments of one replica, created once; components register what to read.

    Every observable instrument reads a list of registered sources, so registering costs
    nothing per message. Call :meth:`shutdown` when the replica stops.
    """

    def __init__(self, instance: str = "") -> None:
        self._reader = InMemoryMetricReader()
        self._provider = MeterProvider(
            resource=Resource.create({"service.name": "microdcs", "service.instance.id": instance}),
            metric_readers=[self._reader],
            shutdown_on_exit=False,
        )
        meter = self._provider.get_meter("microdcs")
        self._sources: dict[str, list[Reading]] = {}
        self.histograms: list[LatencyHistogram] = []

        def counter(name: str, unit: str, description: str) -> None:
            meter.create_observable_counter(
                name, callbacks=[self._callback(name)], unit=unit, description=description
            )

        def gauge(name: str, unit: str, description: str) -> None:
            meter.create_observable_gauge(
                name, callbacks=[self._callback(name)], unit=unit, description=description
            )

        counter("microdcs.messages.received", "1", "Messages received, by transport.")
        counter("microdcs.messages.processed", "1", "Messages handled successfully.")
        counter("microdcs.messages.duplicates", "1", "Duplicates answered from the dedupe store.")
        counter("microdcs.messages.dropped", "1", "QoS 0 overflow and unawaited responses.")
        counter("microdcs.messages.failed", "1", "Messages answered with an error, by kind.")
        gauge("microdcs.queue.depth", "1", "Received messages waiting for a worker.")
        gauge(
            "microdcs.mqtt.shared_subscriptions",
            "1",
            "1 while the request topics are shared subscriptions, 0 with plain ones.",
        )
        gauge(
            "microdcs.mqtt.ingress",
            "1",
            "1 while this replica subscribes the request topics (0: standby or offline).",
        )
        gauge("microdcs.responses.awaited", "1", "Requests sent that await a response.")
        gauge("microdcs.rpc.connections", "1", "Open MessagePack-RPC connections.")
        counter(
            "microdcs.rpc.closed",
            "1",
            "RPC connections refused or closed by a limit, by reason "
            "(connection limit, auth timeout, idle timeout).",
        )
        counter("microdcs.rpc.auth_failures", "1", "RPC authentications refused, by reason.")
        counter("microdcs.redis.errors", "1", "Redis unavailable, by where it was noticed.")
        gauge("microdcs.ready", "1", "1 when /readyz would answer 200.")
        gauge("microdcs.sfc.active_executions", "1", "SFC executions in progress.")
        counter("microdcs.sfc.steps_fired", "1", "SFC work items that advanced an execution.")
        counter("microdcs.sfc.tag_reevaluations", "1", "SFC re-evaluations queued by tag changes.")
        gauge("microdcs.publisher.lag_seconds", "s", "Age of the oldest unpublished change.")
        gauge("microdcs.publisher.leader", "1", "1 while this replica holds the publisher lease.")
        counter("microdcs.publisher.skipped", "1", "Retained topics skipped as unsendable.")
        counter("microdcs.publisher.rebuilds", "1", "Full republishes after a broker lost them.")
        counter("microdcs.alarms.transitions", "1", "Alarm transitions this replica stored.")
        counter("microdcs.alarms.conflicts", "1", "Alarm compare-and-swaps lost to a replica.")
        counter("microdcs.alarms.timers_fired", "1", "Alarm timers this replica fired.")
        counter("microdcs.plant.samples_stored", "1", "Tag changes this replica stored in the CVT.")
        counter("microdcs.plant.samples_rejected", "1", "Samples refused (unknown tag, type).")
        counter("microdcs.plant.samples_stale", "1", "Tags this replica turned stale.")
        counter("microdcs.plant.cvt_published", "1", "Retained cvt messages this replica sent.")
        gauge("microdcs.alarms.rate", "1", "Alarms raised in the last 10 minutes, by scope.")
        gauge("microdcs.alarms.flood_percent", "%", "Time in flood (>10 alarms/10 min), by scope.")
        gauge("microdcs.alarms.standing", "1", "Alarms active for more than 24 hours, by scope.")
        gauge("microdcs.alarms.stale", "1", "Alarms unacknowledged for more than 24 hours.")
        gauge("microdcs.alarms.chattering", "1", "Alarms raised 3 times or more within a minute.")
        gauge("microdcs.alarms.frequent", "1", "Activations of the ten most frequent alarms.")
        gauge("microdcs.alarms.shelved", "1", "Shelved alarms, by scope.")
        gauge("microdcs.alarms.out_of_service", "1", "Alarms out of service, by scope.")
        counter("microdcs.web.login_failures", "1", "Web logins refused, by reason.")
        counter("microdcs.web.csrf_refused", "1", "Web requests refused for their CSRF token.")

    def _callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        sources = self._sources.setdefault(name, [])

        def observe(options: CallbackOptions) -> Iterator[Observation]:
            for source in sources:
                for value, attributes in source():
                    yield Observation(value, dict(attributes))

        return observe

    # -- registration (start-up only) ----------------------------------------------------
    def observe(self, name: str, read: Callable[[], float | int], **attributes: str) -> None:
        """Report ``read()`` as ``name`` (one of the instruments above) at every scrape.

        For counters ``read`` returns the running total, never a delta.
        """
        if name not in self._sources:
            raise KeyError(f"no instrument named {name!r}")
        self._sources[name].append(lambda: ((read(), attributes),))

    def observe_many(self, name: str, reading: Reading) -> None:
        """Like :meth:`observe` for a source whose attributes vary (e.g. by error kind)."""
        if name not in self._sources:
            raise KeyError(f"no instrument named {name!r}")
        self._sources[name].append(reading)

    def observe_transport(
        self,
        transport: str,
        stats: TransportStats,
        *,
        queue_depth: Callable[[], int] | None = None,
        awaited: Callable[[], int] | None = None,
    ) -> None:
        """Export a transport's counters, queue depth and awaited responses."""
        self.observe("microdcs.messages.received", lambda: stats.received, transport=transport)
        self.observe("microdcs.messages.processed", lambda: stats.processed, transport=transport)
        self.observe("microdcs.messages.duplicates", lambda: stats.duplicates, transport=transport)
        self.observe("microdcs.messages.dropped", lambda: stats.dropped, transport=transport)
        self.observe_many(
            "microdcs.messages.failed",
            lambda: [
                (n, {"transport": transport, "kind": kind}) for kind, n in stats.failed.items()
            ],
        )
        self.observe(
            "microdcs.redis.errors",
            lambda: stats.failed.get("storage_unavailable", 0),
            where=transport,
        )
        if queue_depth is not None:
            self.observe("microdcs.queue.depth", queue_depth, transport=transport)
        if awaited is not None:
            self.observe("microdcs.responses.awaited", awaited, transport=transport)

    def latency(self, transport: str) -> LatencyHistogram:
        """The latency histogram a transport's event pipeline records into."""
        histogram = LatencyHistogram(transport)
        self.histograms.append(histogram)
        return histogram

    # -- reading ----------------------------------------------------------------------
    def collect(self) -> MetricsData | None:
        """Run every callback now and return the current values (None: nothing yet)."""
        return self._reader.get_metrics_data()

    def shutdown(self) -> None:
        self._provider.shutdown()
