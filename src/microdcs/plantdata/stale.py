"""Durable stale deadlines: a tag that receives nothing for its stale timeout turns bad.

Every sample moves its tag's deadline in the scope's stale sorted set (in the ingest
script), so the deadlines live in Redis, not in a replica's memory, and survive restarts.
Every replica runs one :class:`StaleTimers` task: it sleeps until the earliest deadline it
knows of, or until its own replica set an earlier one (:meth:`wake`), or at most
``rescan`` seconds (for deadlines other replicas set); it never polls faster. A due
deadline is leased by the same script that marks the tag stale, so one replica reports
each staleness to the listeners and then removes the deadline; a replica that died in
between leaves it to be reported again by another once the lease ends (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from microdcs.core.errors import StorageUnavailableError
from microdcs.plantdata.table import CurrentValueTable
from microdcs.storage.outage import OutageLog

logger = logging.getLogger(__name__)


class StaleTimers:
    """The stale task of one replica (``run`` is an additional task of the app)."""

    def __init__(
        self,
        table: CurrentValueTable,
        *,
        rescan: float = 1.0,
        lease: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.rescan = rescan
        self.lease = lease
        self.clock = clock
        self._next = math.inf
        self._wake = asyncio.Event()
        self.outage = OutageLog(logger, "Redis (plant data stale timers)")

    def deadline_set(self, due: float) -> None:
        """This replica set a deadline: look again now if it is earlier than the next."""
        if due < self._next:
            self._next = due
            self._wake.set()

    async def run(self, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set():
            try:
                delay = await self.step()
                self.outage.recovered()
            except StorageUnavailableError as exc:
                delay = self.outage.failed(exc)
            if delay > 0:
                await self._sleep(shutdown, delay)

    async def step(self) -> float:
        """Expire what is due; the seconds until the next look."""
        store = self.table.store
        self._wake.clear()
        earliest = await store.next_due(sorted(await store.scopes()))
        now = self.clock()
        due = [scope for scope, at in earliest.items() if at <= now]
        if due:
            results = await asyncio.gather(
                *(self.table.expire(scope, now, self.lease) for scope in due),
                return_exceptions=True,
            )
            for scope, result in zip(due, results, strict=True):
                if isinstance(result, StorageUnavailableError):
                    raise result  # leased: reported again after the lease, here or elsewhere
                if isinstance(result, BaseException):
                    logger.error("stale tags of scope %s: a listener failed (reported again "
                                 "after the lease)", scope, exc_info=result)  # fmt: skip
            return 0.0
        soonest = min(earliest.values(), default=math.inf)
        self._next = soonest
        return min(max(soonest - now, 0.0), self.rescan)

    async def _sleep(self, shutdown: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(shutdown.wait()), asyncio.ensure_future(self._wake.wait())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
