"""The execution state of one recipe run: an immutable value, stored as one JSON document.

Why one value: the engine keeps it in Redis under one key and changes it with a single
compare-and-swap on ``version``; two replicas racing on the same job cannot both win.
Everything the evolution needs lives here (active steps, action runs, timers, results),
so any replica can continue a job from the stored value alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

FORMAT = 1


class ExecutionStatus(StrEnum):
    """Lifecycle of a recipe run (maps onto the job states of jobs.md)."""

    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"
    STOPPED = "stopped"

    @property
    def terminal(self) -> bool:
        return self in (ExecutionStatus.COMPLETED, ExecutionStatus.ABORTED, ExecutionStatus.STOPPED)


class RunStatus(StrEnum):
    """Where one run of an action stands."""

    #: Started by its step but waiting for its delay timer (D, SD, DS).
    WAITING = "waiting"
    #: Dispatched; waiting for the equipment's response or event.
    RUNNING = "running"
    COMPLETED = "completed"
    #: Cut by its time limit (L, SL) before it completed; counts as finished.
    LIMITED = "limited"
    #: Failed, and a transition out of its step handles the failure.
    FAILED = "failed"


class TimerKind(StrEnum):
    DELAY = "delay"
    LIMIT = "limit"
    TIMEOUT = "timeout"
    #: The recipe's watchdog: the chart waits on conditions (``run`` is empty).
    WATCHDOG = "watchdog"
    #: A transition's timeout (``run`` holds the activations of its source steps).
    TRANSITION = "transition"


@dataclass(frozen=True)
class ActionRun:
    """One run of an action: created on step entry (or exit, for P0)."""

    #: ``step/name``: at most one run per action of a step.
    key: str
    name: str
    step: str
    #: The step activation (1 for the first entry) that started the run.
    activation: int
    status: RunStatus
    #: Unique per run; equipment uses it to spot a re-delivered command.
    correlation_id: str
    #: Set (S, SD, SL, dispatched DS) and not yet reset by R.
    stored: bool = False
    dispatched_at: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "step": self.step,
            "activation": self.activation,
            "status": self.status.value,
            "correlation_id": self.correlation_id,
            "stored": self.stored,
            "dispatched_at": self.dispatched_at,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionRun:
        return cls(**{**data, "status": RunStatus(data["status"])})


@dataclass(frozen=True)
class Timer:
    """A pending timer. While the execution is paused it is frozen: ``due_at`` is
    ``None`` and ``remaining`` holds the seconds left."""

    key: str
    kind: TimerKind
    #: Key of the action run the timer belongs to (see :class:`TimerKind` for the others).
    run: str
    due_at: float | None
    remaining: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind.value,
            "run": self.run,
            "due_at": self.due_at,
            "remaining": self.remaining,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Timer:
        return cls(**{**data, "kind": TimerKind(data["kind"])})


@dataclass(frozen=True)
class Execution:
    """State of one job's recipe run; :func:`microdcs.sfc.evolve` returns the next one."""

    job_id: str
    #: Job order parameters by ID, for ``param.*`` in conditions.
    parameters: Mapping[str, Any] = field(default_factory=dict)
    status: ExecutionStatus = ExecutionStatus.READY
    #: Bumped by every accepted event: the compare-and-swap token of the engine.
    version: int = 0
    #: Active steps, in order of activation.
    active: tuple[str, ...] = ()
    #: How many times each step has been entered so far.
    activations: Mapping[str, int] = field(default_factory=dict)
    runs: Mapping[str, ActionRun] = field(default_factory=dict)
    timers: Mapping[str, Timer] = field(default_factory=dict)
    #: Latest result per action name, in completion order (``result.*`` folds them).
    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None
    paused_at: float | None = None
    #: Why the run was aborted or stopped.
    reason: str | None = None
    #: The execution summary, oldest first (at most ``MAX_HISTORY`` entries):
    #: ``("step", step, activation, entered_at, left_at or None)`` and
    #: ``("action", name, step, outcome, at)`` (completed, failed, limited, cancelled).
    history: tuple[tuple[Any, ...], ...] = ()

    def run_by_correlation(self, correlation_id: str) -> ActionRun | None:
        return next((r for r in self.runs.values() if r.correlation_id == correlation_id), None)

    @property
    def running(self) -> tuple[ActionRun, ...]:
        return tuple(r for r in self.runs.values() if r.status is RunStatus.RUNNING)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``orjson.dumps`` it) for storage as one Redis value."""
        return {
            "format": FORMAT,
            "job_id": self.job_id,
            "parameters": dict(self.parameters),
            "status": self.status.value,
            "version": self.version,
            "active": list(self.active),
            "activations": dict(self.activations),
            "runs": [r.to_dict() for r in self.runs.values()],
            "timers": [t.to_dict() for t in self.timers.values()],
            "results": [[name, dict(value)] for name, value in self.results.items()],
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "paused_at": self.paused_at,
            "reason": self.reason,
            "history": [list(entry) for entry in self.history],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Execution:
        """Inverse of :meth:`to_dict`; results keep their completion order."""
        if data.get("format") != FORMAT:
            raise ValueError(f"unsupported execution format {data.get('format')!r}")
        runs = [ActionRun.from_dict(r) for r in data["runs"]]
        timers = [Timer.from_dict(t) for t in data["timers"]]
        return cls(
            job_id=data["job_id"],
            parameters=dict(data["parameters"]),
            status=ExecutionStatus(data["status"]),
            version=int(data["version"]),
            active=tuple(data["active"]),
            activations=dict(data["activations"]),
            runs={r.key: r for r in runs},
            timers={t.key: t for t in timers},
            results={name: dict(value) for name, value in data["results"]},
            started_at=data["started_at"],
            ended_at=data["ended_at"],
            paused_at=data["paused_at"],
            reason=data["reason"],
            # Absent in executions stored before the summary existed.
            history=tuple(tuple(entry) for entry in data.get("history", ())),
        )
