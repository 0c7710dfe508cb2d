"""Durable stale deadlines: a tag that receives nothing for its stale timeout turns bad.

Every sample moves its tag's deadline in the scope's stale sorted set (in the ingest
script), so the deadlines live in Redis, not in a replica's memory, and survive restarts.
Every replica runs one :class:`StaleTimers` task (the loop of
:class:`~microdcs.storage.duescopes.DueScopesTask`, shared with the alarm timers). A due
deadline is leased by the same script that marks the tag stale, so one replica reports
each staleness to the listeners and then removes the deadline; a replica that died in
between leaves it to be reported again by another once the lease ends (at least once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from microdcs.core.errors import StorageUnavailableError
from microdcs.plantdata.table import CurrentValueTable
from microdcs.storage.duescopes import DueScopesTask

logger = logging.getLogger(__name__)


class StaleTimers(DueScopesTask):
    """The stale task of one replica (``run`` is an additional task of the app)."""

    def __init__(
        self,
        table: CurrentValueTable,
        *,
        rescan: float = 1.0,
        lease: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            logger, "Redis (plant data stale timers)", rescan=rescan, lease=lease, clock=clock
        )
        self.table = table

    def deadline_set(self, due: float) -> None:
        """This replica set a deadline: look again now if it is earlier than the next."""
        if due < self.next_at:
            self.next_at = due
            self.wake()

    async def earliest(self) -> Mapping[str, float]:
        store = self.table.store
        return await store.next_due(sorted(await store.scopes()))

    async def fire(self, scopes: list[str], now: float) -> None:
        results = await asyncio.gather(
            *(self.table.expire(scope, now, self.lease) for scope in scopes),
            return_exceptions=True,
        )
        for scope, result in zip(scopes, results, strict=True):
            if isinstance(result, StorageUnavailableError):
                raise result  # leased: reported again after the lease, here or elsewhere
            if isinstance(result, BaseException):
                logger.error("stale tags of scope %s: a listener failed (reported again "
                             "after the lease)", scope, exc_info=result)  # fmt: skip
