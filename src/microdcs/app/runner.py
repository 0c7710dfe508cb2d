"""``microdcs run``: build the application from the configuration and serve."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Coroutine, Sequence
from typing import Any

from microdcs.app import compiled
from microdcs.app.assembly import open_runtime
from microdcs.app.binder import ProcessorFactory
from microdcs.app.config import AppConfig, load_config
from microdcs.app.telemetry.logging import configure_logging as _configure_logging
from microdcs.app.telemetry.otel import provider_from_environment
from microdcs.core.errors import ConfigurationError
from microdcs.core.tracing import Tracing
from microdcs.processing.routing import Intent
from microdcs.transports.mqtt.binding import MqttBinding

logger = logging.getLogger("microdcs")


def load_factory(spec: str) -> ProcessorFactory:
    """Import ``module:attribute``; raises :class:`ConfigurationError` naming the spec.

    The current directory is searched first, as ``python -m`` would: the ``microdcs``
    console script's own directory is the virtualenv's ``bin``, where no project lives.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError("--processor", f"expected MODULE:FACTORY, got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        factory: ProcessorFactory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError("--processor", f"cannot load {spec!r}: {exc}") from None
    except Exception as exc:  # the module's own bug: say where, without a traceback
        raise ConfigurationError(
            "--processor", f"cannot load {spec!r}: {type(exc).__name__}: {exc}{_where(exc)}"
        ) from None
    return factory


def _where(exc: BaseException) -> str:
    """`` (at path:line)`` of the innermost frame of the failed import, if any."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if not f.filename.startswith("<frozen")]
    if not ours:
        return ""
    return f" (at {ours[-1].filename}:{ours[-1].lineno})"


async def serve(
    config: AppConfig, factories: Sequence[ProcessorFactory] = (), tracing: Tracing | None = None
) -> None:
    """Run one replica until SIGINT/SIGTERM."""
    async with open_runtime(config, factories, tracing=tracing, telemetry=True) as runtime:
        logger.info("microdcs %s starting", config.resolved_instance_id)
        for line in describe_bindings(runtime.mqtt.bindings, rpc=runtime.rpc is not None):
            logger.info("%s", line)
        report_compiled_modules()
        settle_garbage_collector()
        await runtime.app.run()
        logger.info("microdcs %s stopped", config.resolved_instance_id)


def describe_bindings(bindings: Sequence[MqttBinding], *, rpc: bool = False) -> list[str]:
    """One line per bound processor: its topics and the types it handles and emits, so a
    newcomer sees at start-up whether ``--processor`` bound what they wrote, and where."""
    lines = []
    for binding in bindings:
        processor = binding.processor
        direction = processor.direction
        capabilities = processor.capabilities()
        handled = [h.type for h in capabilities.handles]
        emitted = [e.type for e in capabilities.emits]
        if capabilities.handles_any_type:
            handled.append("any type")
        if capabilities.emits_any_type:
            emitted.append("any type")
        lines.append(
            f"processor {processor.name} ({direction.value}{', also over RPC' if rpc else ''}): "
            f"subscribes {_topics(binding.layout.prefix, processor.subscribes)}; "
            f"publishes {_topics(binding.layout.prefix, processor.publishes)}; "
            f"handles {', '.join(handled) or '-'}; emits {', '.join(emitted) or '-'}"
        )
    return lines


def _topics(prefix: str, intents: Sequence[Intent]) -> str:
    return ", ".join(f"{prefix}/[scope/]{intent.value}" for intent in intents) or "-"


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
