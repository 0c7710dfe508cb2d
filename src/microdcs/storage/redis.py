"""The Redis connections of a process.

Per-message commands (dedupe, job compare-and-swap scripts) go through one pipelined
:class:`RespConnection`: everything issued during one event-loop iteration leaves in one
write, so 64 concurrent handlers share round trips instead of queueing behind each
other. ``client`` (redis-py) serves everything else, such as blocking stream reads.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from microdcs.core.errors import StorageUnavailableError
from microdcs.core.tracing import Tracing
from microdcs.storage.options import RedisConfig
from microdcs.storage.resp import RespConnection, is_transient_reply

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: redis-py errors that mean "Redis is not serving right now" (as opposed to a bad
#: command): unreachable, loading its dataset (``BusyLoadingError`` is a
#: ``ConnectionError``), or in a failover (read-only replica, cluster down, try again).
#: Mapped to :class:`StorageUnavailableError` here, at the boundary: callers of the
#: store catch that, never these.
_UNAVAILABLE_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    TryAgainError,
    ClusterDownError,
    ConnectionError,
    OSError,
)


class RedisStore:
    """Owns the Redis connections; ``async with RedisStore(cfg) as store``."""

    def __init__(self, config: RedisConfig, *, tracing: Tracing | None = None) -> None:
        self.config = config
        self.client: aioredis.Redis = aioredis.Redis(
            host=config.hostname,
            port=config.port,
            db=config.db,
            password=config.password,
            socket_connect_timeout=2.0,
            socket_timeout=10.0,
            health_check_interval=15,
            decode_responses=False,
        )
        self.pipeline = RespConnection(
            config.hostname, config.port, password=config.password, db=config.db
        )
        #: Script calls are traced as CLIENT spans (records nothing without an exporter).
        self.tracing = tracing or Tracing()

    def key(self, *parts: str) -> str:
        """A key under the configured prefix, parts joined by ``:``."""
        return ":".join((self.config.key_prefix, *parts))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.pipeline.close()
        await self.client.aclose()

    def execute(self, *args: Any) -> Awaitable[Any]:
        """One command (await it), pipelined with those of concurrent callers.

        Raises :class:`StorageUnavailableError` when Redis cannot be reached and
        ``redis.exceptions.ResponseError`` for an error reply. A plain function returning
        the connection's awaitable (the reply's future while connected): no coroutine on
        the path of every message.
        """
        return self.pipeline.execute(*args)

    def execute_many(self, commands: list[tuple[Any, ...]]) -> Coroutine[Any, Any, list[Any]]:
        """Commands sent together in one write (await it): each reply, or the exception
        of its failure (``StorageUnavailableError``, ``ResponseError``), in order."""
        return self.pipeline.execute_many(commands)

    async def guarded(self, operation: Awaitable[T]) -> T:
        """Await a call of ``client`` (redis-py) with its errors mapped like those of the
        pipelined connection: everything that waiting cures (unreachable, ``LOADING``,
        ``BUSY``, failover) becomes :class:`StorageUnavailableError`; other error replies
        stay ``ResponseError``."""
        try:
            return await operation
        except _UNAVAILABLE_ERRORS as exc:
            raise StorageUnavailableError(f"Redis unavailable: {exc}") from exc
        except ResponseError as exc:
            if is_transient_reply(str(exc)):
                raise StorageUnavailableError(f"Redis not serving: {exc}") from exc
            raise

    async def ping(self) -> bool:
        """True when Redis answers; never raises."""
        try:
            return bool(await self.client.ping())
        except _UNAVAILABLE_ERRORS:
            return False
