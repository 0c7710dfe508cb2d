"""Durable alarm timers: on-delay, off-delay and shelve expiry, fired by any replica.

A timer is a member of the scope's timers sorted set, scored by its due time, and is set
or cancelled in the same script that stores the transition asking for it, so a replica
that dies leaves its timers behind in Redis, not in its memory. Every replica runs one
:class:`AlarmTimers` task (the loop of :class:`~microdcs.storage.duescopes.DueScopesTask`,
shared with the plant data's stale deadlines). A due timer is claimed by a script that
leases it to one replica; the transition it causes removes it, and a claim whose replica
died fires again elsewhere once the lease ends.

Why not the SFC engine's timers: those turn into work items of the engine's stream, read
by its consumer group and polled every 50 ms; an alarm timer is the alarm's own
compare-and-swap, so it needs only the claim, and it sleeps to its due time instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from microdcs.alarms.store import AlarmStore, DueTimer
from microdcs.core.errors import StorageUnavailableError
from microdcs.storage.duescopes import DueScopesTask

logger = logging.getLogger(__name__)

#: Fires one claimed timer: ``fire(scope, timer, lease_until)``.
Fire = Callable[[str, DueTimer, float], Awaitable[None]]


class AlarmTimers(DueScopesTask):
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
        super().__init__(logger, "Redis (alarm timers)", rescan=rescan, lease=lease, clock=clock)
        self.store = store
        self.fire_timer = fire
        #: Timers fired by this replica (a metric and a test hook).
        self.fired = 0

    async def earliest(self) -> Mapping[str, float]:
        return await self.store.next_due(sorted(await self.store.scopes()))

    async def fire(self, scopes: list[str], now: float) -> None:
        await asyncio.gather(*(self._fire_scope(scope, now) for scope in scopes))

    async def _fire_scope(self, scope: str, now: float) -> None:
        lease_until = now + self.lease
        timers = await self.store.claim_timers(scope, now, lease_until)
        results = await asyncio.gather(
            *(self.fire_timer(scope, timer, lease_until) for timer in timers),
            return_exceptions=True,
        )
        for timer, result in zip(timers, results, strict=True):
            if isinstance(result, StorageUnavailableError):
                raise result  # leased: fired again after the lease, here or elsewhere
            if isinstance(result, BaseException):
                logger.error("alarm timer %s/%s of scope %s failed", timer.alarm, timer.kind,
                             scope, exc_info=result)  # fmt: skip
            else:
                self.fired += 1
