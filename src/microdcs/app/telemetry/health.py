"""Readiness: every transport connected and subscribed, Redis answering for everything
the runtime uses, and no background task (SFC engine, publisher, ...) in a crash loop.

The Redis ping is cached so that probes (and several probers) cost Redis at most one
PING per ``cache_seconds``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol


class Probed(Protocol):
    """What readiness needs of a transport (satisfied by every ProtocolHandler)."""

    name: str

    @property
    def ready(self) -> bool: ...


class Readiness:
    """Answers /readyz; ``last`` is the latest verdict (also exported as a gauge)."""

    def __init__(
        self,
        handlers: Sequence[Probed],
        ping: Callable[[], Awaitable[bool]],
        *,
        tasks: Callable[[], dict[str, bool]] = dict,
        cache_seconds: float = 1.0,
        ping_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handlers = handlers
        self._ping = ping
        self._tasks = tasks
        self._cache_seconds = cache_seconds
        self._ping_timeout = ping_timeout
        self._clock = clock
        self._lock = asyncio.Lock()
        self._redis_ok = False
        self._checked_at: float | None = None
        self.ping_failures = 0
        self.last = False

    async def redis_ok(self) -> bool:
        """The cached result of a Redis PING; at most one PING in flight."""
        async with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self._cache_seconds:
                try:
                    async with asyncio.timeout(self._ping_timeout):
                        ok = await self._ping()
                except TimeoutError:
                    ok = False
                if not ok:
                    self.ping_failures += 1
                self._redis_ok = ok
                self._checked_at = self._clock()
            return self._redis_ok

    async def check(self) -> tuple[bool, dict[str, bool]]:
        """``(ready, {component: ok})``: one entry per transport, ``redis``, and one
        ``task <name>`` per background task."""
        parts = {handler.name: handler.ready for handler in self._handlers}
        parts["redis"] = await self.redis_ok()
        for name, healthy in self._tasks().items():
            parts[f"task {name}"] = healthy
        self.last = all(parts.values())
        return self.last, parts
