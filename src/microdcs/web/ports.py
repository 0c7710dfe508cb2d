"""What the operator pages read, declared by the web view itself.

The app hands in an implementation of each (``app/wiring/web.py`` builds them on the job
store, the engine store, the alarm store and the plant data store), so the pages import
no storage and no domain internals and their unit tests fill these with plain values.
Alarms come through the alarm domain's own :class:`~microdcs.alarms.contract.AlarmReader`
and :class:`~microdcs.alarms.contract.AlarmActions`; only what no contract offers is
declared here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from microdcs.alarms.contract import AlarmActions, AlarmReader, AlarmView
from microdcs.jobs.contract import JobStatus

__all__ = [
    "ActionRunView",
    "AlarmService",
    "JobChanges",
    "JobDetail",
    "JobList",
    "JobReader",
    "JobRow",
    "RecipeProgress",
    "ReplicaDirectory",
    "ReplicaStatus",
    "StatusChange",
    "StepTimer",
    "StepVisit",
    "TagDirectory",
    "TagInfo",
]


@dataclass(frozen=True, slots=True)
class JobRow:
    """One line of a scope's job table."""

    job_id: str
    work_master: str
    status: JobStatus
    #: ISO 8601 times the job store recorded ("" while unset).
    start: str = ""
    end: str = ""
    has_result: bool = False

    def to_json(self) -> dict[str, Any]:
        state, _, substate = self.status.path.partition(".")
        return {
            "id": self.job_id,
            "workMaster": self.work_master,
            "state": state,
            "substate": substate,
            "start": self.start,
            "end": self.end,
            "hasResult": self.has_result,
        }


@dataclass(frozen=True, slots=True)
class JobList:
    """A scope's listed jobs and the change stream position they reflect."""

    rows: Sequence[JobRow]
    cursor: str


@dataclass(frozen=True, slots=True)
class JobChanges:
    """Which jobs of a scope changed after a change stream position."""

    cursor: str
    changed: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A job's status after one change (Unix seconds)."""

    at: float
    status: JobStatus


@dataclass(frozen=True, slots=True)
class JobDetail:
    row: JobRow
    #: The job order and the job response as the MES reads them (JSON objects).
    order: Mapping[str, Any]
    response: Mapping[str, Any]
    #: Oldest first, as far back as the scope's change stream reaches.
    history: Sequence[StatusChange]
    #: The SFC recipe JSON of the job's work master (``None``: not an SFC job).
    recipe_json: bytes | None = None


@dataclass(frozen=True, slots=True)
class StepVisit:
    """One activation of a step: the execution summary's step entry."""

    step: str
    activation: int
    entered_at: float
    left_at: float | None


@dataclass(frozen=True, slots=True)
class StepTimer:
    """A pending timer of the recipe (an action's delay, limit or timeout, a transition
    timeout, the watchdog); ``remaining`` is set instead of ``due_at`` while paused."""

    kind: str
    step: str
    action: str
    due_at: float | None
    remaining: float | None = None


@dataclass(frozen=True, slots=True)
class ActionRunView:
    step: str
    action: str
    status: str


@dataclass(frozen=True, slots=True)
class RecipeProgress:
    """Where a job's recipe stands: what the chart highlights."""

    status: str
    version: int
    active: tuple[str, ...]
    visits: Sequence[StepVisit] = ()
    timers: Sequence[StepTimer] = ()
    runs: Sequence[ActionRunView] = ()
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "active": list(self.active),
            "visits": [
                {"step": v.step, "activation": v.activation, "entered": v.entered_at,
                 "left": v.left_at}
                for v in self.visits
            ],
            "timers": [
                {"kind": t.kind, "step": t.step, "action": t.action, "due": t.due_at,
                 "remaining": t.remaining}
                for t in self.timers
            ],
            "runs": [{"step": r.step, "action": r.action, "status": r.status} for r in self.runs],
            "reason": self.reason,
        }  # fmt: skip


class JobReader(Protocol):
    """Jobs and recipe executions as the pages read them (never written through here:
    every job move goes through the job processor)."""

    async def scopes(self) -> Sequence[str]:
        """Every scope that has had a job, sorted."""
        ...

    async def jobs(self, scope: str) -> JobList:
        """The scope's listed jobs and the change stream position they reflect."""
        ...

    async def changed(self, scope: str, after: str, *, limit: int = 1000) -> JobChanges:
        """Jobs changed after change stream position ``after`` (at most ``limit`` entries
        read; the returned cursor says how far)."""
        ...

    async def rows(self, scope: str, job_ids: Sequence[str]) -> Sequence[JobRow]:
        """The listed ones of ``job_ids`` as they are now (a job that left is absent)."""
        ...

    async def job(self, scope: str, job_id: str) -> JobDetail | None:
        """A listed or archived job; ``None`` when unknown."""
        ...

    async def progress(self, scope: str, job_id: str) -> RecipeProgress | None:
        """The job's recipe execution, ``None`` when it has none (yet)."""
        ...


@dataclass(frozen=True, slots=True)
class TagInfo:
    """A configured tag as the tag table shows it."""

    name: str
    unit: str = ""
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


class TagDirectory(Protocol):
    """Which tags are configured where (the plant data configuration)."""

    async def scopes(self) -> Sequence[str]: ...

    async def tags(self, scope: str) -> Sequence[TagInfo]: ...


class AlarmService(AlarmReader, AlarmActions, Protocol):
    """The alarm contract's reader and actions, plus what the pages need to find and
    follow them: the scopes that have alarms, and a change counter per scope."""

    async def scopes(self) -> Sequence[str]:
        """Every scope with alarm definitions, sorted."""
        ...

    async def snapshot(self, scope: str) -> tuple[int, Sequence[AlarmView]]:
        """The scope's alarm change counter and every alarm (one counter per change, so
        a live page refetches only when it moved)."""
        ...


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """One replica as the overview shows it."""

    name: str
    ready: bool
    #: Holds the retained-topic publisher's lease.
    publisher_leader: bool = False
    #: Age of the oldest unpublished job change (s), ``None`` where unknown.
    publisher_lag: float | None = None
    sfc_active: int | None = None
    #: Seconds since the replica last reported (0 for this replica).
    seen_ago: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ready": self.ready,
            "leader": self.publisher_leader,
            "lag": self.publisher_lag,
            "sfcActive": self.sfc_active,
            "seenAgo": self.seen_ago,
        }


class ReplicaDirectory(Protocol):
    """The replicas serving this plant and their health."""

    async def replicas(self) -> Sequence[ReplicaStatus]: ...
