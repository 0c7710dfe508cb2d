"""Step progress events: what one change of an execution looked like, for the MES.

Pure: derived from the event the engine applied and the effects :func:`evolve` returned,
so they cost no Redis read and no extra write; the engine hands them to its
:class:`~microdcs.sfc.engine.ports.ProgressSink` after the CAS stored the change.
``Sequence`` (execution version x 1000 + position) orders them per job across replicas.
"""

from __future__ import annotations

from collections.abc import Sequence

from microdcs.sfc.events import (
    ActionCompleted,
    ActionFailed,
    CancelAction,
    DispatchAction,
    Effect,
    Event,
    JobSuspended,
    ScheduleTimer,
    StepEntered,
    StepExited,
    TimerDue,
    TransitionFired,
)
from microdcs.sfc.state import Execution
from microdcs_models.sfc_step_event import SfcStepEvent, SfcStepEventKind

K = SfcStepEventKind


def _run_parts(correlation_id: str) -> tuple[str | None, str | None]:
    """Step and action of a run's correlation id (``job/step/action/activation``)."""
    parts = correlation_id.rsplit("/", 3)
    return (parts[1], parts[2]) if len(parts) == 4 else (None, None)


def progress_events(
    event: Event | None, effects: Sequence[Effect], new: Execution, now: float
) -> list[SfcStepEvent]:
    """The progress events of one stored change (``event`` applied, ``effects`` produced)."""
    job, active, base = new.job_id, list(new.active), new.version * 1000
    out: list[SfcStepEvent] = []

    def add(kind: SfcStepEventKind, **fields: object) -> None:
        out.append(SfcStepEvent(job_order_id=job, kind=kind, time=now,
                                sequence=base + len(out), active_steps=active,
                                **fields))  # type: ignore[arg-type]  # fmt: skip

    if isinstance(event, ActionCompleted | ActionFailed):
        step, action = _run_parts(event.correlation_id)
        if isinstance(event, ActionCompleted):
            add(K.ACTION_COMPLETED, step=step, action=action, action_run=event.correlation_id)
        else:
            add(K.ACTION_FAILED, step=step, action=action, action_run=event.correlation_id,
                reason=event.reason)  # fmt: skip
    elif isinstance(event, TimerDue):
        add(K.TIMER_EXPIRED, timer=event.key)
    for e in effects:
        if isinstance(e, StepEntered):
            add(K.STEP_ENTERED, step=e.step, activation=e.activation)
        elif isinstance(e, StepExited):
            add(K.STEP_EXITED, step=e.step, activation=e.activation)
        elif isinstance(e, TransitionFired):
            add(K.TRANSITION_FIRED, transition=e.label)
        elif isinstance(e, DispatchAction):
            add(K.ACTION_DISPATCHED, step=e.step, action=e.action, action_run=e.correlation_id)
        elif isinstance(e, CancelAction):
            add(K.ACTION_CANCELLED, step=e.step, action=e.action, action_run=e.correlation_id,
                reason=e.reason)  # fmt: skip
        elif isinstance(e, ScheduleTimer):
            add(K.TIMER_STARTED, timer=e.key, due_at=e.due_at)
        elif isinstance(e, JobSuspended):
            add(K.JOB_SUSPENDED, reason=e.reason)
    return out


def retried(job_id: str, correlation_id: str, active: Sequence[str], version: int,
            now: float) -> SfcStepEvent:  # fmt: skip
    """A command sent again because its answer is overdue."""
    step, action = _run_parts(correlation_id)
    return SfcStepEvent(job_order_id=job_id, kind=K.ACTION_RETRIED, time=now,
                        sequence=version * 1000 + 999, step=step, action=action,
                        action_run=correlation_id, active_steps=list(active))  # fmt: skip
