"""The publisher's view of a scope and how a batch of its changes folds into a plan.

Pure (no I/O): what the change stream says, what the index becomes, which jobs to
(re)publish and which to remove, when the scope's next index is due, and up to where the
stream is covered. The stream itself is read through the job store's change feed
(:class:`ChangeReader`).

Everything a pass does per job is O(changes): a change updates the scope's index entry of
its job in place (:func:`fold_changes`). Only publishing the index costs O(jobs), so it is
paced (:func:`index_pause`): a large scope's index goes out less often, and the index
entries published per second and scope stay bounded however many jobs are stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from microdcs.jobs.contract import JobStatus
from microdcs.publisher.payloads import index_entry

if TYPE_CHECKING:  # ports may name ChangeReader without an import cycle
    from microdcs.publisher.ports import ScopeSnapshot


class Change(Protocol):
    """One change-stream entry as the publisher reads it: a job after one change."""

    @property
    def entry_id(self) -> str:
        """Stream entry id, ``<ms>-<n>``."""
        ...

    @property
    def job_id(self) -> str: ...

    @property
    def seq(self) -> int:
        """The scope's change counter after this change."""
        ...

    @property
    def removed(self) -> bool:
        """The job left the list."""
        ...

    @property
    def status(self) -> JobStatus: ...

    @property
    def has_result(self) -> bool: ...

    @property
    def time(self) -> float:
        """Wall-clock time (s) of the change."""
        ...


class ChangeReader(Protocol):
    """The scopes' change streams and the publisher's cursors (the job store's
    ``changes`` implements it); each method is one pipelined round trip."""

    async def cursor(self, scope: str) -> str | None:
        """The cursor last saved for ``scope`` (:meth:`Cursor.encode`), or ``None``."""
        ...

    async def read(
        self, positions: Sequence[tuple[str, str]], *, count: int
    ) -> Sequence[Sequence[Change]]:
        """Up to ``count`` changes after each (scope, stream id), per scope in order."""
        ...

    async def save(self, cursors: Mapping[str, str]) -> None:
        """Store the encoded cursor of each scope."""
        ...


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where publishing of a scope has got to, as stored with the job store."""

    #: Stream ID up to which every change is published.
    position: str
    #: Revision (``seq`` on the wire) of the last published state index.
    revision: int
    #: Change counter of the entry at ``position``.
    seq: int
    #: Change counter the published index ``revision`` reflects: behind ``seq`` while a
    #: paced index is still due (its jobs' ``order/`` topics are published already).
    indexed: int = -1

    def __post_init__(self) -> None:
        if self.indexed < 0:
            object.__setattr__(self, "indexed", self.seq)

    def encode(self) -> str:
        return f"{self.position} {self.revision} {self.seq} {self.indexed}"

    @classmethod
    def decode(cls, stored: str) -> Cursor:
        """``"<stream id> <revision> <change seq> <indexed seq>"``; older cursors lack the
        indexed seq (their index covered the cursor) or also the revision (``"<id> <seq>"``).
        """
        parts = stored.split(" ")
        revision = int(parts[1])
        seq = int(parts[2]) if len(parts) > 2 else revision
        return cls(parts[0], revision, seq, int(parts[3]) if len(parts) > 3 else seq)


@dataclass(slots=True)
class Scope:
    """What the publisher knows about one scope."""

    name: str
    #: Stream ID up to which every change is published (stored in Redis with the revision).
    cursor: str = "0-0"
    #: Change counter of the entry at ``cursor``: the next entry must carry one more.
    cursor_seq: int = 0
    #: Change counter the index reflects (a snapshot may be ahead of the cursor).
    seq: int = 0
    #: Revision (``seq`` on the wire) of the last published state index.
    revision: int = 0
    #: Change counter the last published index reflects (stored with the cursor).
    indexed: int = 0
    #: Encoded index entry of every listed job.
    index: dict[str, bytes] = field(default_factory=dict)
    #: The index reflects changes no published revision covers yet.
    dirty: bool = False
    #: When (monotonic s) this publisher last published the scope's index; 0: never.
    index_at: float = 0.0

    def index_due(self, pause: float) -> float:
        """When (monotonic s) the next index may be published, ``pause`` after the last."""
        return self.index_at + pause if self.index_at else 0.0

    def reset(self, snapshot: ScopeSnapshot) -> None:
        self.seq = snapshot.seq
        self.index = {
            job_id: index_entry(job_id, status.path, has_result)
            for job_id, status, has_result in snapshot.jobs
        }

    def resume(self, cursor: Cursor) -> None:
        """Continue from a stored cursor."""
        self.cursor, self.revision, self.cursor_seq = cursor.position, cursor.revision, cursor.seq
        self.indexed = cursor.indexed


@dataclass(slots=True)
class Plan:
    """What one pass publishes for one scope."""

    scope: Scope
    upserts: list[str]
    removes: list[str]
    #: Stream position and change counter the publishes cover (stored as the cursor).
    cursor: str
    cursor_seq: int
    #: Publish the index's next revision (the index changed, and it is due).
    changed: bool
    #: A full republish (takeover, lost retained state, trimmed stream): never paced.
    resync: bool = False

    def defer_index(self) -> None:
        """Not this pass: the scope stays dirty and its index goes out once due."""
        self.changed = False
        self.scope.dirty = True

    def next_cursor(self) -> Cursor:
        """The cursor to store once this plan is published."""
        scope = self.scope
        revision = scope.revision + 1 if self.changed else scope.revision
        # Unless deferred (dirty), the published index reflects all the scope has seen.
        indexed = scope.indexed if scope.dirty and not self.changed else scope.seq
        return Cursor(self.cursor, revision, self.cursor_seq, indexed)


def index_pause(jobs: int, interval: float, entries_per_second: int) -> float:
    """Least time between two indexes of a scope listing ``jobs`` jobs.

    The pass ``interval`` for a scope up to ``entries_per_second * interval`` jobs; beyond
    that, long enough that the scope's index publishes at most ``entries_per_second``
    entries per second (0: no pacing), so its cost stays flat as jobs accumulate.
    """
    if entries_per_second <= 0:
        return interval
    return max(interval, jobs / entries_per_second)


def entry_time(entry_id: str) -> float:
    """Wall-clock time (s) Redis added a stream entry: its ID is ``<ms>-<n>``."""
    return int(entry_id.split("-", 1)[0]) / 1000


def fold_changes(scope: Scope, entries: Sequence[Change]) -> Plan:
    """Fold a batch of a scope's changes into its index; which jobs to (re)publish."""
    last_removed: dict[str, bool] = {}
    changed = scope.dirty
    for entry in entries:
        job_id = entry.job_id
        last_removed[job_id] = entry.removed
        if entry.seq <= scope.seq:
            continue  # already reflected in the index (snapshot or earlier pass)
        scope.seq, changed = entry.seq, True
        if entry.removed:
            scope.index.pop(job_id, None)
        else:
            scope.index[job_id] = index_entry(job_id, entry.status.path, entry.has_result)
    return Plan(
        scope,
        [j for j, removed in last_removed.items() if not removed],
        [j for j, removed in last_removed.items() if removed],
        entries[-1].entry_id,
        entries[-1].seq,
        changed,
    )
