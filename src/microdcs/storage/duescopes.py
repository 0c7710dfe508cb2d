"""A replica's task for durable deadlines kept per scope in Redis sorted sets.

The alarm timers (on-delay, off-delay, shelve expiry) and the plant data's stale
deadlines live in Redis, scored by their due time, so a replica that dies leaves them
behind and another one fires them. Both need the same loop on every replica: sleep until
the earliest due time it knows of, or until its own replica set an earlier one
(:meth:`DueScopesTask.wake`), or at most ``rescan`` seconds (for deadlines other replicas
set); never poll faster; wait a Redis outage out with one warning. What is due, and what
firing it means (a leasing script each), is the subclass's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

from microdcs.core.errors import StorageUnavailableError
from microdcs.core.waiting import sleep_unless
from microdcs.storage.outage import OutageLog


class DueScopesTask(ABC):
    """Fires the due deadlines of every scope; ``run`` is an additional task of the app."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        rescan: float,
        lease: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rescan = rescan
        self.lease = lease
        self.clock = clock
        self.outage = OutageLog(logger, what)
        self._wake = asyncio.Event()
        #: The earliest deadline the last step saw (none due then): an earlier one set by
        #: this replica is worth a :meth:`wake`.
        self.next_at = math.inf

    @abstractmethod
    async def earliest(self) -> Mapping[str, float]:
        """Each scope's earliest due time (epoch seconds)."""

    @abstractmethod
    async def fire(self, scopes: list[str], now: float) -> None:
        """Fire what is due in ``scopes``; raise ``StorageUnavailableError`` to back off."""

    def wake(self) -> None:
        """This replica set a deadline: look at the due times again now."""
        self._wake.set()

    async def run(self, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set():
            try:
                delay = await self.step()
                self.outage.recovered()
            except StorageUnavailableError as exc:
                delay = self.outage.failed(exc)
            if delay > 0:
                await sleep_unless(delay, shutdown, self._wake)

    async def step(self) -> float:
        """Fire what is due; the seconds until the next look."""
        self._wake.clear()
        earliest = await self.earliest()
        now = self.clock()
        due = [scope for scope, at in earliest.items() if at <= now]
        if due:
            await self.fire(due, now)
            return 0.0
        soonest = min(earliest.values(), default=math.inf)
        self.next_at = soonest
        return min(max(soonest - now, 0.0), self.rescan)
