"""The station dispatcher: the default start policy, one atomic decision per scope.

A scope is a station that runs at most ``max_running_jobs`` jobs at a time (station
configuration, default 1, 0 = unlimited). The job scripts keep every AllowedToStart job
in the scope's queue (``queue.lua``); ``dispatch.lua`` counts the Running and Interrupted
jobs against the limit and starts the best queued ones, in one script, so replicas racing
for a slot never start two jobs into it. The queue, the due times of StartTime and the
slots live in Redis: whichever replica runs the dispatcher next makes the decision, so a
job whose StartTime comes while its accepting replica is gone still starts.

A decision is made inline when a local move may change it (a job became AllowedToStart,
left the queue or freed a slot: the MES sees the start before its answer), and by the
:meth:`StationDispatcher.run` task at the next due time (a StartTime, a Close) or every
poll interval, for moves made by other replicas. The task sleeps on a timer; it never
spins. Jobs with and without SFC recipes are dispatched alike: the SFC engine starts the
recipe of a job the dispatcher moved to Running (it is told ``STARTED``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from microdcs.core.errors import StorageUnavailableError
from microdcs.core.waiting import sleep_unless
from microdcs.jobs.contract import JobControl, JobEvent, JobEventKind, scope_name
from microdcs.jobs.keys import ID_KINDS
from microdcs.jobs.records import JobRecord, status_of
from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.scripts import queue_script
from microdcs.jobs.storage import Change, JobStore
from microdcs.storage.outage import OutageLog
from microdcs.storage.replies import number, optional_text, text
from microdcs.storage.script import Script

logger = logging.getLogger(__name__)

_LUA = Path(__file__).parent / "lua"
#: Fields per move in the reply of ``dispatch.lua`` (see its header).
_FIELDS = 12
#: Moves of the MES or the system after which the decision may be different.
_REDECIDE = frozenset(
    {
        JobEventKind.START_REVOKED,
        JobEventKind.UPDATED,
        JobEventKind.STOPPED,
        JobEventKind.ABORTED,
        JobEventKind.ENDED,
        JobEventKind.CANCELLED,
    }
)


@dataclass(frozen=True, slots=True)
class Move:
    """One job the dispatcher moved: ``start`` (to Running), ``sub`` (Waiting/Ready),
    ``close`` (Ended/Closed) or ``handover`` (a start announced again, see below)."""

    kind: str
    change: Change

    @property
    def job_id(self) -> str:
        assert self.change.record is not None
        return self.change.record.job_id


@dataclass(frozen=True, slots=True)
class DispatchReply:
    """``dispatch.lua``: the moves, and when the scope next has something due."""

    next_due_ms: int | None
    moves: list[Move]

    @classmethod
    def from_reply(cls, flat: Sequence[Any]) -> DispatchReply:
        due = int(flat[0])
        moves = []
        for i in range(1, len(flat), _FIELDS):
            kind, job_id, order, st, sub, started, ended, rdata, res, v, seq, rc = flat[
                i : i + _FIELDS
            ]
            record = JobRecord(
                text(job_id), bytes(order), status_of(st, sub), optional_text(started),
                optional_text(ended), rdata or None, text(res) == "1",
            )  # fmt: skip
            change = Change(
                ReturnStatus.OK, record, version=number(v), seq=number(seq), recipe=text(rc)
            )
            moves.append(Move(text(kind), change))
        return cls(None if due < 0 else due, moves)


class Announce(Protocol):
    """Raises the status events of the moves (the job processor implements it)."""

    async def __call__(self, scope: str, moves: Sequence[Move]) -> None: ...


def _iso(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class StationDispatcher:
    """Starts AllowedToStart jobs when their station has a free slot and their time came.

    It is the job processor's default :class:`~microdcs.jobs.startpolicy.StartPolicy`
    and one of its job listeners; ``run`` is the replica's background task.
    """

    def __init__(
        self,
        jobs: JobStore,
        announce: Announce,
        *,
        max_running: int = 1,
        poll_seconds: float = 1.0,
        handover_grace: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jobs = jobs
        self._announce = announce
        #: A scope's ``max_running_jobs`` until the MES configures one.
        self.max_running = max_running
        self.poll_seconds = poll_seconds
        self.handover_grace = handover_grace
        self.clock = clock
        self._script = queue_script(
            jobs.redis, "jobs.dispatch", "dispatch", DispatchReply.from_reply
        )
        self._availability = Script.load(
            jobs.redis, "jobs.availability", _LUA / "availability.lua", DispatchReply.from_reply
        )
        #: When the background task wakes next (s since the epoch), and its alarm.
        self._wake_at = float("inf")
        self._wake = asyncio.Event()
        self.outage = OutageLog(logger, "Redis (job dispatcher)")
        #: Jobs started by this replica's dispatcher (a benchmark and test counter).
        self.started = 0

    # -- triggers -----------------------------------------------------------------------
    async def allowed_to_start(self, event: JobEvent, control: JobControl) -> None:
        """StartPolicy: a job became AllowedToStart; start it now if its slot is free."""
        await self.dispatch(scope_name(event.subject))

    async def __call__(self, event: JobEvent) -> None:
        """JobListener: a move that may free a slot or change the queue's head."""
        if event.kind in _REDECIDE:
            await self.dispatch(scope_name(event.subject))

    # -- the decision ---------------------------------------------------------------------
    async def dispatch(self, scope: str) -> float | None:
        """Decide for ``scope`` and announce what moved; the next due time (s) or None."""
        k = self.jobs.keys(scope)
        now_ms = int(self.clock() * 1000)
        reply = await self._script(
            [k.queue, k.due, k.active, k.config("maxrun"), k.ready, k.fresh, k.handover,
             k.closing, k.changes, k.seq, k.responses],
            [k.base, now_ms, _iso(now_ms), self.jobs.maxlen, self.max_running,
             int(self.handover_grace * 1000)],
        )  # fmt: skip
        if reply.moves:
            await self._announce(scope, reply.moves)
            announced = [m.job_id for m in reply.moves if m.kind in ("start", "handover")]
            self.started += sum(m.kind == "start" for m in reply.moves)
            if announced:
                await self.jobs.redis.execute("ZREM", k.handover, *announced)
        if reply.next_due_ms is None:
            return None
        due = reply.next_due_ms / 1000
        if due < self._wake_at:
            self._wake.set()  # the background task sleeps past it: wake it sooner
        return due

    async def resources_changed(self, scope: str) -> None:
        """The station configuration changed: NotAllowedToStart jobs whose references are
        no longer all allowed become Waiting, the others Ready (``availability.lua``)."""
        k = self.jobs.keys(scope)
        now_ms = int(self.clock() * 1000)
        reply = await self._availability(
            [k.list, k.config("workmaster"), *(k.config(x) for x in ID_KINDS), k.changes, k.seq],
            [k.base, _iso(now_ms), self.jobs.maxlen],
        )
        if reply.moves:
            await self._announce(scope, reply.moves)

    async def set_max_running(self, scope: str, limit: int | None) -> None:
        """The scope's ``max_running_jobs`` (``None``: back to the default), then decide:
        a raised limit starts waiting jobs at once."""
        key = self.jobs.keys(scope).config("maxrun")
        if limit is None:
            await self.jobs.redis.execute("DEL", key)
        else:
            await self.jobs.redis.execute("SET", key, limit)
        await self.dispatch(scope)

    # -- the task --------------------------------------------------------------------------
    async def run(self, shutdown: asyncio.Event) -> None:
        """Decide for every scope at its next due time, or every poll interval."""
        while not shutdown.is_set():
            # Until this round knows its next due time, any due time an inline decision
            # reports wakes the next round at once, so none is missed between the two.
            self._wake_at = float("inf")
            self._wake.clear()
            delay = self.poll_seconds
            try:
                scopes = sorted(await self.jobs.scopes())
                results = await asyncio.gather(
                    *(self.dispatch(s) for s in scopes), return_exceptions=True
                )
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
                self.outage.recovered()
                dues = [r for r in results if isinstance(r, float)]
                if dues:
                    delay = min(delay, max(0.0, min(dues) - self.clock()))
            except StorageUnavailableError as exc:
                delay = self.outage.failed(exc)
            self._wake_at = self.clock() + delay
            await sleep_unless(delay, shutdown, self._wake)
