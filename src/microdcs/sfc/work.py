"""The mutable scratch copy of an execution inside one :func:`evolve` call.

Why mutable: one event can fire many transitions and start many actions; copying the
frozen :class:`Execution` at each small change would be wasteful. The scratch copy is
created per call, never shared, and frozen again at the end. This module holds the
step and action rules (what entering or leaving a step does for each qualifier, what a
due timer does); :mod:`microdcs.sfc.evolution` decides *when* they apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from microdcs.plantdata.contract import TagSample
from microdcs.sfc.compiled import CompiledAction, CompiledRecipe
from microdcs.sfc.events import (
    CancelAction,
    CancelTimer,
    DispatchAction,
    Effect,
    JobAborted,
    ScheduleTimer,
    StepEntered,
    StepExited,
)
from microdcs.sfc.state import (
    ActionRun,
    Execution,
    ExecutionStatus,
    RunStatus,
    Timer,
    TimerKind,
)
from microdcs_models.sfc_recipe import SfcQualifier

Q = SfcQualifier
FINISHED = (RunStatus.COMPLETED, RunStatus.LIMITED)
#: Entries of the execution summary kept (the oldest go first): bounds a looping recipe.
MAX_HISTORY = 500


def dispatch_effect(action: CompiledAction, run: ActionRun, job_id: str) -> DispatchAction:
    return DispatchAction(
        job_id=job_id,
        step=action.step,
        action=action.name,
        qualifier=action.qualifier,
        interaction=action.interaction,
        type_id=action.type_id,
        correlation_id=run.correlation_id,
        parameters=action.parameters,
        timeout_seconds=action.timeout_seconds or None,
        equipment=action.equipment,
    )


class Work:
    """Scratch copy of an :class:`Execution` plus the effects produced so far."""

    def __init__(
        self,
        recipe: CompiledRecipe,
        execution: Execution,
        now: float,
        tags: Mapping[str, TagSample] | None = None,
    ) -> None:
        self.recipe = recipe
        self.base = execution
        self.now = now
        #: The tag values conditions see in this call (read by the engine beforehand).
        self.tags: Mapping[str, TagSample] = tags or {}
        self.status = execution.status
        self.active = list(execution.active)
        self.activations = dict(execution.activations)
        self.runs = dict(execution.runs)
        self.timers = dict(execution.timers)
        self.results = {name: dict(value) for name, value in execution.results.items()}
        self.started_at = execution.started_at
        self.ended_at = execution.ended_at
        self.paused_at = execution.paused_at
        self.reason = execution.reason
        self.history = list(execution.history)
        self.effects: list[Effect] = []

    def freeze(self) -> Execution:
        return replace(
            self.base,
            status=self.status,
            version=self.base.version + 1,
            active=tuple(self.active),
            activations=self.activations,
            runs=self.runs,
            timers=self.timers,
            results=self.results,
            started_at=self.started_at,
            ended_at=self.ended_at,
            paused_at=self.paused_at,
            reason=self.reason,
            history=tuple(self.history[-MAX_HISTORY:]),
        )

    # -- timers -------------------------------------------------------------------------
    def schedule(self, kind: TimerKind, run: ActionRun, seconds: float) -> None:
        key = f"{kind.value}:{run.correlation_id}"
        self.timers[key] = Timer(key, kind, run.key, self.now + seconds)
        self.effects.append(ScheduleTimer(key, self.now + seconds))

    def cancel_timers(self, run: ActionRun) -> None:
        for kind in TimerKind:
            key = f"{kind.value}:{run.correlation_id}"
            if self.timers.pop(key, None) is not None:
                self.effects.append(CancelTimer(key))

    # -- runs ---------------------------------------------------------------------------
    def new_run(self, action: CompiledAction, status: RunStatus, stored: bool) -> ActionRun:
        activation = self.activations.get(action.step, 0)
        run = ActionRun(
            key=action.key,
            name=action.name,
            step=action.step,
            activation=activation,
            status=status,
            correlation_id=f"{self.base.job_id}/{action.step}/{action.name}/{activation}",
            stored=stored,
        )
        self.runs[run.key] = run
        return run

    def dispatch(self, action: CompiledAction, run: ActionRun, stored: bool) -> None:
        run = replace(run, status=RunStatus.RUNNING, dispatched_at=self.now, stored=stored)
        self.runs[run.key] = run
        self.effects.append(dispatch_effect(action, run, self.base.job_id))
        if action.timeout_seconds:
            self.schedule(TimerKind.TIMEOUT, run, action.timeout_seconds)
        if action.qualifier in (Q.L, Q.SL):
            self.schedule(TimerKind.LIMIT, run, action.time or 0.0)

    def _cancel(self, run: ActionRun, reason: str) -> CancelAction:
        """The cancel of a run, addressed to the equipment its action names."""
        equipment = self.recipe.action(run.key).equipment
        return CancelAction(run.correlation_id, run.step, run.name, reason, equipment)

    def drop(self, run: ActionRun, reason: str) -> None:
        """Forget a run; cancel it at the equipment if it still runs."""
        if run.status is RunStatus.RUNNING:
            self.effects.append(self._cancel(run, reason))
            self.outcome(run, "cancelled")
        self.cancel_timers(run)
        del self.runs[run.key]

    def reset(self, name: str) -> None:
        """R: reset every stored run of the action ``name``."""
        for run in [r for r in self.runs.values() if r.stored and r.name == name]:
            self.drop(run, "reset")

    # -- steps --------------------------------------------------------------------------
    def enter(self, step: str) -> None:
        """Activate ``step`` and start its actions according to their qualifiers."""
        activation = self.activations.get(step, 0) + 1
        self.activations[step] = activation
        self.active.append(step)
        self.effects.append(StepEntered(step, activation))
        self.history.append(("step", step, activation, self.now, None))
        for action in self.recipe.actions[step]:
            q = action.qualifier
            if q is Q.R:
                self.reset(action.name)
                continue
            if q is Q.P0:
                continue
            old = self.runs.get(action.key)
            if old is not None and old.stored:
                continue  # still set from an earlier activation: setting again is a no-op
            if old is not None:
                self.drop(old, "superseded")
            # A re-run forgets the last result, so a loop condition sees the new run's.
            self.results.pop(action.name, None)
            if q in (Q.D, Q.DS, Q.SD):
                run = self.new_run(action, RunStatus.WAITING, stored=q is Q.SD)
                self.schedule(TimerKind.DELAY, run, action.time or 0.0)
            else:
                run = self.new_run(action, RunStatus.WAITING, stored=False)
                self.dispatch(action, run, stored=action.stored)

    def exit(self, step: str) -> None:
        """Deactivate ``step``: stop what is bound to it, start its P0 actions."""
        self.active.remove(step)
        self.effects.append(StepExited(step, self.activations[step]))
        self.left(step)
        for action in self.recipe.actions[step]:
            run = self.runs.get(action.key)
            if action.qualifier is Q.P0:
                if run is not None:
                    self.drop(run, "superseded")
                self.dispatch(action, self.new_run(action, RunStatus.WAITING, False), False)
                continue
            if run is None or (run.stored and run.status is not RunStatus.FAILED):
                continue
            pulse = action.qualifier in (Q.P, Q.P1) and run.status is RunStatus.RUNNING
            if not pulse:
                self.drop(run, f"step {step} ended")

    def left(self, step: str) -> None:
        """Record the leave time on the summary entry of the step's current activation."""
        for index in range(len(self.history) - 1, -1, -1):
            entry = self.history[index]
            if entry[0] == "step" and entry[1] == step and entry[4] is None:
                self.history[index] = (*entry[:4], self.now)
                return

    def outcome(self, run: ActionRun, outcome: str) -> None:
        self.history.append(("action", run.name, run.step, outcome, self.now))

    def step_done(self, step: str) -> bool:
        """``done``: every awaited action of the step has completed (or hit its limit).

        A stored action reset by an R (in a parallel path, say) has no run any more and
        counts as finished: nothing of it is left to wait for.
        """
        for action in self.recipe.actions[step]:
            if action.awaited:
                run = self.runs.get(action.key)
                if run is None and action.stored:
                    continue
                if run is None or run.status not in FINISHED:
                    return False
        return True

    def step_failed(self, step: str) -> bool:
        return any(
            (run := self.runs.get(a.key)) is not None and run.status is RunStatus.FAILED
            for a in self.recipe.actions[step]
        )

    # -- events on runs -----------------------------------------------------------------
    def complete(self, run: ActionRun, result: dict[str, Any]) -> None:
        self.results.pop(run.name, None)
        self.results[run.name] = result
        self.outcome(run, "completed")
        self.cancel_timers(run)
        if run.stored or run.step in self.active:
            self.runs[run.key] = replace(run, status=RunStatus.COMPLETED)
        else:
            del self.runs[run.key]  # a pulse that outlived its step

    def fail(self, run: ActionRun, reason: str) -> None:
        """Record a failure; abort unless a transition out of the active step handles it."""
        self.cancel_timers(run)
        self.outcome(run, "failed")
        action = self.recipe.action(run.key)
        if action.failure_handled and run.step in self.active:
            self.runs[run.key] = replace(run, status=RunStatus.FAILED, reason=reason)
            return
        del self.runs[run.key]
        self.abort(f"action {run.name} of step {run.step} failed: {reason}")

    def timer_due(self, timer: Timer) -> None:
        del self.timers[timer.key]
        run = self.runs[timer.run]
        action = self.recipe.action(run.key)
        if timer.kind is TimerKind.DELAY:
            self.dispatch(action, run, stored=action.stored)
        elif timer.kind is TimerKind.LIMIT:
            self.effects.append(self._cancel(run, "time limit reached"))
            self.cancel_timers(run)
            self.outcome(run, "limited")
            self.runs[run.key] = replace(run, status=RunStatus.LIMITED)
        else:
            seconds = action.timeout_seconds
            self.effects.append(self._cancel(run, "timed out"))
            self.fail(run, f"no response within {seconds:g} s")

    # -- the end ------------------------------------------------------------------------
    def finish(self, status: ExecutionStatus, reason: str | None) -> None:
        """Cancel everything still pending and enter a terminal status."""
        for run in list(self.runs.values()):
            if run.status is RunStatus.RUNNING:
                self.effects.append(self._cancel(run, f"job {status.value}"))
                self.outcome(run, "cancelled")
        for key in self.timers:
            self.effects.append(CancelTimer(key))
        for step in list(self.active):
            self.active.remove(step)
            self.effects.append(StepExited(step, self.activations[step]))
            self.left(step)
        self.runs = {k: r for k, r in self.runs.items() if r.status in FINISHED}
        self.timers = {}
        self.status = status
        self.reason = reason
        self.ended_at = self.now
        self.paused_at = None

    def abort(self, reason: str) -> None:
        if self.status.terminal:
            return
        self.finish(ExecutionStatus.ABORTED, reason)
        self.effects.append(JobAborted(reason, self.results))
