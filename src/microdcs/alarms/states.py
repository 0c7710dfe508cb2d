"""The ISA-18.2 alarm state machine as pure functions over a frozen record.

Three inputs move an alarm: a sample of its tag (:func:`evaluate`), a due timer
(:func:`timer_expired`) and an operator action (:func:`apply_action`). Each returns a
:class:`Transition` that carries the next record (its ``version`` one higher, for the
store's compare-and-swap), the journal event, the timers to set or cancel and whether an
alarm event is due, or ``None`` when nothing changes, which is the common case for samples
and costs a few comparisons. Nothing here reads a clock or does I/O: ``now`` is an argument,
so the runtime can replay a transition after a lost compare-and-swap.

Conditions and states are kept apart. ``record.condition`` is the alarm condition after the
on-delay and off-delay; the state says what the operator sees. While shelved, suppressed or
out of service the condition is still tracked (journaled, not annunciated), so leaving those
states lands in Unacknowledged if it is true, else in Normal (or Latched).

Quality: a sample of bad quality never raises an alarm and never clears one; it keeps the
state and cancels a pending on-delay (the excursion was not confirmed by good data).
Uncertain quality is evaluated like good quality.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from microdcs.alarms.contract import AlarmAction, AlarmState
from microdcs.alarms.definitions import AlarmDefinition
from microdcs.alarms.evaluation import condition, measured
from microdcs.plantdata.contract import Quality, TagValue

__all__ = [
    "ACTION_SOURCES",
    "CLEARED",
    "INVALID_REQUEST",
    "NOT_ALLOWED",
    "RAISED",
    "SHELVE_EXPIRED",
    "STATE_ATTRIBUTES",
    "ActionRefused",
    "AlarmRecord",
    "StateAttributes",
    "TimerKind",
    "TimerRequest",
    "Transition",
    "apply_action",
    "evaluate",
    "timer_expired",
]

A, B, C, D = (
    AlarmState.NORMAL,
    AlarmState.UNACKNOWLEDGED,
    AlarmState.ACKNOWLEDGED,
    AlarmState.RETURNED_UNACKNOWLEDGED,
)
E, F, G, H = (
    AlarmState.LATCHED,
    AlarmState.SHELVED,
    AlarmState.SUPPRESSED_BY_DESIGN,
    AlarmState.OUT_OF_SERVICE,
)

#: Journal event names of the transitions a sample or timer causes (actions journal under
#: their :class:`AlarmAction` value: ``acknowledge``, ``shelve``, ...).
RAISED = "raised"
CLEARED = "cleared"
SHELVE_EXPIRED = "shelve_expired"
#: :attr:`ActionRefused.error` values (the ``error`` of an ``ActionOutcome``).
NOT_ALLOWED = "not_allowed"
INVALID_REQUEST = "invalid_request"


class TimerKind(StrEnum):
    """The durable timers an alarm may have pending (at most one of each)."""

    ON_DELAY = "on_delay"
    OFF_DELAY = "off_delay"
    SHELVE_EXPIRY = "shelve_expiry"


@dataclass(frozen=True, slots=True)
class TimerRequest:
    """Set (or move) the alarm's timer of ``kind`` to fire at ``at`` (Unix seconds)."""

    kind: TimerKind
    at: float


@dataclass(frozen=True, slots=True)
class StateAttributes:
    """What ISA-18.2 says of a state: the process condition, whether the alarm is shown
    to the operator and whether it is acknowledged (``None``: either, or not applicable)."""

    condition: bool | None
    annunciated: bool
    acknowledged: bool | None


#: The attributes per state, as the table of ISA-18.2's alarm state model gives them.
STATE_ATTRIBUTES: dict[AlarmState, StateAttributes] = {
    A: StateAttributes(condition=False, annunciated=False, acknowledged=True),
    B: StateAttributes(condition=True, annunciated=True, acknowledged=False),
    C: StateAttributes(condition=True, annunciated=True, acknowledged=True),
    D: StateAttributes(condition=False, annunciated=True, acknowledged=False),
    # Cleared but held for the operator: a reset (not an acknowledgement) releases it.
    E: StateAttributes(condition=False, annunciated=True, acknowledged=None),
    F: StateAttributes(condition=None, annunciated=False, acknowledged=None),
    G: StateAttributes(condition=None, annunciated=False, acknowledged=None),
    H: StateAttributes(condition=None, annunciated=False, acknowledged=None),
}

#: The states each operator action is allowed from.
ACTION_SOURCES: dict[AlarmAction, frozenset[AlarmState]] = {
    AlarmAction.ACKNOWLEDGE: frozenset({B, D}),
    # Shelving a shelved alarm moves its expiry.
    AlarmAction.SHELVE: frozenset({A, B, C, D, E, F}),
    AlarmAction.UNSHELVE: frozenset({F}),
    AlarmAction.SUPPRESS: frozenset({A, B, C, D, E, F}),
    AlarmAction.UNSUPPRESS: frozenset({G}),
    AlarmAction.REMOVE_FROM_SERVICE: frozenset({A, B, C, D, E, F, G}),
    AlarmAction.RETURN_TO_SERVICE: frozenset({H}),
    AlarmAction.RESET: frozenset({E}),
}
#: States whose condition changes are tracked but not annunciated.
_HIDDEN = frozenset({F, G, H})


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """The stored state of one alarm; replaced, never changed, by each transition."""

    state: AlarmState = AlarmState.NORMAL
    #: The alarm condition after on-delay and off-delay.
    condition: bool = False
    #: A running on-delay (condition still False) or off-delay (condition still True).
    pending: TimerKind | None = None
    #: When the pending delay ends (Unix seconds).
    pending_until: float | None = None
    shelved_until: float | None = None
    #: A latching alarm went active and has not been reset since.
    latched: bool = False
    #: When the condition last became true (Unix seconds).
    active_since: float | None = None
    #: When the state last changed (Unix seconds).
    changed_at: float = 0.0
    #: The sample value of the last stored change.
    value: TagValue | None = None
    operator: str | None = None
    comment: str | None = None
    #: Incremented by every stored change: the compare-and-swap token.
    version: int = 0


@dataclass(frozen=True, slots=True)
class Transition:
    """What one input does to an alarm."""

    #: The next record (the input record when ``store`` is False).
    record: AlarmRecord
    previous: AlarmState
    #: Journal event name (``raised``, ``cleared``, ``shelve_expired`` or the action);
    #: ``None`` when only a delay started or stopped, which is not journaled.
    event: str | None
    #: Whether an alarm event is published (the state changed, or an operator acted).
    emit: bool
    set_timers: tuple[TimerRequest, ...] = ()
    cancel_timers: tuple[TimerKind, ...] = ()
    #: False only when a timer fired early and is set again: nothing to store.
    store: bool = True


@dataclass(frozen=True, slots=True)
class ActionRefused:
    """An operator action that was not applied, and why (nothing is stored)."""

    action: AlarmAction
    state: AlarmState
    #: :data:`NOT_ALLOWED` (not from this state) or :data:`INVALID_REQUEST`.
    error: str
    reason: str


# -- samples ---------------------------------------------------------------------------
def evaluate(
    definition: AlarmDefinition,
    record: AlarmRecord,
    value: TagValue | None,
    quality: Quality,
    now: float,
    *,
    sample_time: float | None = None,
    previous_value: TagValue | None = None,
    previous_time: float | None = None,
) -> Transition | None:
    """What a sample does to the alarm; ``None`` when nothing changes.

    ``sample_time`` (default ``now``) and the previous sample of the tag feed
    rate-of-change alarms; other kinds ignore them. A pending delay whose end has passed
    completes here, without waiting for its timer.
    """
    pending = record.pending
    if quality is Quality.BAD:
        if pending is TimerKind.ON_DELAY:
            return _stop_pending(record, value, now)
        return None
    # The condition before delays: the effective one, flipped while a delay runs.
    raw_before = record.condition is (pending is None)
    time = now if sample_time is None else sample_time
    subject = measured(definition, value, time, previous_value, previous_time)
    raw = condition(definition, subject, raw_before)
    if raw is None or raw is raw_before:
        if pending is not None and now >= (record.pending_until or 0.0):
            due = replace(record, value=value)
            return _condition_changed(definition, due, pending is TimerKind.ON_DELAY, now)
        return None
    if pending is not None:  # back where the effective condition is: the delay stops
        return _stop_pending(record, value, now)
    delay = definition.on_delay if raw else definition.off_delay
    if delay > 0.0:
        kind = TimerKind.ON_DELAY if raw else TimerKind.OFF_DELAY
        until = now + delay
        started = _next(record, pending=kind, pending_until=until, value=value)
        return Transition(started, record.state, None, False, (TimerRequest(kind, until),))
    return _condition_changed(definition, replace(record, value=value), raw, now)


def _stop_pending(record: AlarmRecord, value: TagValue | None, now: float) -> Transition:
    kind = record.pending
    assert kind is not None
    stopped = _next(record, pending=None, pending_until=None, value=value)
    return Transition(stopped, record.state, None, False, cancel_timers=(kind,))


def _condition_changed(
    definition: AlarmDefinition, record: AlarmRecord, active: bool, now: float
) -> Transition:
    """The effective condition became ``active``: the state reacts (or, hidden, just notes it)."""
    state = record.state
    cancel = (record.pending,) if record.pending is not None else ()
    changes: dict[str, object] = {"condition": active, "pending": None, "pending_until": None}
    if active:
        changes["active_since"] = now
    event = RAISED if active else CLEARED
    if state in _HIDDEN:
        nxt = _next(record, **changes)
        return Transition(nxt, state, event, False, cancel_timers=cancel)
    if active:
        target = B
        changes["latched"] = record.latched or definition.latching
    elif state is B:
        target = E if record.latched else D
    elif state is C:
        target = E if record.latched else A
    else:  # already clear (A, D, E): nothing for the operator to see
        target = state
    if target is not state:
        changes["state"] = target
        changes["changed_at"] = now
    nxt = _next(record, **changes)
    return Transition(nxt, state, event, target is not state, cancel_timers=cancel)


# -- timers ----------------------------------------------------------------------------
def timer_expired(
    definition: AlarmDefinition, record: AlarmRecord, kind: TimerKind, now: float
) -> Transition | None:
    """What a due timer does; ``None`` for a timer the record no longer waits for.

    A timer that fires before its deadline (clocks of replicas differ) is set again for
    the deadline the record holds, with nothing stored.
    """
    if kind is TimerKind.SHELVE_EXPIRY:
        if record.state is not F or record.shelved_until is None:
            return None
        if now < record.shelved_until:
            return _again(record, kind, record.shelved_until)
        return _leave(definition, record, SHELVE_EXPIRED, now, None, None)
    if record.pending is not kind or record.pending_until is None:
        return None
    if now < record.pending_until:
        return _again(record, kind, record.pending_until)
    return _condition_changed(definition, record, kind is TimerKind.ON_DELAY, now)


def _again(record: AlarmRecord, kind: TimerKind, at: float) -> Transition:
    return Transition(record, record.state, None, False, (TimerRequest(kind, at),), store=False)


# -- operator actions ------------------------------------------------------------------
def apply_action(
    definition: AlarmDefinition,
    record: AlarmRecord,
    action: AlarmAction,
    operator: str,
    comment: str,
    now: float,
    shelve_seconds: float | None = None,
) -> Transition | ActionRefused:
    """What an operator action does, or why it is refused (nothing changes then)."""
    state = record.state
    if not operator.strip():
        return ActionRefused(action, state, INVALID_REQUEST, "an action needs an operator id")
    if state not in ACTION_SOURCES[action]:
        return ActionRefused(action, state, NOT_ALLOWED, _refusal(definition, record, action))
    note = comment or None
    cancel_shelve = (TimerKind.SHELVE_EXPIRY,) if state is F else ()
    if action is AlarmAction.ACKNOWLEDGE:
        target = C if state is B else A
        return _moved(record, action, now, target, operator, note)
    if action is AlarmAction.SHELVE:
        if shelve_seconds is None or not (math.isfinite(shelve_seconds) and shelve_seconds > 0):
            reason = f"shelve needs a duration of more than 0 seconds, not {shelve_seconds!r}"
            return ActionRefused(action, state, INVALID_REQUEST, reason)
        until = now + shelve_seconds
        timer = (TimerRequest(TimerKind.SHELVE_EXPIRY, until),)
        return _moved(record, action, now, F, operator, note, timer, shelved_until=until)
    if action is AlarmAction.SUPPRESS:
        return _moved(record, action, now, G, operator, note, (), cancel_shelve, shelved_until=None)
    if action is AlarmAction.REMOVE_FROM_SERVICE:
        return _moved(record, action, now, H, operator, note, (), cancel_shelve, shelved_until=None)
    if action is AlarmAction.RESET:
        return _moved(record, action, now, A, operator, note, latched=False)
    # unshelve, unsuppress, return to service: back to what the condition says
    return _leave(definition, record, action.value, now, operator, comment or None)


def _leave(
    definition: AlarmDefinition,
    record: AlarmRecord,
    event: str,
    now: float,
    operator: str | None,
    comment: str | None,
) -> Transition:
    """Out of Shelved, Suppressed or Out of service into what the condition says."""
    changes: dict[str, object] = {"shelved_until": None}
    if operator is not None:
        changes |= {"operator": operator, "comment": comment}
    if record.condition:
        target = B
        changes["latched"] = record.latched or definition.latching
    else:
        target = E if record.latched else A
    cancel = (TimerKind.SHELVE_EXPIRY,) if record.state is F and event != SHELVE_EXPIRED else ()
    changes |= {"state": target, "changed_at": now}
    return Transition(_next(record, **changes), record.state, event, True, cancel_timers=cancel)


def _moved(
    record: AlarmRecord,
    action: AlarmAction,
    now: float,
    target: AlarmState,
    operator: str,
    comment: str | None,
    set_timers: tuple[TimerRequest, ...] = (),
    cancel_timers: tuple[TimerKind, ...] = (),
    **changes: object,
) -> Transition:
    changes |= {"state": target, "changed_at": now, "operator": operator, "comment": comment}
    nxt = _next(record, **changes)
    return Transition(nxt, record.state, action.value, True, set_timers, cancel_timers)


def _refusal(definition: AlarmDefinition, record: AlarmRecord, action: AlarmAction) -> str:
    """A reason an operator understands, naming the state and what would be allowed."""
    state = record.state
    name = state.value.replace("_", " ")
    if action is AlarmAction.ACKNOWLEDGE:
        if state is C:
            return "the alarm is already acknowledged"
        if state is A:
            return "the alarm is normal: nothing to acknowledge"
        if state is E:
            return "a latched alarm is released with reset, not acknowledged"
    if action is AlarmAction.RESET and record.latched and record.condition:
        return "the alarm condition is still active: a latched alarm is reset once it clears"
    if action is AlarmAction.RESET and not definition.latching:
        return f"reset releases latched alarms; alarm {definition.id!r} is not latching"
    if state in (G, H) and action in (AlarmAction.SHELVE, AlarmAction.SUPPRESS):
        back = "unsuppress" if state is G else "return_to_service"
        return f"the alarm is {name}: {back} first"
    if state is H:
        return "the alarm is out of service: return_to_service first"
    allowed = sorted(a.value for a, sources in ACTION_SOURCES.items() if state in sources)
    return f"{action.value} is not allowed when the alarm is {name} (allowed: {', '.join(allowed)})"


def _next(record: AlarmRecord, **changes: object) -> AlarmRecord:
    """The record with ``changes`` and the next version."""
    return replace(record, version=record.version + 1, **changes)  # type: ignore[arg-type]
