"""Durable alarm timers: on-delay, off-delay and shelve expiry, fired by any replica.

A timer is a member of the scope's timers sorted set, scored by its due time, and is set
or cancelled in the same script that stores the transition asking for it, so a replica
that dies leaves its timers behind in Redis, not in its memory. Every replica runs one
:class:`AlarmTimers` task. It sleeps until the earliest due time it knows of, or until
its own replica sets a timer (:meth:`wake`), or at most ``rescan`` seconds (for timers
other replicas set); it never polls faster. A due timer is claimed by a script that
leases it to one replica; the transition it causes removes it, and a claim whose replica
died fires again elsewhere once the lease ends.

Why not the SFC engine's timers: those turn into work items of the engine's stream, read
by its consumer group and polled every 50 ms; an alarm timer is the alarm's own
compare-and-swap, so it needs only the claim, and it sleeps to its due time instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from microdcs.alarms.store import AlarmStore, DueTimer
from microdcs.core.errors import StorageUnavailableError
from microdcs.storage.outage import OutageLog

logger = logging.getLogger(__name__)

#: Fires one claimed timer: ``fire(scope, timer, lease_until)``.
Fire = Callable[[str, DueTimer, float], Awaitable[None]]


class AlarmTimers:
    """The timer task of one replica (``run`` is an additional task of the app)."""

    def __init__(
        self,
        store: AlarmStore,
        fire: Fire,
        *,
        rescan: float = 0.25,
        lease: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.fire = fire
        self.rescan = rescan
        self.lease = lease
        self.clock = clock
        #: Timers fired by this replica (a metric and a test hook).
        self.fired = 0
        self._wake = asyncio.Event()
        self.outage = OutageLog(logger, "Redis (alarm timers)")

    def wake(self) -> None:
        """This replica set a timer: look at the due times again now."""
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
        """Fire what is due; the seconds until the next look."""
        scopes = sorted(await self.store.scopes())
        self._wake.clear()
        earliest = await self.store.next_due(scopes)
        now = self.clock()
        due = [scope for scope, at in earliest.items() if at <= now]
        if due:
            await asyncio.gather(*(self._fire_scope(scope, now) for scope in due))
            return 0.0
        soonest = min(earliest.values(), default=math.inf)
        return min(max(soonest - now, 0.0), self.rescan)

    async def _fire_scope(self, scope: str, now: float) -> None:
        lease_until = now + self.lease
        timers = await self.store.claim_timers(scope, now, lease_until)
        results = await asyncio.gather(
            *(self.fire(scope, timer, lease_until) for timer in timers), return_exceptions=True
        )
        for timer, result in zip(timers, results, strict=True):
            if isinstance(result, StorageUnavailableError):
                raise result  # leased: fired again after the lease, here or elsewhere
            if isinstance(result, BaseException):
                logger.error("alarm timer %s/%s of scope %s failed", timer.alarm, timer.kind,
                             scope, exc_info=result)  # fmt: skip
            else:
                self.fired += 1

    async def _sleep(self, shutdown: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(shutdown.wait()), asyncio.ensure_future(self._wake.wait())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
