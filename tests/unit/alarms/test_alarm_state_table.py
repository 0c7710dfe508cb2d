"""The ISA-18.2 alarm state model, every state x every input, written out by hand.

The expected table is the specification (ISA-18.2's state diagram, states A-H), not a
copy of the code's own tables: a change to ``states.py`` that moves one arrow fails here.
"""

from __future__ import annotations

import pytest

from microdcs.alarms.contract import AlarmAction, AlarmKind, AlarmState
from microdcs.alarms.definitions import AlarmDefinition
from microdcs.alarms.states import (
    NOT_ALLOWED,
    STATE_ATTRIBUTES,
    ActionRefused,
    AlarmRecord,
    TimerKind,
    Transition,
    apply_action,
    evaluate,
    timer_expired,
)
from microdcs.plantdata.contract import Quality

A, B, C, D = "normal", "unacknowledged", "acknowledged", "returned_unacknowledged"
E, F, G, H = "latched", "shelved", "suppressed_by_design", "out_of_service"
NOW = 1_000_000.0
HIGH = AlarmDefinition(id="TT1.H", tag="TT1", kind=AlarmKind.HIGH, setpoint=50.0, deadband=5.0)


def record(state: str) -> AlarmRecord:
    """A record in ``state`` as the model reaches it (condition true only in B and C)."""
    active = state in (B, C)
    return AlarmRecord(
        state=AlarmState(state),
        condition=active,
        active_since=NOW - 60 if active else None,
        latched=state == E,
        shelved_until=NOW - 1 if state == F else None,
        changed_at=NOW - 60,
        version=7,
    )


ACTIONS = list(AlarmAction)
R = "refused"
#: state -> the target of each action in ACTIONS' order
#: (acknowledge, shelve, unshelve, suppress, unsuppress, remove, return, reset).
ACTION_TABLE: dict[str, tuple[str, ...]] = {
    A: (R, F, R, G, R, H, R, R),
    B: (C, F, R, G, R, H, R, R),
    C: (R, F, R, G, R, H, R, R),
    D: (A, F, R, G, R, H, R, R),
    E: (R, F, R, G, R, H, R, A),
    F: (R, F, A, G, R, H, R, R),
    G: (R, R, R, R, A, H, R, R),
    H: (R, R, R, R, R, R, A, R),
}
NONE = "no change"
#: state -> what a sample above the setpoint, one clear of it, a bad-quality sample and a
#: due shelve expiry do (a hidden state tracks the condition without leaving).
INPUT_TABLE: dict[str, tuple[str, str, str, str]] = {
    A: (B, NONE, NONE, NONE),
    B: (NONE, D, NONE, NONE),
    C: (NONE, A, NONE, NONE),
    D: (B, NONE, NONE, NONE),
    E: (B, NONE, NONE, NONE),
    F: (F, NONE, NONE, A),
    G: (G, NONE, NONE, NONE),
    H: (H, NONE, NONE, NONE),
}
CASES = [
    (state, action, target)
    for state, targets in ACTION_TABLE.items()
    for action, target in zip(ACTIONS, targets, strict=True)
]


def outcome(result: Transition | ActionRefused | None) -> str:
    if result is None:
        return NONE
    if isinstance(result, ActionRefused):
        return R
    return result.record.state.value


def test_the_tables_cover_every_state_and_action() -> None:
    assert set(ACTION_TABLE) == {s.value for s in AlarmState} == set(INPUT_TABLE)
    assert len(CASES) == len(AlarmState) * len(AlarmAction)


@pytest.mark.parametrize(("state", "action", "target"), CASES)
def test_operator_action(state: str, action: AlarmAction, target: str) -> None:
    result = apply_action(HIGH, record(state), action, "op7", "why", NOW, shelve_seconds=60.0)
    assert outcome(result) == target
    if isinstance(result, ActionRefused):
        assert result.error == NOT_ALLOWED and result.reason
        assert result.state.value == state
    else:
        assert result.emit and result.event == action.value
        assert result.record.operator == "op7" and result.record.comment == "why"
        assert result.record.version == 8


@pytest.mark.parametrize("state", list(INPUT_TABLE))
def test_sample_above_the_setpoint(state: str) -> None:
    assert outcome(evaluate(HIGH, record(state), 60.0, Quality.GOOD, NOW)) == INPUT_TABLE[state][0]


@pytest.mark.parametrize("state", list(INPUT_TABLE))
def test_sample_clear_of_the_deadband(state: str) -> None:
    assert outcome(evaluate(HIGH, record(state), 40.0, Quality.GOOD, NOW)) == INPUT_TABLE[state][1]


@pytest.mark.parametrize("state", list(INPUT_TABLE))
def test_bad_quality_sample(state: str) -> None:
    assert outcome(evaluate(HIGH, record(state), 99.0, Quality.BAD, NOW)) == INPUT_TABLE[state][2]


@pytest.mark.parametrize("state", list(INPUT_TABLE))
def test_shelve_expiry(state: str) -> None:
    result = timer_expired(HIGH, record(state), TimerKind.SHELVE_EXPIRY, NOW)
    assert outcome(result) == INPUT_TABLE[state][3]


def test_a_hidden_state_tracks_the_condition_without_annunciating() -> None:
    result = evaluate(HIGH, record(F), 60.0, Quality.GOOD, NOW)
    assert isinstance(result, Transition)
    assert result.record.condition and not result.emit and result.store


def test_shelve_expiry_with_the_condition_active_is_unacknowledged_again() -> None:
    shelved = evaluate(HIGH, record(F), 60.0, Quality.GOOD, NOW)
    assert isinstance(shelved, Transition)
    expired = timer_expired(HIGH, shelved.record, TimerKind.SHELVE_EXPIRY, NOW + 1)
    assert outcome(expired) == B


def test_shelve_needs_a_positive_duration() -> None:
    result = apply_action(HIGH, record(B), AlarmAction.SHELVE, "op", "", NOW, shelve_seconds=0)
    assert isinstance(result, ActionRefused) and "duration" in result.reason


def test_an_action_needs_an_operator() -> None:
    result = apply_action(HIGH, record(B), AlarmAction.ACKNOWLEDGE, " ", "", NOW)
    assert isinstance(result, ActionRefused) and result.error != NOT_ALLOWED


@pytest.mark.parametrize(
    ("state", "condition", "annunciated", "acknowledged"),
    [
        (A, False, False, True),
        (B, True, True, False),
        (C, True, True, True),
        (D, False, True, False),
        (E, False, True, None),
        (F, None, False, None),
        (G, None, False, None),
        (H, None, False, None),
    ],
)
def test_isa_attributes_per_state(
    state: str, condition: bool | None, annunciated: bool, acknowledged: bool | None
) -> None:
    attributes = STATE_ATTRIBUTES[AlarmState(state)]
    assert (attributes.condition, attributes.annunciated, attributes.acknowledged) == (
        condition,
        annunciated,
        acknowledged,
    )
