"""``microdcs run``: build the application from the configuration and serve."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from microdcs.app import compiled
from microdcs.app.application import AdditionalTask, Application
from microdcs.app.config import AppConfig, load_config
from microdcs.app.telemetry.health import Readiness
from microdcs.app.telemetry.http import TelemetryServer
from microdcs.app.telemetry.logging import configure_logging as _configure_logging
from microdcs.app.telemetry.metrics import Metrics
from microdcs.app.wiring.jobs import bind_jobs
from microdcs.app.wiring.sfc import bind_engine
from microdcs.core.errors import ConfigurationError
from microdcs.app.telemetry.otel import provider_from_environment
from microdcs.core.tracing import Tracing
from microdcs.examples.greeting import GreetingProcessor
from microdcs.processing.processor import CloudEventProcessor
from microdcs.sfc.engine.engine import SfcEngine
from microdcs.storage.dedupe import Deduplicator
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.msgpack_rpc import MessagePackRpcHandler
from microdcs.transports.replica import ReplicaOptions

logger = logging.getLogger("microdcs")


@dataclass(slots=True)
class Runtime:
    """What a processor factory gets to wire itself into the running application."""

    config: AppConfig
    app: Application
    store: RedisStore
    mqtt: MqttHandler
    rpc: MessagePackRpcHandler | None = None
    metrics: Metrics = field(default_factory=Metrics)
    tracing: Tracing = field(default_factory=Tracing)
    #: The SFC engine of this replica (set by ``bind_defaults``).
    sfc_engine: SfcEngine | None = None

    def bind(self, processor: CloudEventProcessor, *, prefix: str | None = None) -> None:
        """Serve ``processor`` on every transport (MQTT under ``prefix``, and RPC if on)."""
        processor.tracing = self.tracing
        self.mqtt.bind(processor, prefix=prefix)
        if self.rpc is not None:
            self.rpc.bind(processor)


RuntimeFactory = Callable[[Runtime], None]


def load_factory(spec: str) -> RuntimeFactory:
    """Import ``module:attribute``; raises :class:`ConfigurationError` naming the spec."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError("--processor", f"expected MODULE:FACTORY, got {spec!r}")
    try:
        factory: RuntimeFactory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError("--processor", f"cannot load {spec!r}: {exc}") from None
    return factory


def bind_defaults(runtime: Runtime) -> None:
    """The processors every replica runs."""
    source = runtime.config.resolved_source
    runtime.bind(GreetingProcessor(source=source), prefix=runtime.config.greeting_prefix)
    jobs = bind_jobs(runtime)  # job management processor (+ the retained-topic publisher)
    engine = bind_engine(runtime, jobs)  # SFC engine task + southbound equipment processor
    runtime.sfc_engine = engine
    runtime.metrics.observe("microdcs.sfc.steps_fired", lambda: engine.steps)
    runtime.metrics.observe("microdcs.sfc.active_executions", lambda: engine.active_executions)


@contextlib.asynccontextmanager
async def open_runtime(
    config: AppConfig,
    factories: Sequence[RuntimeFactory] = (),
    *,
    tracing: Tracing | None = None,
) -> AsyncIterator[Runtime]:
    """Build a wired replica; the caller runs ``runtime.app.run()`` inside the context."""
    tracing = tracing or Tracing()
    async with RedisStore(config.redis) as store:
        store.tracing = tracing
        app = Application(config)
        # One dedupe registry: a source+id is a duplicate whichever transport brings it.
        dedupe = (
            Deduplicator(store, config.redis.dedupe_ttl) if config.redis.dedupe_enabled else None
        )
        metrics = Metrics(config.resolved_instance_id)
        replica = ReplicaOptions(
            instance_id=config.resolved_instance_id,
            source=config.resolved_source,
            workers=config.workers,
            queue_size=config.queue_size,
            shutdown_grace=config.shutdown_grace,
            storage_retry_seconds=config.storage_retry_seconds,
            scope_levels=config.scope_levels,
            is_processor_instance=config.is_processor_instance,
            limits=config.limits,
        )
        mqtt = MqttHandler(
            config.mqtt, replica, dedupe=dedupe, latency=metrics.latency("mqtt"), tracing=tracing
        )
        rpc = (
            MessagePackRpcHandler(
                config.rpc, replica, dedupe=dedupe, latency=metrics.latency("rpc"), tracing=tracing
            )
            if config.rpc.enabled
            else None
        )
        runtime = Runtime(
            config=config,
            app=app,
            store=store,
            mqtt=mqtt,
            rpc=rpc,
            metrics=metrics,
            tracing=tracing,
        )
        bind_defaults(runtime)
        for factory in factories:
            factory(runtime)
        app.add_handler(mqtt)
        if rpc is not None:
            app.add_handler(rpc)
        observe_transports(runtime)
        try:
            yield runtime
        finally:
            metrics.shutdown()


def observe_transports(runtime: Runtime) -> None:
    """Export the transports' counters, queue depth and awaited responses (read at scrape)."""
    mqtt, rpc, metrics = runtime.mqtt, runtime.rpc, runtime.metrics
    metrics.observe_transport(
        "mqtt", mqtt.stats, queue_depth=lambda: mqtt.queue_depth, awaited=lambda: len(mqtt.tracker)
    )
    if rpc is not None:
        metrics.observe_transport("rpc", rpc.stats, awaited=lambda: len(rpc.tracker))
        stats = rpc.connection_stats
        metrics.observe("microdcs.rpc.connections", lambda: stats.open)
        metrics.observe("microdcs.rpc.closed", lambda: stats.refused_connections, reason="limit")
        metrics.observe("microdcs.rpc.closed", lambda: stats.auth_timeouts, reason="auth_timeout")
        metrics.observe("microdcs.rpc.closed", lambda: stats.idle_timeouts, reason="idle_timeout")
        metrics.observe("microdcs.rpc.auth_failures", lambda: stats.auth_failures, reason="token")
        metrics.observe(
            "microdcs.rpc.auth_failures", lambda: stats.auth_throttled, reason="throttled"
        )


def add_telemetry_server(runtime: Runtime) -> TelemetryServer | None:
    """Serve /healthz, /readyz and /metrics as a task of the app (None when turned off)."""
    config = runtime.config
    if config.http_port == 0:
        return None
    readiness = Readiness(runtime.app.handlers, runtime.store.ping)
    runtime.metrics.observe("microdcs.redis.errors", lambda: readiness.ping_failures, where="ping")
    runtime.metrics.observe("microdcs.ready", lambda: int(readiness.last))
    server = TelemetryServer(
        config.http_host, config.http_port, metrics=runtime.metrics, readiness=readiness
    )
    runtime.app.add_task(AdditionalTask("http", server.run))
    return server


async def serve(
    config: AppConfig, factories: Sequence[RuntimeFactory] = (), tracing: Tracing | None = None
) -> None:
    """Run one replica until SIGINT/SIGTERM."""
    async with open_runtime(config, factories, tracing=tracing) as runtime:
        add_telemetry_server(runtime)
        logger.info("microdcs %s starting", config.resolved_instance_id)
        report_compiled_modules()
        settle_garbage_collector()
        await runtime.app.run()
        logger.info("microdcs %s stopped", config.resolved_instance_id)


def report_compiled_modules() -> None:
    """Say whether the hot path runs compiled, and warn about compiled code older than
    its source (an edit without ``make install``: the old code would run)."""
    modules = compiled.compiled()
    logger.info("hot path: %s", f"{len(modules)} modules compiled" if modules else "pure Python")
    outdated = compiled.stale()
    if outdated:
        logger.warning(
            "compiled modules older than their source, the old code runs: %s "
            "(rebuild with make install)",
            ", ".join(outdated),
        )


def settle_garbage_collector() -> None:
    """Move start-up objects out of the collector's way and collect young objects less often.

    Per-message garbage is short-lived; full collections walking every module, class and
    model compiled at start-up only add latency spikes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def configure_logging(level: str, fmt: str = "text") -> None:
    """Log to stderr as text or JSON lines (see :mod:`microdcs.app.telemetry.logging`)."""
    _configure_logging(level, fmt)


def run_from_environment(processor_specs: Sequence[str] | None = None) -> int:
    """Entry point of ``microdcs run``; returns the process exit code."""
    try:
        config = load_config(os.environ)
        factories = [load_factory(spec) for spec in processor_specs or ()]
    except ConfigurationError as exc:
        print(f"microdcs: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config.log_format)
    provider = provider_from_environment(os.environ)
    try:
        run_event_loop(serve(config, factories, Tracing(provider)))
    finally:
        if provider is not None:
            provider.shutdown()  # type: ignore[attr-defined]  # the SDK provider flushes
    return 0


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when installed (about 2x faster socket I/O), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)
