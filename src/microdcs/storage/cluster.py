"""The pipelined Redis connection for a Redis Cluster: one :class:`RespConnection` per
primary, each command sent to the primary that serves its key's slot.

The map of who serves each slot is a :class:`~microdcs.storage.slotmap.SlotMap`. A node
answering ``MOVED`` (the slot moved for good) has its entry updated at once and the whole
map read again (at most once per short interval); ``ASK`` (a slot being migrated) sends
``ASKING`` and the command to the target without changing the map. A node that is down
fails only the commands of its slots, as :class:`StorageUnavailableError`; the next
command reads the map first, so a replica promoted in a failover is found.

Hot path: a single-key command costs one slot computation, one list lookup, and its
reply future is the node connection's own: a redirect reply is handed to
:meth:`ClusterConnection._redirected` by the node connection, which sends the command on
to its new node with the same future. Coroutines appear only on the slow paths (not
connected, stale map, commands split per slot).

``SCRIPT LOAD`` goes to every primary (and, through the map, to every primary that joins
later). In :meth:`ClusterConnection.execute_many`, ``WAIT`` goes to the node of the
command before it, so it counts the replicas of that write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from microdcs.core.errors import StorageUnavailableError
from microdcs.storage.replies import text
from microdcs.storage.resp import Redirect, RespConnection, encode_command
from microdcs.storage.slotmap import Address, SlotMap
from microdcs.storage.slots import (
    ALL,
    ANY,
    KEY,
    ROUTES,
    SCRIPT,
    command_keys,
    key_slot,
    merge,
    route_of,
    script_key,
    split,
)

#: Redirects one command may follow before it fails as unavailable (a cluster that keeps
#: moving a slot back and forth is not serving it).
MAX_REDIRECTS = 5

_ASKING = encode_command(("ASKING",))


def _ignore(future: asyncio.Future[Any]) -> None:
    """The reply of an ``ASKING`` sent ahead of a redirected command: not needed."""
    if not future.cancelled():
        future.exception()


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
        connection: Callable[[str, int, Redirect], RespConnection],
        *,
        refresh_interval: float = 0.25,
    ) -> None:
        self._map = SlotMap(seeds, connection, self._redirected, refresh_interval=refresh_interval)
        #: The map's own list (updated in place): one lookup per command.
        self._by_slot = self._map.by_slot
        #: Redirects waiting for a connection to their new node (cancelled by close).
        self._tasks: set[asyncio.Task[None]] = set()
        #: Redirects so far of each command redirected and not yet answered.
        self._redirects: dict[asyncio.Future[Any], int] = {}

    @property
    def connected(self) -> bool:
        """The map is known and every primary is connected."""
        primaries = self._map.primaries
        return bool(primaries) and all(node.connected for node in primaries)

    @property
    def primaries(self) -> list[Address]:
        """The primaries of the current map (for logs and tests)."""
        return [self._map.address_of(node) for node in self._map.primaries]

    def node_of(self, slot: int) -> Address | None:
        """The address of the primary serving ``slot`` in the current map."""
        node = self._by_slot[slot]
        return None if node is None else self._map.address_of(node)

    async def connect(self) -> None:
        """Read the slot map and connect to every primary; raises
        :class:`StorageUnavailableError` (the first node's error) when one is down, and
        :class:`~microdcs.core.errors.ConfigurationError` when a seed node is not in
        cluster mode."""
        await self._map.refresh(force=True)
        replies = await asyncio.gather(
            *(node.connect() for node in self._map.primaries), return_exceptions=True
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply

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
        if node is None or self._map.stale or not node.connected:
            return self._run(slot, args)
        return node.execute(*args)

    async def _run(self, slot: int, args: tuple[Any, ...]) -> Any:
        """The slow path: read the map if due (a node lost, a slot moved), then send."""
        await self._map.try_refresh()
        node = self._by_slot[slot]
        if node is None:
            raise StorageUnavailableError(f"Redis Cluster slot {slot} is not served by any node")
        try:
            return await node.execute(*args)
        except StorageUnavailableError:
            self._map.stale = True
            raise

    def _redirected(self, future: asyncio.Future[Any], data: bytes, message: str) -> None:
        """A node answered ``MOVED``/``ASK`` to the command ``data``: send it to the node
        named, where its reply completes the caller's ``future``."""
        count = self._redirects.get(future, 0) + 1
        if count > MAX_REDIRECTS:
            del self._redirects[future]
            future.set_exception(
                StorageUnavailableError(f"Redis Cluster keeps redirecting: {message}")
            )
            return
        if count == 1:
            future.add_done_callback(self._forget)
        self._redirects[future] = count
        kind, slot_text, target = message.split(" ", 3)[:3]
        slot = int(slot_text)
        current = self._by_slot[slot]
        default_host = self._map.address_of(current)[0] if current is not None else ""
        node = self._map.connection(_address(target, default_host))
        if kind == "MOVED":
            self._map.moved(slot, node)
        if not self._forward(node, kind == "ASK", data, future):
            task = future.get_loop().create_task(
                self._connect_and_forward(node, kind == "ASK", data, future)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _forget(self, future: asyncio.Future[Any]) -> None:
        self._redirects.pop(future, None)

    @staticmethod
    def _forward(
        node: RespConnection, asking: bool, data: bytes, future: asyncio.Future[Any]
    ) -> bool:
        if asking:
            if not node.connected:
                return False
            ahead = future.get_loop().create_future()
            ahead.add_done_callback(_ignore)
            node.send_encoded(_ASKING, ahead)
        return node.send_encoded(data, future)

    async def _connect_and_forward(
        self, node: RespConnection, asking: bool, data: bytes, future: asyncio.Future[Any]
    ) -> None:
        try:
            await node.connect()
        except StorageUnavailableError as exc:
            self._map.stale = True
            if not future.done():
                future.set_exception(exc)
            return
        except asyncio.CancelledError:
            if not future.done():
                future.set_exception(StorageUnavailableError("Redis Cluster connection closed"))
            raise
        if not future.done() and not self._forward(node, asking, data, future):
            future.set_exception(StorageUnavailableError("Redis Cluster node connection lost"))

    async def _everywhere(self, args: tuple[Any, ...]) -> Any:
        """A command for every primary; the first primary's reply (the first error when
        none succeeded). A primary that is down does not fail it: it loads its scripts
        again when it answers NOSCRIPT."""
        if self._map.stale or not self._map.primaries:
            await self._map.try_refresh()
        if not self._map.primaries:
            raise StorageUnavailableError("no Redis Cluster primary known")
        replies = await asyncio.gather(
            *(node.execute(*args) for node in self._map.primaries), return_exceptions=True
        )
        for reply in replies:
            if not isinstance(reply, BaseException):
                if len(args) >= 3 and text(args[1]).upper() == "LOAD":
                    self._map.loaded(reply, args[2])
                return reply
        self._map.stale = True
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
            if self._map.stale or not self._map.covered:
                await self._map.try_refresh()
            primaries = list(self._map.primaries)
            if not primaries or not self._map.covered:
                return False
            replies = await asyncio.gather(
                *(node.execute("CLUSTER", "INFO") for node in primaries), return_exceptions=True
            )
        except (StorageUnavailableError, ResponseError):
            return False
        if any(isinstance(reply, BaseException) for reply in replies):
            self._map.stale = True
            return False
        # A primary that rejoins says CLUSTERDOWN until it has caught up: each is asked.
        return all(isinstance(info, bytes) and b"cluster_state:ok" in info for info in replies)

    def close(self) -> None:
        """Close every node connection; outstanding commands fail as unavailable."""
        for task in self._tasks:
            task.cancel()
        self._map.close()
