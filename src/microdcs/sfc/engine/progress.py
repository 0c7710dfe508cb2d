"""Step progress events: what one stored change of an execution did, for the MES.

Pure: derived from the event the engine applied and the effects :func:`evolve` returned,
so they cost no Redis read and no extra write. One change gives one
:class:`SfcProgressEvent` listing its entries in order (steps entered and left,
transitions fired, actions and timers): one message per change instead of one per entry
keeps the broker and every subscriber from paying per entry (see ``bench/bench_sfc.py``).
``Sequence`` (execution version x 1000 + position) orders entries per job across replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

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
from microdcs_models.sfc_step_event import SfcProgressEvent, SfcStepEntry, SfcStepEventKind

K = SfcStepEventKind


def _run_parts(correlation_id: str) -> tuple[str | None, str | None]:
    """Step and action of a run's correlation id (``job/step/action/activation``)."""
    parts = correlation_id.rsplit("/", 3)
    return (parts[1], parts[2]) if len(parts) == 4 else (None, None)


def progress_event(
    event: Event | None, effects: Sequence[Effect], new: Execution, now: float
) -> SfcProgressEvent | None:
    """The progress of one stored change (``event`` applied, ``effects`` produced)."""
    base = new.version * 1000
    out: list[SfcStepEntry] = []

    def add(kind: SfcStepEventKind, **fields: object) -> None:
        out.append(SfcStepEntry(kind=kind, sequence=base + len(out), **fields))  # type: ignore[arg-type]

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
    if not out:
        return None
    return SfcProgressEvent(job_order_id=new.job_id, version=new.version, time=now,
                            active_steps=list(new.active), steps=out)  # fmt: skip


def retried(execution: Execution, correlation_id: str, now: float) -> SfcProgressEvent:
    """A command sent again because its answer is overdue (no change is stored)."""
    step, action = _run_parts(correlation_id)
    entry = SfcStepEntry(kind=K.ACTION_RETRIED, sequence=execution.version * 1000 + 999,
                         step=step, action=action, action_run=correlation_id)  # fmt: skip
    return SfcProgressEvent(job_order_id=execution.job_id, version=execution.version, time=now,
                            active_steps=list(execution.active), steps=[entry])  # fmt: skip


@dataclass(frozen=True, slots=True)
class StepState:
    """A job's active steps and since when: its retained ``steps/{job}`` state.

    Published when a change entered or left a step (not for every action or timer), so
    an MES that connects late reads which steps run without replaying events.
    """

    job_id: str
    version: int
    #: (step, time it was entered) for each active step, in activation order.
    active: tuple[tuple[str, float | None], ...]
    time: float

    def payload(self) -> bytes:
        steps = [{"Step": step, "Since": since} for step, since in self.active]
        return orjson.dumps({"JobOrderID": self.job_id, "Version": self.version,
                             "Time": self.time, "ActiveSteps": steps})  # fmt: skip


_STEP_KINDS = (K.STEP_ENTERED, K.STEP_EXITED)


def step_state(event: SfcProgressEvent | None, execution: Execution) -> StepState | None:
    """The job's step state after a change whose progress is ``event``; ``None`` when the
    change entered and left no step (the retained state stays as it is)."""
    if event is None or not any(entry.kind in _STEP_KINDS for entry in event.steps):
        return None
    since: dict[str, float | None] = {}
    for entry in reversed(execution.history):  # the open activation of each active step
        if entry[0] == "step" and entry[4] is None and entry[1] not in since:
            since[entry[1]] = entry[3]
    active = tuple((step, since.get(step)) for step in execution.active)
    return StepState(execution.job_id, execution.version, active, event.time)
