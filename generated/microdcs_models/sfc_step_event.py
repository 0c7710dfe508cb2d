"""Generated from sfc_step_event.schema.json by ``microdcs dataclassgen``; do not edit by hand.

Progress of a job's SFC recipe: what one stored change did (steps entered and left, transitions
fired, actions and timers), on the job's scope events topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from microdcs.models import Model


class SfcStepEventKind(StrEnum):
    """What happened."""

    STEP_ENTERED = "step_entered"
    STEP_EXITED = "step_exited"
    TRANSITION_FIRED = "transition_fired"
    ACTION_DISPATCHED = "action_dispatched"
    ACTION_COMPLETED = "action_completed"
    ACTION_FAILED = "action_failed"
    ACTION_CANCELLED = "action_cancelled"
    ACTION_RETRIED = "action_retried"
    TIMER_STARTED = "timer_started"
    TIMER_EXPIRED = "timer_expired"
    JOB_SUSPENDED = "job_suspended"


@dataclass(kw_only=True)
class SfcStepEntry(Model):
    """One step, transition, action or timer happening."""

    class Config(Model.Config):
        forbid_extra_keys = True

    kind: SfcStepEventKind = field(metadata={"alias": "Kind"})
    #: Order within the job: the execution version times 1000 plus the position in that change.
    sequence: int = field(metadata={"alias": "Sequence", "minimum": 0})
    #: The step (step and action events).
    step: str | None = field(default=None, metadata={"alias": "Step"})
    #: The step's activation count (1 for its first entry).
    activation: int | None = field(default=None, metadata={"alias": "Activation"})
    #: The action name (action events).
    action: str | None = field(default=None, metadata={"alias": "Action"})
    #: The action run (correlation id of its command: job/step/action/activation).
    action_run: str | None = field(default=None, metadata={"alias": "ActionRun"})
    #: The transition fired, as `Source -> Target`.
    transition: str | None = field(default=None, metadata={"alias": "Transition"})
    #: The timer key (timer events).
    timer: str | None = field(default=None, metadata={"alias": "Timer"})
    #: When a started timer is due (epoch seconds).
    due_at: float | None = field(default=None, metadata={"alias": "DueAt"})
    #: Why an action failed or was cancelled, or why the job was suspended.
    reason: str | None = field(default=None, metadata={"alias": "Reason"})


@dataclass(kw_only=True)
class SfcProgressEvent(Model):
    """Progress of a job's SFC recipe: what one stored change did (steps entered and left,
    transitions fired, actions and timers), on the job's scope events topic.
    """

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.sfc.progress.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/sfc_step_event.schema.json"
    )

    class Config(Model.Config):
        forbid_extra_keys = True

    #: The job whose recipe progressed.
    job_order_id: str = field(metadata={"alias": "JobOrderID"})
    #: The execution version this change stored (orders the events of a job, whichever replica sent
    #: them).
    version: int = field(metadata={"alias": "Version", "minimum": 0})
    #: When it happened in the engine (epoch seconds): the time the work item was evaluated.
    time: float = field(metadata={"alias": "Time"})
    #: The steps active after the change.
    active_steps: list[str] = field(metadata={"alias": "ActiveSteps"})
    #: What happened, in order.
    steps: list[SfcStepEntry] = field(metadata={"alias": "Steps"})
