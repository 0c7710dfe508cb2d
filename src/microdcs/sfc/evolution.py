"""SFC evolution: ``evolve(recipe, execution, event, now) -> (execution, effects)``.

Pure: no I/O, no clock (``now`` is a parameter), no randomness. The engine loads the
execution, calls :func:`evolve`, stores the result with a compare-and-swap on
``version``, then performs the effects. An event that changes nothing returns the same
execution object (same ``version``) and one :class:`EventIgnored` effect.

Semantics (details and rationale in ``docs/sfc.md``):

- Evaluation runs in rounds until nothing more fires (rule 5: a step without awaited
  actions is passed through in the same call). In a round, arcs are tried in firing
  order (priority, then declaration); an arc fires when all its source steps are active,
  none was taken by an earlier arc of the round, and its condition holds. Then all fired
  arcs leave their sources and enter their targets.
- A step with no arc out is final: once ``done`` it is left. The recipe completes when no
  step is active and no action runs or waits for its delay.
- More than ``max_firings`` firings in one call is a zero-time loop: the job aborts.
- A failed action aborts the job at once unless its step is active and has an arc whose
  condition mentions ``failed.<action>`` or bare ``failed``; then that arc may fire.
- Paused: nothing fires, nothing starts, timers are frozen (resume shifts them by the
  pause); responses and failures are still recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from microdcs.plantdata.contract import TagSample
from microdcs.sfc.compiled import CompiledRecipe
from microdcs.sfc.conditions import ConditionContext
from microdcs.sfc.errors import PredicateError
from microdcs.sfc.events import (
    Abort,
    ActionCompleted,
    ActionFailed,
    CancelTimer,
    Effect,
    Event,
    EventIgnored,
    JobCompleted,
    JobStopped,
    JobSuspended,
    Pause,
    Reevaluate,
    Resume,
    ScheduleTimer,
    Start,
    StepEntered,
    Stop,
    TimerDue,
    TransitionFired,
)
from microdcs.sfc.graph import Arc
from microdcs.sfc.state import Execution, ExecutionStatus, RunStatus, Timer, TimerKind
from microdcs.sfc.work import Work, dispatch_effect

#: Transition firings allowed in one call before the run counts as a zero-time loop.
MAX_FIRINGS = 1000
S = ExecutionStatus


def new_execution(job_id: str, parameters: Mapping[str, Any] | None = None) -> Execution:
    """A not yet started execution; send it :class:`Start` to activate the initial step."""
    return Execution(job_id=job_id, parameters=dict(parameters or {}))


def evolve(
    recipe: CompiledRecipe,
    execution: Execution,
    event: Event,
    now: float,
    *,
    max_firings: int = MAX_FIRINGS,
    tags: Mapping[str, TagSample] | None = None,
) -> tuple[Execution, list[Effect]]:
    """The next execution and the effects to perform, for one event at time ``now``.

    ``tags`` holds the current values of the tags the recipe's conditions read
    (``recipe.tags``), read by the caller just before: evolution never reads them itself.
    """
    if execution.status.terminal:
        return _ignored(execution, f"execution already {execution.status.value}")
    work = Work(recipe, execution, now, tags)
    reason = _apply(work, event)
    if reason is not None:
        return _ignored(execution, reason)
    if work.status is S.RUNNING:
        _settle(work, max_firings)
        if work.status is S.RUNNING:
            _arm_stall_timers(work)
    if isinstance(event, Reevaluate) and not work.effects:
        # Nothing fired: no new version, so a burst of tag changes stores nothing.
        return _ignored(execution, "no condition changed its outcome")
    return work.freeze(), _compact(work.effects)


def _ignored(execution: Execution, reason: str) -> tuple[Execution, list[Effect]]:
    return execution, [EventIgnored(reason)]


def _apply(work: Work, event: Event) -> str | None:
    """Apply the event itself; return why it is ignored, or ``None``."""
    status = work.status
    if isinstance(event, Start):
        if status is not S.READY:
            return f"cannot start a {status.value} execution"
        work.status, work.started_at = S.RUNNING, work.now
        work.enter(work.recipe.initial)
    elif isinstance(event, ActionCompleted | ActionFailed):
        run = work.base.run_by_correlation(event.correlation_id)
        if run is None or run.status is not RunStatus.RUNNING:
            return f"no running action with correlation id {event.correlation_id}"
        if isinstance(event, ActionCompleted):
            work.complete(run, dict(event.result or {}))
        else:
            work.fail(run, event.reason)
    elif isinstance(event, TimerDue):
        timer = work.timers.get(event.key)
        if timer is None:
            return f"no pending timer {event.key}"
        if timer.due_at is None:
            return f"timer {event.key} is frozen while paused"
        if work.now < timer.due_at:
            return f"timer {event.key} is not due before {timer.due_at}"
        if timer.kind in (TimerKind.WATCHDOG, TimerKind.TRANSITION):
            del work.timers[timer.key]
            _stalled(work, timer)
        else:
            work.timer_due(timer)
    elif isinstance(event, Pause):
        if status is not S.RUNNING:
            return f"cannot pause a {status.value} execution"
        _pause(work)
    elif isinstance(event, Resume):
        if status is not S.PAUSED:
            return f"cannot resume a {status.value} execution"
        _resume(work)
    elif isinstance(event, Stop):
        if status not in (S.RUNNING, S.PAUSED):
            return f"cannot stop a {status.value} execution"
        work.finish(S.STOPPED, event.reason)
        work.effects.append(JobStopped(work.results, event.reason))
    elif isinstance(event, Abort):
        work.abort(event.reason)
    elif isinstance(event, Reevaluate) and status is not S.RUNNING:
        return f"nothing to evaluate in a {status.value} execution"
    return None


def _pause(work: Work) -> None:
    work.status, work.paused_at = S.PAUSED, work.now
    for key, timer in work.timers.items():
        remaining = max(0.0, (timer.due_at or work.now) - work.now)
        work.timers[key] = Timer(timer.key, timer.kind, timer.run, None, remaining)
        work.effects.append(CancelTimer(key))


def _suspend(work: Work, reason: str) -> None:
    """Paused by the chart itself: the job waits for the MES (Resume) in Suspended."""
    _pause(work)
    work.effects.append(JobSuspended(reason))


# -- no silent stalls: transition timeouts and the watchdog --------------------------------
WATCHDOG = "watchdog"


def _waiting(work: Work) -> list[str]:
    """Active steps whose actions are done and that wait on a transition condition."""
    return [s for s in work.active if work.recipe.outgoing[s] and work.step_done(s)]


def _signature(work: Work, arc: Arc) -> str:
    """The activations of an arc's sources: a timer of an earlier activation is stale."""
    return ",".join(f"{s}:{work.activations.get(s, 0)}" for s in arc.sources)


def _arm_stall_timers(work: Work) -> None:
    """Start (or cancel) transition timeouts and the watchdog after an evaluation.

    A transition's timer runs from the moment all its sources are active (a new
    activation restarts it). The watchdog runs while some step waits on conditions and
    restarts whenever a step is entered (the chart made progress).
    """
    recipe = work.recipe
    active = set(work.active)
    for index, arc in recipe.timed_arcs:
        key = f"{TimerKind.TRANSITION.value}:{index}"
        timer = work.timers.get(key)
        if active.issuperset(arc.sources):
            signature = _signature(work, arc)
            if timer is None or timer.run != signature:
                due_at = work.now + (arc.timeout or 0.0)
                work.timers[key] = Timer(key, TimerKind.TRANSITION, signature, due_at)
                work.effects.append(ScheduleTimer(key, due_at))
        elif timer is not None:
            del work.timers[key]
            work.effects.append(CancelTimer(key))
    if recipe.watchdog is None:
        return
    timer = work.timers.get(WATCHDOG)
    if _waiting(work):
        if timer is None or any(isinstance(e, StepEntered) for e in work.effects):
            due_at = work.now + recipe.watchdog
            work.timers[WATCHDOG] = Timer(WATCHDOG, TimerKind.WATCHDOG, "", due_at)
            work.effects.append(ScheduleTimer(WATCHDOG, due_at))
    elif timer is not None:
        del work.timers[WATCHDOG]
        work.effects.append(CancelTimer(WATCHDOG))


def _stalled(work: Work, timer: Timer) -> None:
    """A watchdog or transition timeout is due (its timer is already removed)."""
    recipe = work.recipe
    if timer.kind is TimerKind.WATCHDOG:
        if not _waiting(work):
            return
        steps = ", ".join(_waiting(work))
        seconds = recipe.watchdog or 0.0
        _suspend(work, f"watchdog: no transition fired for {seconds:g} s (waiting: {steps})")
        return
    arc = recipe.arcs[int(timer.key.partition(":")[2])]
    if not set(work.active).issuperset(arc.sources) or timer.run != _signature(work, arc):
        return  # stale: its sources were left since (re-armed after the evaluation)
    reason = f"transition {arc.label} did not fire within {arc.timeout or 0.0:g} s"
    if arc.on_timeout == "abort":
        work.abort(reason)
    elif arc.on_timeout == "suspend":
        _suspend(work, reason)
    else:
        work.effects.append(TransitionFired(f"{arc.label} (timeout) -> {arc.on_timeout}"))
        for step in arc.sources:
            work.exit(step)
        work.enter(arc.on_timeout)


def _resume(work: Work) -> None:
    work.status, work.paused_at = S.RUNNING, None
    for key, timer in work.timers.items():
        due_at = work.now + (timer.remaining or 0.0)
        work.timers[key] = Timer(timer.key, timer.kind, timer.run, due_at)
        work.effects.append(ScheduleTimer(key, due_at))


def _settle(work: Work, max_firings: int) -> None:
    """Fire transitions round after round until the chart is stable (or it ends)."""
    fired = 0
    while work.status is S.RUNNING:
        try:
            chosen = _round(work)
        except PredicateError as exc:
            work.abort(str(exc))
            return
        if not chosen:
            finals = [s for s in work.active if work.recipe.is_final(s) and work.step_done(s)]
            for step in finals:
                work.exit(step)
            if finals:
                continue
            if not work.active and not any(
                r.status in (RunStatus.RUNNING, RunStatus.WAITING) for r in work.runs.values()
            ):
                work.finish(S.COMPLETED, None)
                work.effects.append(JobCompleted(work.results))
            return
        fired += len(chosen)
        if fired > max_firings:
            work.abort(
                f"zero-time loop: more than {max_firings} transitions fired in one evaluation "
                f"(last: {', '.join(arc.label for arc in chosen)})"
            )
            return
        for arc in chosen:
            work.effects.append(TransitionFired(arc.label))
            for step in arc.sources:
                work.exit(step)
        for arc in chosen:
            for step in arc.targets:
                work.enter(step)


def _round(work: Work) -> list[Arc]:
    """Arcs that fire now: enabled, condition true, first to claim their sources."""
    active = set(work.active)
    taken: set[str] = set()
    chosen: list[Arc] = []
    candidates = {id(arc): arc for step in work.active for arc in work.recipe.outgoing[step]}
    failed = frozenset(r.name for r in work.runs.values() if r.status is RunStatus.FAILED)
    for arc in sorted(candidates.values(), key=lambda a: a.order):
        if not active.issuperset(arc.sources):
            continue
        if taken.intersection(arc.sources):
            continue
        ctx = ConditionContext(
            results=work.results,
            parameters=work.base.parameters,
            failed=failed,
            done=all(work.step_done(s) for s in arc.sources),
            step_failed=any(work.step_failed(s) for s in arc.sources),
            steps=arc.sources,
            tags=work.tags,
        )
        if arc.condition.evaluate(ctx, work.recipe.predicates):
            chosen.append(arc)
            taken.update(arc.sources)
    return chosen


def _compact(effects: list[Effect]) -> list[Effect]:
    """Drop timers scheduled and cancelled within the same call: the engine never sees them."""
    scheduled = {e.key for e in effects if isinstance(e, ScheduleTimer)}
    both = {e.key for e in effects if isinstance(e, CancelTimer) and e.key in scheduled}
    if not both:
        return effects
    out: list[Effect] = []
    for effect in effects:
        if isinstance(effect, ScheduleTimer | CancelTimer) and effect.key in both:
            continue
        out.append(effect)
    return out


def replay_effects(recipe: CompiledRecipe, execution: Execution) -> list[Effect]:
    """Effects that bring the outside world in line with a stored execution.

    For an engine that crashed between storing a state and performing its effects: every
    running action is dispatched again (equipment deduplicates by correlation id) and
    every pending timer scheduled again. Idempotent by construction.
    """
    effects: list[Effect] = []
    if execution.status.terminal:
        return effects
    for run in execution.running:
        effects.append(dispatch_effect(recipe.action(run.key), run, execution.job_id))
    for timer in execution.timers.values():
        if timer.due_at is not None:
            effects.append(ScheduleTimer(timer.key, timer.due_at))
    return effects
