"""The pipelined Redis connection for a Redis Cluster: one :class:`RespConnection` per
primary, each command sent to the primary that serves its key's slot.

The slot map (``CLUSTER SLOTS``) is read from the first node that answers: the known
primaries and the seed nodes, asked at once, so one frozen node does not hold it up. It
is read again when a node is lost, when a node answers ``MOVED`` (the slot moved for
good: its entry is updated at once, the whole map at most once per
``refresh_interval``), or when a slot has no node. ``ASK`` (a slot being migrated) sends
``ASKING`` and the command to the target without changing the map. A node that is down
fails only the commands of its slots, as :class:`StorageUnavailableError`; the next
command of those slots reads the map first, so a replica promoted in a failover is found.

Hot path: a single-key command costs one slot computation, one list lookup and the node
connection's reply future, plus one future of its own with a done callback, so a
redirect can still be followed after the caller has the future. Coroutines appear only
on the slow paths (not connected, stale map, redirects, commands split per slot).

Scripts: ``SCRIPT LOAD`` goes to every primary, and the scripts it loaded are loaded on
every primary that joins the map later (a promoted replica has an empty script cache).
In :meth:`execute_many`, ``WAIT`` goes to the node of the command before it, so it
counts the replicas of that write.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from microdcs.core.boundedlog import RateLimitedLog
from microdcs.core.errors import ConfigurationError, StorageUnavailableError
from microdcs.storage.replies import text
from microdcs.storage.resp import RespConnection
from microdcs.storage.slots import (
    ALL,
    ANY,
    KEY,
    ROUTES,
    SCRIPT,
    SLOTS,
    command_keys,
    key_slot,
    merge,
    route_of,
    script_key,
    split,
)

logger = logging.getLogger(__name__)

Address = tuple[str, int]

#: Redirects one command may follow before it fails as unavailable (a cluster that keeps
#: moving a slot back and forth is not serving it).
MAX_REDIRECTS = 5


def _address(text_address: str, default_host: str) -> Address:
    host, _, port = text_address.rpartition(":")
    return (host.strip("[]") or default_host, int(port))


class ClusterConnection:
    """The store's pipelined connection in mode ``cluster``; the interface of
    :class:`RespConnection` (``execute``, ``execute_many``, ``connect``, ``close``,
    ``connected``) plus :meth:`healthy` for readiness."""

    def __init__(
        self,
        seeds: Sequence[Address],
        connection: Callable[[str, int], RespConnection],
        *,
        refresh_interval: float = 0.25,
    ) -> None:
        if not seeds:
            raise ValueError("a Redis Cluster needs at least one seed node")
        self._seeds = list(seeds)
        #: Builds the connection to one node (login, TLS and timeouts of the store).
        self._new_connection = connection
        self._refresh_interval = refresh_interval
        #: The primary serving each slot (None: unknown or not served).
        self._by_slot: list[RespConnection | None] = [None] * SLOTS
        self._covered = False
        self._primaries: list[RespConnection] = []
        #: Every connection held: primaries, and seeds or ASK targets until the next map.
        self._nodes: dict[Address, RespConnection] = {}
        self._addresses: dict[RespConnection, Address] = {}
        #: Set when a node failed or moved a slot: the next slow-path command reads the map.
        self._stale = True
        self._refreshed_at = -math.inf
        self._refresh_lock: asyncio.Lock | None = None
        #: Sources of the scripts loaded through this connection, by SHA.
        self._scripts: dict[str, Any] = {}
        #: Redirects followed after the caller got its future (cancelled by close).
        self._tasks: set[asyncio.Task[None]] = set()
        #: A cluster that cannot be asked is retried by every slow-path command and
        #: every readiness probe: a few lines per minute say so.
        self._log = RateLimitedLog(logger, burst=2, period=30.0)

    # -- connections and the slot map -------------------------------------------------
    @property
    def connected(self) -> bool:
        """The map is known and every primary is connected."""
        return bool(self._primaries) and all(node.connected for node in self._primaries)

    @property
    def primaries(self) -> list[Address]:
        """The primaries of the current map (for logs and tests)."""
        return [self._addresses[node] for node in self._primaries]

    def node_of(self, slot: int) -> Address | None:
        """The address of the primary serving ``slot`` in the current map."""
        node = self._by_slot[slot]
        return None if node is None else self._addresses[node]

    def _connection(self, address: Address) -> RespConnection:
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = self._new_connection(*address)
            self._addresses[node] = address
        return node

    async def connect(self) -> None:
        """Read the slot map and connect to every primary; raises
        :class:`StorageUnavailableError` (the first node's error) when one is down, and
        :class:`ConfigurationError` when a seed node is not in cluster mode."""
        await self._refresh(force=True)
        replies = await asyncio.gather(
            *(node.connect() for node in self._primaries), return_exceptions=True
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply

    async def _refresh(self, *, force: bool = False) -> None:
        """Read the slot map again unless it was read within ``refresh_interval`` (or,
        for a caller that waited for another refresh, since it asked)."""
        loop = asyncio.get_running_loop()
        asked = loop.time()
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            if self._refreshed_at >= asked:
                return  # another caller read it while we waited
            if not force and loop.time() - self._refreshed_at < self._refresh_interval:
                return
            self._refreshed_at = loop.time()
            reply, address = await self._read_map()
            await self._apply(reply, address)
            self._stale = False

    async def _read_map(self) -> tuple[Any, Address]:
        """``CLUSTER SLOTS`` from the first node (primaries, then seeds) that answers."""
        candidates: list[Address] = [self._addresses[node] for node in self._primaries]
        candidates += [seed for seed in self._seeds if seed not in candidates]
        pending: dict[asyncio.Future[Any], Address] = {
            asyncio.ensure_future(self._connection(address).execute("CLUSTER", "SLOTS")): address
            for address in candidates
        }
        errors: list[BaseException] = []
        try:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    address = pending.pop(future)
                    error = future.exception()
                    if error is None and future.result():
                        return future.result(), address
                    if isinstance(error, ResponseError) and "cluster support disabled" in str(
                        error
                    ):
                        raise ConfigurationError(
                            "APP_REDIS_MODE",
                            f"{address[0]}:{address[1]} is not a Redis Cluster node; set "
                            "APP_REDIS_MODE=standalone or name cluster nodes in APP_REDIS_NODES",
                        )
                    errors.append(error or StorageUnavailableError("empty slot map"))
        finally:
            for future in pending:
                future.cancel()
        first = errors[0] if errors else None
        if isinstance(first, StorageUnavailableError):
            raise first
        raise StorageUnavailableError(f"no Redis Cluster node answered CLUSTER SLOTS: {first}")

    async def _apply(self, reply: Any, queried: Address) -> None:
        by_slot: list[RespConnection | None] = [None] * SLOTS
        primaries: dict[RespConnection, int] = {}
        for entry in reply:
            start, end, primary = int(entry[0]), int(entry[1]), entry[2]
            node = self._connection((text(primary[0]) or queried[0], int(primary[1])))
            by_slot[start : end + 1] = [node] * (end - start + 1)
            primaries[node] = min(primaries.get(node, SLOTS), start)
        known = set(self._primaries)
        self._by_slot = by_slot
        self._covered = None not in by_slot
        self._primaries = sorted(primaries, key=primaries.__getitem__)
        for address, node in list(self._nodes.items()):
            if node not in primaries:  # demoted, removed, or a seed we only asked
                del self._nodes[address]
                del self._addresses[node]
                node.close()
        joined = [node for node in self._primaries if node not in known]
        if known and joined:
            logger.info("Redis Cluster primaries now %s", self.primaries)
        if self._scripts and joined:
            loads = [("SCRIPT", "LOAD", source) for source in self._scripts.values()]
            await asyncio.gather(*(node.execute_many(loads) for node in joined),
                                 return_exceptions=True)  # fmt: skip

    # -- commands ---------------------------------------------------------------------
    def execute(self, *args: Any) -> Awaitable[Any]:
        """One command, on the primary of its key's slot; await the reply. Raises like
        :meth:`RespConnection.execute`."""
        route = ROUTES.get(args[0], KEY)
        if route == KEY and len(args) > 1:
            return self._send(key_slot(args[1]), args)
        return self._routed(route, args)

    def _routed(self, route: int, args: tuple[Any, ...]) -> Awaitable[Any]:
        if route == SCRIPT:
            key = script_key(args)
            return self._send(0 if key is None else key_slot(key), args)
        if route == ALL:
            return self._everywhere(args)
        if route == ANY or len(args) < 2:
            return self._send(self._first_slot(), args)
        keys = command_keys(route, args)
        if not keys:
            return self._send(self._first_slot(), args)
        slots = [key_slot(key) for key in keys]
        if slots.count(slots[0]) == len(slots):
            return self._send(slots[0], args)
        return self._split(route, args, slots)

    def _first_slot(self) -> int:
        """A slot of the first primary (keyless commands go there)."""
        return 0

    def _send(self, slot: int, args: tuple[Any, ...]) -> Awaitable[Any]:
        node = self._by_slot[slot]
        if node is None or self._stale or not node.connected:
            return self._run(slot, args)
        inner = node.execute(*args)
        assert isinstance(inner, asyncio.Future)  # connected: the reply's future itself
        outer = inner.get_loop().create_future()
        inner.add_done_callback(functools.partial(self._settle, outer, slot, args))
        return outer

    def _settle(
        self,
        outer: asyncio.Future[Any],
        slot: int,
        args: tuple[Any, ...],
        inner: asyncio.Future[Any],
    ) -> None:
        if inner.cancelled():
            outer.cancel()
            return
        error = inner.exception()  # retrieved even when the caller has gone
        if outer.done():
            return
        if error is None:
            outer.set_result(inner.result())
            return
        if isinstance(error, ResponseError) and str(error).startswith(("MOVED ", "ASK ")):
            task = inner.get_loop().create_task(self._redirected(outer, slot, args, error))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if isinstance(error, StorageUnavailableError):
            self._stale = True
        outer.set_exception(error)

    async def _redirected(
        self, outer: asyncio.Future[Any], slot: int, args: tuple[Any, ...], error: ResponseError
    ) -> None:
        try:
            reply = await self._run(slot, args, error)
        except asyncio.CancelledError:
            if not outer.done():
                outer.set_exception(StorageUnavailableError("Redis Cluster connection closed"))
            raise
        except Exception as exc:  # the command's own failure, handed to its caller
            if not outer.done():
                outer.set_exception(exc)
        else:
            if not outer.done():
                outer.set_result(reply)

    async def _run(
        self, slot: int, args: tuple[Any, ...], error: ResponseError | None = None
    ) -> Any:
        """The slow path: read the map if needed, send, follow redirects."""
        redirects = 0
        while True:
            asking: RespConnection | None = None
            if error is not None:
                redirects += 1
                message = str(error)
                if redirects > MAX_REDIRECTS:
                    raise StorageUnavailableError(f"Redis Cluster keeps redirecting: {message}")
                kind, moved_slot, target = message.split(" ", 3)[:3]
                node = self._by_slot[int(moved_slot)]
                default_host = self._addresses[node][0] if node is not None else ""
                target_node = self._connection(_address(target, default_host))
                if kind == "MOVED":
                    self._by_slot[int(moved_slot)] = target_node
                    self._stale = True  # more slots may have moved with it
                else:
                    asking = target_node
                error = None
            if self._stale or self._by_slot[slot] is None:
                await self._try_refresh()
            try:
                if asking is not None:
                    _, reply = await asking.execute_many([("ASKING",), args])
                    if isinstance(reply, Exception):
                        raise reply
                    return reply
                node = self._by_slot[slot]
                if node is None:
                    raise StorageUnavailableError(
                        f"Redis Cluster slot {slot} is not served by any node"
                    )
                return await node.execute(*args)
            except ResponseError as exc:
                if str(exc).startswith(("MOVED ", "ASK ")):
                    error = exc
                    continue
                raise
            except StorageUnavailableError:
                self._stale = True
                raise

    async def _try_refresh(self) -> None:
        """Refresh the map if due; a cluster that cannot be asked keeps the old map (the
        command then fails or succeeds on its own)."""
        try:
            await self._refresh()
        except StorageUnavailableError as exc:
            self._log.log(logging.WARNING, "map", "Redis Cluster slot map not read: %s", str(exc))

    async def _everywhere(self, args: tuple[Any, ...]) -> Any:
        """A command for every primary; the first primary's reply (the first error when
        none succeeded). A primary that is down does not fail it: it loads its scripts
        again when it answers NOSCRIPT."""
        if self._stale or not self._primaries:
            await self._try_refresh()
        if not self._primaries:
            raise StorageUnavailableError("no Redis Cluster primary known")
        replies = await asyncio.gather(
            *(node.execute(*args) for node in self._primaries), return_exceptions=True
        )
        for reply in replies:
            if not isinstance(reply, BaseException):
                if len(args) >= 3 and text(args[1]).upper() == "LOAD":
                    self._scripts[text(reply)] = args[2]
                return reply
        self._stale = True
        raise replies[0]

    async def _split(self, route: int, args: tuple[Any, ...], slots: list[int]) -> Any:
        parts = split(route, args, slots)
        replies = await asyncio.gather(
            *(self._send(part.slot, part.args) for part in parts), return_exceptions=True
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return merge(route, args, parts, replies)

    def execute_on(self, key: Any, *args: Any) -> Awaitable[Any]:
        """A command (``WAIT``) on the primary serving ``key``'s slot, whatever its own
        keys: ``WAIT`` counts the replicas of the writes of that primary's connection."""
        return self._send(key_slot(key), args)

    async def execute_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Commands sent together (those of one primary in one write): each reply, or the
        exception of its failure, in order."""
        awaitables: list[Awaitable[Any]] = []
        previous = self._first_slot()
        for args in commands:
            route = ROUTES.get(args[0], KEY)
            if route == KEY and len(args) > 1:
                previous = key_slot(args[1])
                awaitables.append(self._send(previous, args))
            elif route == SCRIPT and script_key(args) is not None:
                previous = key_slot(script_key(args))
                awaitables.append(self._send(previous, args))
            elif route_of(args[0]) == ANY and text(args[0]).upper() == "WAIT":
                awaitables.append(self._send(previous, args))
            else:
                awaitables.append(self._routed(route, args))
        return list(await asyncio.gather(*awaitables, return_exceptions=True))

    # -- readiness and shutdown -------------------------------------------------------
    async def healthy(self) -> bool:
        """Every slot has a primary and every primary answers ``cluster_state:ok``
        (one ``CLUSTER INFO`` each, pipelined); never raises."""
        try:
            if self._stale or not self._covered:
                await self._try_refresh()
            primaries = list(self._primaries)
            if not primaries or not self._covered:
                return False
            replies = await asyncio.gather(
                *(node.execute("CLUSTER", "INFO") for node in primaries), return_exceptions=True
            )
        except (StorageUnavailableError, ResponseError):
            return False
        if any(isinstance(reply, BaseException) for reply in replies):
            self._stale = True
            return False
        # A primary that rejoins says CLUSTERDOWN until it has caught up: each is asked.
        return all(isinstance(info, bytes) and b"cluster_state:ok" in info for info in replies)

    def close(self) -> None:
        """Close every node connection; outstanding commands fail as unavailable."""
        for task in self._tasks:
            task.cancel()
        for node in self._nodes.values():
            node.close()
        self._nodes.clear()
        self._addresses.clear()
        self._primaries = []
        self._by_slot = [None] * SLOTS
        self._covered = False
        self._stale = True
