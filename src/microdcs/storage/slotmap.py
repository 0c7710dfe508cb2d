"""Who serves each slot of a Redis Cluster, and the pipelined connections to them.

The map (``CLUSTER SLOTS``) is read from the first node that answers: the known
primaries and the seed nodes are asked at once, so one frozen node does not hold it up.
It is read again at most once per ``refresh_interval``; :attr:`SlotMap.stale` tells the
cluster connection that a node failed or a slot moved, so that the next command reads it
first. Scripts loaded through the map are loaded on every primary that joins it later (a
replica promoted in a failover has an empty script cache).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from microdcs.core.boundedlog import RateLimitedLog
from microdcs.core.errors import ConfigurationError, StorageUnavailableError
from microdcs.storage.replies import text
from microdcs.storage.resp import Redirect, RespConnection
from microdcs.storage.slots import SLOTS

logger = logging.getLogger(__name__)

Address = tuple[str, int]


class SlotMap:
    """The slot map and every node connection of a cluster connection."""

    def __init__(
        self,
        seeds: Sequence[Address],
        connection: Callable[[str, int, Redirect], RespConnection],
        redirect: Redirect,
        *,
        refresh_interval: float = 0.25,
    ) -> None:
        if not seeds:
            raise ValueError("a Redis Cluster needs at least one seed node")
        self._seeds = list(seeds)
        #: Builds the connection to one node (login, TLS and timeouts of the store).
        self._new_connection = connection
        #: Every node connection hands its MOVED/ASK replies here.
        self._redirect = redirect
        self._refresh_interval = refresh_interval
        #: The primary serving each slot (None: unknown or not served). Updated in place,
        #: so the cluster connection holds this very list.
        self.by_slot: list[RespConnection | None] = [None] * SLOTS
        #: Every slot has a primary.
        self.covered = False
        #: The primaries, the one serving slot 0 first.
        self.primaries: list[RespConnection] = []
        #: A node failed or a slot moved: read the map before the next command.
        self.stale = True
        #: Every connection held: primaries, and seeds or ASK targets until the next map.
        self._nodes: dict[Address, RespConnection] = {}
        self._addresses: dict[RespConnection, Address] = {}
        self._refreshed_at = -math.inf
        self._lock: asyncio.Lock | None = None
        #: Sources of the scripts loaded through this map, by SHA.
        self._scripts: dict[str, Any] = {}
        #: A cluster that cannot be asked is retried by every slow-path command and
        #: every readiness probe: a few lines per minute say so.
        self._log = RateLimitedLog(logger, burst=2, period=30.0)

    def connection(self, address: Address) -> RespConnection:
        """The connection to ``address``, opened on its first command."""
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = self._new_connection(*address, self._redirect)
            self._addresses[node] = address
        return node

    def address_of(self, node: RespConnection) -> Address:
        return self._addresses[node]

    def moved(self, slot: int, node: RespConnection) -> None:
        """``MOVED``: the slot is served by ``node`` now (and more may have moved)."""
        self.by_slot[slot] = node
        self.stale = True

    def loaded(self, sha: Any, source: Any) -> None:
        """A script was loaded on the primaries (again on those that join later)."""
        self._scripts[text(sha)] = source

    async def refresh(self, *, force: bool = False) -> None:
        """Read the map again unless it was read within ``refresh_interval`` (or, for a
        caller that waited for another refresh, since it asked); raises
        :class:`StorageUnavailableError` when no node answers and
        :class:`ConfigurationError` when a seed is not a cluster node."""
        loop = asyncio.get_running_loop()
        asked = loop.time()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._refreshed_at >= asked:
                return  # another caller read it while we waited
            if not force and loop.time() - self._refreshed_at < self._refresh_interval:
                return
            self._refreshed_at = loop.time()
            reply, address = await self._read()
            await self._apply(reply, address)
            self.stale = False

    async def try_refresh(self) -> None:
        """:meth:`refresh`, keeping the old map when the cluster cannot be asked (the
        command then fails or succeeds on its own)."""
        try:
            await self.refresh()
        except StorageUnavailableError as exc:
            self._log.log(logging.WARNING, "map", "Redis Cluster slot map not read: %s", str(exc))

    async def _read(self) -> tuple[Any, Address]:
        """``CLUSTER SLOTS`` from the first node (primaries, then seeds) that answers."""
        candidates: list[Address] = [self._addresses[node] for node in self.primaries]
        candidates += [seed for seed in self._seeds if seed not in candidates]
        pending: dict[asyncio.Future[Any], Address] = {
            asyncio.ensure_future(self.connection(address).execute("CLUSTER", "SLOTS")): address
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
            node = self.connection((text(primary[0]) or queried[0], int(primary[1])))
            by_slot[start : end + 1] = [node] * (end - start + 1)
            primaries[node] = min(primaries.get(node, SLOTS), start)
        known = set(self.primaries)
        self.by_slot[:] = by_slot
        self.covered = None not in by_slot
        self.primaries = sorted(primaries, key=primaries.__getitem__)
        for address, node in list(self._nodes.items()):
            if node not in primaries:  # demoted, removed, or a seed we only asked
                del self._nodes[address]
                del self._addresses[node]
                node.close()
        joined = [node for node in self.primaries if node not in known]
        if known and joined:
            logger.info(
                "Redis Cluster primaries now %s", [self._addresses[n] for n in self.primaries]
            )
        if self._scripts and joined:
            loads = [("SCRIPT", "LOAD", source) for source in self._scripts.values()]
            await asyncio.gather(*(node.execute_many(loads) for node in joined),
                                 return_exceptions=True)  # fmt: skip

    def close(self) -> None:
        """Close every node connection; outstanding commands fail as unavailable."""
        for node in self._nodes.values():
            node.close()
        self._nodes.clear()
        self._addresses.clear()
        self.primaries = []
        self.by_slot[:] = [None] * SLOTS
        self.covered = False
        self.stale = True
