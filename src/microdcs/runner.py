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
from dataclasses import dataclass
from typing import Any

from microdcs.app import Application
from microdcs.config import AppConfig, load_config
from microdcs.errors import ConfigurationError
from microdcs.examples.greeting import GreetingProcessor
from microdcs.jobs.wiring import bind_jobs
from microdcs.processor import CloudEventProcessor
from microdcs.sfc.engine.wiring import bind_engine
from microdcs.storage.dedupe import Deduplicator
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.msgpack_rpc import MessagePackRpcHandler

logger = logging.getLogger("microdcs")


@dataclass(slots=True)
class Runtime:
    """What a processor factory gets to wire itself into the running application."""

    config: AppConfig
    app: Application
    store: RedisStore
    mqtt: MqttHandler
    rpc: MessagePackRpcHandler | None = None

    def bind(self, processor: CloudEventProcessor, *, prefix: str | None = None) -> None:
        """Serve ``processor`` on every transport (MQTT under ``prefix``, and RPC if on)."""
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
    bind_engine(runtime, jobs)  # SFC engine task + southbound equipment processor


@contextlib.asynccontextmanager
async def open_runtime(
    config: AppConfig, factories: Sequence[RuntimeFactory] = ()
) -> AsyncIterator[Runtime]:
    """Build a wired replica; the caller runs ``runtime.app.run()`` inside the context."""
    async with RedisStore(config.redis) as store:
        app = Application(config)
        # One dedupe registry: a source+id is a duplicate whichever transport brings it.
        dedupe = (
            Deduplicator(store, config.redis.dedupe_ttl) if config.redis.dedupe_enabled else None
        )
        mqtt = MqttHandler(config, dedupe=dedupe)
        rpc = MessagePackRpcHandler(config, dedupe=dedupe) if config.rpc.enabled else None
        runtime = Runtime(config=config, app=app, store=store, mqtt=mqtt, rpc=rpc)
        bind_defaults(runtime)
        for factory in factories:
            factory(runtime)
        app.add_handler(mqtt)
        if rpc is not None:
            app.add_handler(rpc)
        yield runtime


async def serve(config: AppConfig, factories: Sequence[RuntimeFactory] = ()) -> None:
    """Run one replica until SIGINT/SIGTERM."""
    async with open_runtime(config, factories) as runtime:
        logger.info("microdcs %s starting", config.resolved_instance_id)
        settle_garbage_collector()
        await runtime.app.run()
        logger.info("microdcs %s stopped", config.resolved_instance_id)


def settle_garbage_collector() -> None:
    """Move start-up objects out of the collector's way and collect young objects less often.

    Per-message garbage is short-lived; full collections walking every module, class and
    model compiled at start-up only add latency spikes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run_from_environment(processor_specs: Sequence[str] | None = None) -> int:
    """Entry point of ``microdcs run``; returns the process exit code."""
    try:
        config = load_config(os.environ)
        factories = [load_factory(spec) for spec in processor_specs or ()]
    except ConfigurationError as exc:
        print(f"microdcs: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    run_event_loop(serve(config, factories))
    return 0


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when installed (about 2x faster socket I/O), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)
