"""Pure planning of one execution change: Redis operations, and the effects to perform.

Why here and not in the core: which Redis keys change (timers, the index of awaited
correlation ids, the engine's own "command overdue" timers) is the engine's business;
keeping it pure makes it testable without Redis. The effects to perform outside Redis are
serialised and stored with the new state, so a replica that dies before performing them
leaves them for the one that claims its work item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from microdcs.sfc.compiled import CompiledRecipe
from microdcs.sfc.engine.keys import PULL, RESEND, TAG_WATCH, timer_member
from microdcs.sfc.engine.tracecontext import NONE, Carried
from microdcs.sfc.events import (
    Abort,
    ActionCompleted,
    ActionFailed,
    CancelAction,
    CancelTimer,
    DispatchAction,
    Effect,
    Event,
    JobAborted,
    JobCompleted,
    JobStopped,
    JobSuspended,
    Pause,
    Reevaluate,
    Resume,
    ScheduleTimer,
    Start,
    Stop,
    TimerDue,
)
from microdcs.sfc.state import Execution
from microdcs_models.machinery_jobs import ISA95ParameterDataType
from microdcs_models.sfc_recipe import SfcInteraction, SfcQualifier

PUSH = SfcInteraction.PUSH_COMMAND
#: Effects the engine performs outside Redis (everything else is stored by the CAS).
External = DispatchAction | CancelAction | JobCompleted | JobStopped | JobAborted | JobSuspended


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One entry of a scope's work stream."""

    kind: str  # start|done|fail|timer|pause|resume|stop|abort|tags
    job_id: str
    correlation_id: str = ""
    #: Result JSON (done), reason (fail, stop, abort).
    payload: str = ""
    #: Timer member (timer): ``job \\x1f key``.
    timer: str = ""
    #: Trace context of what queued the item (fields ``tp``/``ts``; none for timers).
    trace: Carried = NONE

    def fields(self) -> list[str]:
        out = ["k", self.kind, "j", self.job_id]
        if self.correlation_id:
            out += ["c", self.correlation_id]
        if self.payload:
            out += ["r", self.payload]
        return out + self.trace.fields()

    @classmethod
    def from_fields(cls, raw: Mapping[bytes, bytes]) -> WorkItem:
        def text(name: bytes) -> str:
            value = raw.get(name)
            return value.decode() if value is not None else ""

        kind, member = text(b"k"), text(b"m")
        trace = Carried(text(b"tp"), text(b"ts")) if b"tp" in raw else NONE
        if kind == "timer":
            job_id, _, key = member.partition("\x1f")
            return cls(kind, job_id, timer=key, trace=trace)
        return cls(kind, text(b"j"), text(b"c"), text(b"r"), trace=trace)

    @property
    def is_resend(self) -> bool:
        return self.kind == "timer" and self.timer.startswith(RESEND)

    def event(self) -> Event | None:
        """The core event of this item (``None`` for an unknown kind)."""
        kind = self.kind
        if kind == "start":
            return Start()
        if kind == "done":
            result = orjson.loads(self.payload) if self.payload else {}
            return ActionCompleted(self.correlation_id, result if isinstance(result, dict) else {})
        if kind == "fail":
            return ActionFailed(self.correlation_id, self.payload or "equipment error")
        if kind == "timer":
            return TimerDue(self.timer)
        if kind == "pause":
            return Pause()
        if kind == "resume":
            return Resume()
        if kind == "stop":
            return Stop(self.payload or None)
        if kind == "abort":
            return Abort(self.payload or "aborted by the MES")
        if kind == "tags":
            return Reevaluate()  # a tag an enabled transition reads changed
        return None


@dataclass(slots=True)
class Plan:
    """Arguments of the CAS script beyond the state itself."""

    #: Flat (op, a, b) triples; see ``lua/cas.lua``.
    ops: list[str | float] = field(default_factory=list)
    #: Suffixes of the set keys the ops touch (pull sets, tag watch sets), in KEYS order
    #: (from KEYS[4]).
    sets: list[str] = field(default_factory=list)
    external: list[External] = field(default_factory=list)
    #: Tags the execution starts watching with this change (read again after the CAS: a
    #: change stored before the watch was would otherwise go unnoticed).
    watched: frozenset[str] = frozenset()

    @property
    def pull_types(self) -> list[str]:
        return [s[len(PULL) :] for s in self.sets if s.startswith(PULL)]

    def set_index(self, suffix: str) -> int:
        if suffix not in self.sets:
            self.sets.append(suffix)
        return 4 + self.sets.index(suffix)

    def pull_index(self, event_type: str) -> int:
        return self.set_index(PULL + event_type)


def plan_change(
    recipe: CompiledRecipe,
    old: Execution,
    new: Execution,
    effects: Sequence[Effect],
    *,
    now: float,
    resend_after: float,
) -> Plan:
    """What to store with ``new`` and what to do after, for the change ``old`` -> ``new``."""
    job = new.job_id
    plan = Plan()
    for effect in effects:
        if isinstance(effect, ScheduleTimer):
            plan.ops += ["za", timer_member(job, effect.key), effect.due_at]
        elif isinstance(effect, CancelTimer):
            plan.ops += ["zr", timer_member(job, effect.key), ""]
    before = {r.correlation_id: r for r in old.running}
    after = {r.correlation_id: r for r in new.running}
    for corr, run in after.items():
        if corr in before:
            continue
        action = recipe.action(run.key)
        plan.ops += ["ha", corr, job]
        if action.interaction is PUSH:
            plan.ops += ["za", timer_member(job, RESEND + corr), now + resend_after]
        else:
            plan.ops += ["sa", plan.pull_index(action.type_id), corr]
    for corr, run in before.items():
        if corr in after:
            continue
        action = recipe.action(run.key)
        plan.ops += ["hr", corr, ""]
        if action.interaction is PUSH:
            plan.ops += ["zr", timer_member(job, RESEND + corr), ""]
        else:
            plan.ops += ["sr", plan.pull_index(action.type_id), corr]
    _plan_tag_watches(recipe, old, new, plan)
    for effect in effects:
        if isinstance(effect, DispatchAction) and effect.interaction is PUSH:
            plan.external.append(effect)
        elif isinstance(effect, CancelAction):
            action = recipe.action(f"{effect.step}/{effect.action}")
            if action.interaction is PUSH:
                plan.external.append(effect)
        elif isinstance(effect, JobCompleted | JobStopped | JobAborted | JobSuspended):
            plan.external.append(effect)
    return plan


def _plan_tag_watches(recipe: CompiledRecipe, old: Execution, new: Execution, plan: Plan) -> None:
    """Watch the tags of the enabled transitions, and only those: a tag change then
    queues a re-evaluation of exactly the executions it may let go on."""
    if not recipe.tags:
        return
    before = recipe.watched_tags(old.active) if not old.status.terminal else frozenset()
    after = recipe.watched_tags(new.active) if not new.status.terminal else frozenset()
    for tag in sorted(after - before):
        plan.ops += ["sa", plan.set_index(TAG_WATCH + tag), new.job_id]
    for tag in sorted(before - after):
        plan.ops += ["sr", plan.set_index(TAG_WATCH + tag), new.job_id]
    plan.watched = after - before


# -- serialisation of the external effects (stored with the state, redone on a claim) ------
def encode_effects(effects: Sequence[External]) -> bytes:
    out: list[dict[str, Any]] = []
    for e in effects:
        if isinstance(e, DispatchAction):
            out.append({"t": "dispatch", "step": e.step, "action": e.action,
                        "q": e.qualifier.value, "i": e.interaction.value, "type": e.type_id,
                        "c": e.correlation_id, "p": dict(e.parameters),
                        "to": e.timeout_seconds, "eq": e.equipment})  # fmt: skip
        elif isinstance(e, CancelAction):
            out.append({"t": "cancel", "c": e.correlation_id, "step": e.step,
                        "action": e.action, "reason": e.reason, "eq": e.equipment})  # fmt: skip
        elif isinstance(e, JobCompleted):
            out.append({"t": "completed", "results": _results(e.results)})
        elif isinstance(e, JobStopped):
            out.append({"t": "stopped", "results": _results(e.results), "reason": e.reason})
        elif isinstance(e, JobSuspended):
            out.append({"t": "suspended", "reason": e.reason})
        else:
            out.append({"t": "aborted", "results": _results(e.results), "reason": e.reason})
    return orjson.dumps(out)


def _results(results: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    return [[name, dict(value)] for name, value in results.items()]


def decode_effects(data: bytes, job_id: str) -> list[External]:
    effects: list[External] = []
    for e in orjson.loads(data) if data else []:
        tag = e["t"]
        if tag == "dispatch":
            effects.append(
                DispatchAction(job_id, e["step"], e["action"], SfcQualifier(e["q"]),
                               SfcInteraction(e["i"]), e["type"], e["c"], e["p"], e["to"],
                               e.get("eq"))
            )  # fmt: skip
        elif tag == "cancel":
            effects.append(CancelAction(e["c"], e["step"], e["action"], e["reason"], e.get("eq")))
        elif tag == "suspended":
            effects.append(JobSuspended(e["reason"]))
        else:
            results = {name: value for name, value in e["results"]}
            if tag == "completed":
                effects.append(JobCompleted(results))
            elif tag == "stopped":
                effects.append(JobStopped(results, e["reason"]))
            else:
                effects.append(JobAborted(e["reason"], results))
    return effects


#: JobResponseData parameter holding the execution summary (steps and action outcomes).
SUMMARY_ID = "ExecutionSummary"


def response_data(
    results: Mapping[str, Mapping[str, Any]], history: Sequence[Sequence[Any]] = ()
) -> list[ISA95ParameterDataType]:
    """JobResponseData: one parameter per action (its latest result), in completion order,
    then the execution summary (when there is one)."""
    data = [ISA95ParameterDataType(id=name, value=dict(value)) for name, value in results.items()]
    if history:
        data.append(ISA95ParameterDataType(id=SUMMARY_ID, value=summary(history)))
    return data


def summary(history: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The execution summary as the MES reads it: steps with their enter and leave times,
    actions with their outcome, each in order."""
    steps, actions = [], []
    for entry in history:
        if entry[0] == "step":
            _, step, activation, entered, left = entry
            steps.append({"Step": step, "Activation": activation, "EnteredAt": entered,
                          "LeftAt": left})  # fmt: skip
        else:
            _, name, step, outcome, at = entry
            actions.append({"Action": name, "Step": step, "Outcome": outcome, "At": at})
    return {"Steps": steps, "Actions": actions}
