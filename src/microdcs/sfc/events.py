"""What can happen to an execution (events in) and what the engine must do (effects out).

Both are plain frozen dataclasses: the engine serialises events into its Redis stream
and performs effects after it has stored the new execution state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from microdcs_models.sfc_recipe import SfcInteraction, SfcQualifier


# -- events ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    """Activate the initial step (job -> Running)."""


@dataclass(frozen=True)
class ActionCompleted:
    """Equipment answered the command, or the awaited event arrived."""

    correlation_id: str
    result: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ActionFailed:
    """Equipment reported an error for the action."""

    correlation_id: str
    reason: str


@dataclass(frozen=True)
class TimerDue:
    """A timer scheduled by :class:`ScheduleTimer` is due."""

    key: str


@dataclass(frozen=True)
class Pause:
    """Freeze: no transition fires, no action starts, timers stop counting."""


@dataclass(frozen=True)
class Resume:
    """Undo :class:`Pause`: timers continue with the time they had left."""


@dataclass(frozen=True)
class Stop:
    """End the recipe now (job -> Ended); running actions are cancelled."""

    reason: str | None = None


@dataclass(frozen=True)
class Abort:
    """Abort the recipe now (job -> Aborted); running actions are cancelled."""

    reason: str


@dataclass(frozen=True)
class Reevaluate:
    """Evaluate conditions again, e.g. after the inputs of a registered predicate changed."""


Event = (
    Start | ActionCompleted | ActionFailed | TimerDue | Pause | Resume | Stop | Abort | Reevaluate
)


# -- effects --------------------------------------------------------------------------
@dataclass(frozen=True)
class StepEntered:
    step: str
    activation: int


@dataclass(frozen=True)
class StepExited:
    step: str
    activation: int


@dataclass(frozen=True)
class TransitionFired:
    """An arc fired (before its sources are left); for progress events only."""

    label: str


@dataclass(frozen=True)
class DispatchAction:
    """Send the command (push_command) or start awaiting the event (pull_event)."""

    job_id: str
    step: str
    action: str
    qualifier: SfcQualifier
    interaction: SfcInteraction
    type_id: str
    correlation_id: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    timeout_seconds: float | None = None
    #: The action's equipment ID (``None``: the default equipment processor).
    equipment: str | None = None


@dataclass(frozen=True)
class CancelAction:
    """Stop awaiting the action; tell equipment to cancel it if it can."""

    correlation_id: str
    step: str
    action: str
    reason: str
    #: The action's equipment ID, where the cancel goes (``None``: the default).
    equipment: str | None = None


@dataclass(frozen=True)
class ScheduleTimer:
    """Deliver ``TimerDue(key)`` at ``due_at``; replaces a timer of the same key."""

    key: str
    due_at: float


@dataclass(frozen=True)
class CancelTimer:
    key: str


@dataclass(frozen=True)
class JobCompleted:
    """The recipe reached its end: job -> Ended/Completed with these results."""

    results: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class JobStopped:
    """Stopped on request: job -> Ended."""

    results: Mapping[str, Mapping[str, Any]]
    reason: str | None


@dataclass(frozen=True)
class JobAborted:
    """Aborted (on request, by an unhandled failure, or by a zero-time loop)."""

    reason: str
    results: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class JobSuspended:
    """The chart stalled (watchdog, or a transition timeout with ``suspend``): the
    execution is paused and the job goes to Interrupted/Suspended until the MES resumes."""

    reason: str


@dataclass(frozen=True)
class EventIgnored:
    """The event changed nothing (stale, duplicate, or not allowed now); for logging."""

    reason: str


Effect = (
    StepEntered
    | StepExited
    | TransitionFired
    | DispatchAction
    | CancelAction
    | ScheduleTimer
    | CancelTimer
    | JobCompleted
    | JobStopped
    | JobAborted
    | JobSuspended
    | EventIgnored
)
