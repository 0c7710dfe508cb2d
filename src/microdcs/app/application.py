"""The application object: wires transports, processors and additional tasks.

Everything runs in one task group. SIGINT/SIGTERM set a shutdown event; transports then
stop taking work, let in-flight messages finish within the grace period, and leave
unfinished messages unacknowledged so the broker redelivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from microdcs.app.config import AppConfig

logger = logging.getLogger(__name__)


class ProtocolHandler(Protocol):
    """A transport: runs until the shutdown event is set, then drains and returns."""

    name: str

    @property
    def ready(self) -> bool: ...

    async def run(self, shutdown: asyncio.Event) -> None: ...


@dataclass(frozen=True, slots=True)
class AdditionalTask:
    """A long-running coroutine of the application, told to stop by the shutdown event."""

    name: str
    run: Callable[[asyncio.Event], Awaitable[None]]


#: Seconds a restarted task must run without crashing again before readiness counts it
#: healthy: a task in a crash loop (restarted every few seconds) never gets there.
TASK_HEALTHY_AFTER = 5.0


class Application:
    """Owns the lifecycle of one microdcs replica."""

    def __init__(self, config: AppConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.handlers: list[ProtocolHandler] = []
        self.tasks: list[AdditionalTask] = []
        self.shutdown = asyncio.Event()
        self._clock = clock
        #: When each task that crashed was last (re)started after its crash; absent for
        #: tasks that never crashed.
        self._restarted_at: dict[str, float | None] = {}

    def add_handler(self, handler: ProtocolHandler) -> None:
        self.handlers.append(handler)

    def add_task(self, task: AdditionalTask) -> None:
        self.tasks.append(task)

    @property
    def ready(self) -> bool:
        return all(handler.ready for handler in self.handlers)

    def task_health(self) -> dict[str, bool]:
        """Each additional task: False from a crash until it has run
        :data:`TASK_HEALTHY_AFTER` seconds since its restart without crashing again."""
        now = self._clock()
        health: dict[str, bool] = {}
        for task in self.tasks:
            restarted = self._restarted_at.get(task.name, 0.0)
            health[task.name] = task.name not in self._restarted_at or (
                restarted is not None and now - restarted >= TASK_HEALTHY_AFTER
            )
        return health

    def request_shutdown(self) -> None:
        """Begin a graceful shutdown (what SIGINT/SIGTERM do)."""
        if not self.shutdown.is_set():
            logger.info("shutdown requested")
        self.shutdown.set()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run every handler and task until shutdown; returns when all have finished."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if install_signal_handlers else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.request_shutdown)
        try:
            async with asyncio.TaskGroup() as group:
                for handler in self.handlers:
                    group.create_task(handler.run(self.shutdown), name=f"handler-{handler.name}")
                for task in self.tasks:
                    group.create_task(self._run_task(task), name=f"task-{task.name}")
        finally:
            for sig in signals:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)

    async def _run_task(self, task: AdditionalTask) -> None:
        """Run an additional task; a crash is logged and restarted, never fatal."""
        delay = 0.5
        while not self.shutdown.is_set():
            try:
                await task.run(self.shutdown)
                return
            except Exception:
                self._restarted_at[task.name] = None
                logger.exception(
                    "additional task %s crashed; restarting in %.1fs", task.name, delay
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.shutdown.wait(), delay)
                delay = min(delay * 2, 30.0)
                self._restarted_at[task.name] = self._clock()
