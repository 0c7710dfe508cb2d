"""Keeps every scope's ISA-18.2 KPIs current from its journal, for the metrics endpoint.

Each replica follows the shared journals itself (an ``XRANGE`` from the last id it read,
every ``APP_ALARMS_KPI_INTERVAL_SECONDS``), so every replica exports the same figures
per scope: aggregate them with ``max`` across replicas, never ``sum``. Between two passes
the task sleeps on a timer; a scrape reads the last figures and never touches Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Protocol

from microdcs.alarms.contract import AlarmView, JournalEntry
from microdcs.alarms.journal import ms_id
from microdcs.alarms.kpis import AlarmKpis, KpiFigures
from microdcs.core.errors import MicroDCSError
from microdcs.storage.outage import OutageLog

__all__ = ["KpiTask"]

logger = logging.getLogger(__name__)


class JournalFollower(Protocol):
    async def since(
        self, scope: str, after: str, *, count: int = 5000
    ) -> tuple[str, Sequence[JournalEntry]]: ...


Views = Callable[[str], Awaitable[Sequence[AlarmView]]]
Scopes = Callable[[], Awaitable[set[str]]]

#: Journal entries read per round trip while catching up.
BATCH = 5000


class KpiTask:
    """Computes :class:`KpiFigures` per scope; :attr:`figures` is what metrics read."""

    def __init__(
        self,
        journal: JournalFollower,
        views: Views,
        scopes: Scopes,
        *,
        interval: float,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.views = views
        self.scopes = scopes
        self.interval = interval
        self.window = window
        self.clock = clock
        self.figures: dict[str, KpiFigures] = {}
        self._kpis: dict[str, AlarmKpis] = {}
        self._cursor: dict[str, str] = {}
        self.outage = OutageLog(logger, "alarm KPI computation")

    async def run(self, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set():
            delay = self.interval
            try:
                await self.update()
                self.outage.recovered()
            except MicroDCSError as exc:
                delay = min(self.interval, self.outage.failed(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), timeout=delay)

    async def update(self) -> None:
        """One pass over every scope with alarms."""
        now = self.clock()
        for scope in sorted(await self.scopes()):
            kpis = self._kpis.get(scope)
            if kpis is None:
                kpis = self._kpis[scope] = AlarmKpis(self.window)
                self._cursor[scope] = ms_id(now - self.window)
            while True:
                cursor, entries = await self.journal.since(scope, self._cursor[scope], count=BATCH)
                self._cursor[scope] = cursor
                kpis.add(entries)
                if len(entries) < BATCH:
                    break
            self.figures[scope] = kpis.figures(now, await self.views(scope))

    # -- what the metrics endpoint reads -------------------------------------------------
    def reading(
        self, pick: Callable[[KpiFigures], float]
    ) -> Iterator[tuple[float, dict[str, str]]]:
        for scope, figures in self.figures.items():
            yield pick(figures), {"scope": scope}

    def frequent(self) -> Iterator[tuple[float, dict[str, str]]]:
        for scope, figures in self.figures.items():
            for alarm, count in figures.frequent:
                yield count, {"scope": scope, "alarm": alarm}
