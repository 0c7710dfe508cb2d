"""A Redis Lua script as an object: read once, hashed once, called by SHA.

Callers hold one :class:`Script` per ``.lua`` file and get its reply already read into
that script's typed reply (``parse``), so no call site indexes a raw RESP array. A
Redis that lost its script cache (a restart, ``SCRIPT FLUSH``) answers ``NOSCRIPT``;
the script then loads itself and retries once, here and nowhere else.

A call is one ``EVALSHA`` on the store's pipelined connection, so scripts called by
concurrent handlers during one event-loop iteration still leave in one write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    from microdcs.storage.redis import RedisStore

R = TypeVar("R")


def raw(reply: Any) -> Any:
    """The identity ``parse``: for scripts whose caller takes the reply as it comes."""
    return reply


class Script(Generic[R]):
    """One Lua script bound to a store; ``await script(keys, args)`` is its typed reply.

    ``traced=False`` for scripts polled many times a second (a span per poll would bury
    the real traces).
    """

    __slots__ = ("_attributes", "_parse", "_span", "_store", "_traced", "name", "sha", "source")

    def __init__(
        self,
        store: RedisStore,
        name: str,
        source: str,
        parse: Callable[[Any], R],
        *,
        traced: bool = True,
    ) -> None:
        self._store = store
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._parse = parse
        self._traced = traced
        self._span = f"EVALSHA {name}"
        self._attributes = {
            "db.system.name": "redis",
            "db.operation.name": "EVALSHA",
            "db.stored_procedure.name": name,
        }

    @classmethod
    def load(
        cls,
        store: RedisStore,
        name: str,
        path: Path,
        parse: Callable[[Any], R],
        *,
        traced: bool = True,
    ) -> Script[R]:
        """The script of a ``.lua`` file (read now, once, at construction of its caller)."""
        return cls(store, name, path.read_text(encoding="utf-8"), parse, traced=traced)

    def command(self, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
        """The ``EVALSHA`` command, for a batch of ``execute_many``: read each reply with
        :meth:`reply`; for a ``NoScriptError`` among them, call the script (it loads)."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def reply(self, value: Any) -> R:
        """A raw reply of this script read into its typed reply."""
        return self._parse(value)

    async def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> R:
        """Run the script atomically; raises ``StorageUnavailableError`` when Redis is
        not serving and ``ResponseError`` when the script fails."""
        if not self._traced:
            return self._parse(await self._evalsha(keys, args))
        with self._store.tracing.client(self._span, self._attributes):
            return self._parse(await self._evalsha(keys, args))

    async def _evalsha(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        connection = self._store.pipeline
        command = self.command(keys, args)
        try:
            return await connection.execute(*command)
        except NoScriptError:  # the cache was emptied (e.g. a Redis restart)
            await connection.execute("SCRIPT", "LOAD", self.source)
            return await connection.execute(*command)
