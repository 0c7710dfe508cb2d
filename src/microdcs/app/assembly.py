"""Build one replica in dependency order, by constructor injection.

Storage first, then the dedupe registry and the transports, then the processor factories
(each handed a :class:`~microdcs.app.binder.Binder`), then the domains that the factories'
choices feed (job management with its recipe validator, the publisher, the equipment
processor and the SFC engine), and last the telemetry that observes all of them. Nothing
is patched onto an object after it is built; the only late registrations are listeners
(the engine follows the job processor's moves) and processors bound to a transport.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from microdcs.app.application import Application
from microdcs.app.binder import Binder, ProcessorFactory
from microdcs.app.config import AppConfig
from microdcs.app.runtime import Runtime
from microdcs.app.telemetry.metrics import Metrics
from microdcs.app.wiring.alarms import wire_alarms
from microdcs.app.wiring.ingress import ingress_lease, ingress_task, observe_ingress
from microdcs.app.wiring.jobs import wire_jobs
from microdcs.app.wiring.metadata import wire_metadata
from microdcs.app.wiring.plantdata import wire_plantdata
from microdcs.app.wiring.sfc import wire_engine
from microdcs.app.wiring.web import add_http_server
from microdcs.core.tracing import Tracing
from microdcs.examples.greeting import GreetingProcessor
from microdcs.processing.processor import CloudEventProcessor
from microdcs.sfc import Predicate, RecipeValidation
from microdcs.storage.dedupe import Deduplicator
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.msgpack_rpc import MessagePackRpcHandler
from microdcs.transports.replica import ReplicaOptions


@contextlib.asynccontextmanager
async def open_runtime(
    config: AppConfig,
    factories: Sequence[ProcessorFactory] = (),
    *,
    tracing: Tracing | None = None,
    telemetry: bool = False,
) -> AsyncIterator[Runtime]:
    """A wired replica; the caller runs ``runtime.app.run()`` inside the context.

    ``telemetry`` adds the /healthz, /readyz and /metrics server (``APP_HTTP_PORT``).
    """
    tracing = tracing or Tracing()
    async with RedisStore(config.redis, tracing=tracing) as store:
        app = Application(config)
        metrics = Metrics(config.resolved_instance_id)
        # One dedupe registry: a source+id is a duplicate whichever transport brings it.
        dedupe = (
            Deduplicator(store, config.redis.dedupe_ttl, config.redis.dedupe_claim_seconds)
            if config.redis.dedupe_enabled
            else None
        )
        replica = replica_options(config)
        # Used only where the broker offers no shared subscriptions (or none are set).
        election = ingress_lease(
            store, config.resolved_instance_id, config.mqtt.ingress_lease_seconds
        )
        app.add_task(ingress_task(election))
        mqtt = MqttHandler(
            config.mqtt,
            replica,
            dedupe=dedupe,
            latency=metrics.latency("mqtt"),
            tracing=tracing,
            election=election,
        )
        observe_ingress(metrics, mqtt)
        rpc = (
            MessagePackRpcHandler(
                config.rpc, replica, dedupe=dedupe, latency=metrics.latency("rpc"), tracing=tracing
            )
            if config.rpc.enabled
            else None
        )

        def bind(processor: CloudEventProcessor, prefix: str | None, over_rpc: bool) -> None:
            mqtt.bind(processor, prefix=prefix)
            if over_rpc and rpc is not None:
                rpc.bind(processor)

        binder = Binder(config, bind, app.add_task)
        if config.greeting_enabled:
            binder.bind(
                GreetingProcessor(source=config.resolved_source), prefix=config.greeting_prefix
            )
        for factory in factories:
            factory(binder)
        predicates: dict[str, Predicate] = binder.predicates  # what factories registered
        jobs = wire_jobs(config, store, mqtt, binder, metrics, RecipeValidation(predicates))
        plantdata = wire_plantdata(config, store, mqtt, binder, metrics)
        engine = wire_engine(
            config, store, mqtt, jobs, binder, metrics, predicates, tracing, rpc=rpc,
            tags=plantdata, add_tag_listener=plantdata.add_listener,
        )  # fmt: skip
        alarms = wire_alarms(config, store, mqtt, binder, metrics, plantdata.add_listener)
        wire_metadata(config, store, mqtt, app)  # every processor is bound by now
        app.add_handler(mqtt)
        if rpc is not None:
            app.add_handler(rpc)
        observe_transports(metrics, mqtt, rpc)
        runtime = Runtime(
            config=config,
            app=app,
            store=store,
            mqtt=mqtt,
            rpc=rpc,
            metrics=metrics,
            tracing=tracing,
            jobs=jobs,
            sfc_engine=engine,
            predicates=predicates,
            binder=binder,
            alarms=alarms,
            plantdata=plantdata,
        )
        if telemetry:
            add_http_server(runtime)
        try:
            yield runtime
        finally:
            metrics.shutdown()


def replica_options(config: AppConfig) -> ReplicaOptions:
    """What the transports need of the replica's settings, and nothing else."""
    return ReplicaOptions(
        instance_id=config.resolved_instance_id,
        source=config.resolved_source,
        workers=config.workers,
        queue_size=config.queue_size,
        shutdown_grace=config.shutdown_grace,
        storage_retry_seconds=config.storage_retry_seconds,
        scope_levels=config.scope_levels,
        response_expiry_seconds=config.response_expiry_seconds,
        is_processor_instance=config.is_processor_instance,
        limits=config.limits,
    )


def observe_transports(
    metrics: Metrics, mqtt: MqttHandler, rpc: MessagePackRpcHandler | None
) -> None:
    """Export the transports' counters, queue depth and awaited responses (read at scrape)."""
    metrics.observe_transport(
        "mqtt", mqtt.stats, queue_depth=lambda: mqtt.queue_depth, awaited=lambda: len(mqtt.tracker)
    )
    if rpc is None:
        return
    metrics.observe_transport("rpc", rpc.stats, awaited=lambda: len(rpc.tracker))
    stats = rpc.connection_stats
    metrics.observe("microdcs.rpc.connections", lambda: stats.open)
    metrics.observe("microdcs.rpc.closed", lambda: stats.refused_connections, reason="limit")
    metrics.observe("microdcs.rpc.closed", lambda: stats.auth_timeouts, reason="auth_timeout")
    metrics.observe("microdcs.rpc.closed", lambda: stats.idle_timeouts, reason="idle_timeout")
    metrics.observe("microdcs.rpc.auth_failures", lambda: stats.auth_failures, reason="token")
    metrics.observe("microdcs.rpc.auth_failures", lambda: stats.auth_throttled, reason="throttled")
