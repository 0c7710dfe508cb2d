"""No silent stalls: transition timeouts, the recipe watchdog, and the validation warning."""

from __future__ import annotations

from dataclasses import replace

import pytest

from microdcs.sfc import (
    ExecutionStatus,
    JobAborted,
    JobSuspended,
    RecipeValidationError,
    Resume,
    ScheduleTimer,
    recipe_warnings,
    validate_recipe,
)
from microdcs_models.sfc_recipe import SfcRecipe
from tests.unit.test_sfc_support import Driver, act, branch, recipe

RUNNING, PAUSED = ExecutionStatus.RUNNING, ExecutionStatus.PAUSED


def timed(source: SfcRecipe, index: int, seconds: float, on_timeout: str | None) -> SfcRecipe:
    """``source`` with a timeout on its transition ``index``."""
    transitions = list(source.transitions)
    transitions[index] = replace(transitions[index], timeout_seconds=seconds, on_timeout=on_timeout)
    return replace(source, transitions=transitions)


def gate(*, escape: bool = True) -> SfcRecipe:
    """A waits for ``result.ok``; C (with ``escape``) is where a timeout may send it."""
    steps, actions = ["A", "B"], [act("a", "A")]
    if escape:
        steps, actions = [*steps, "C"], [*actions, act("c", "C")]
    return recipe(steps, [("A", "B", "done and result.ok == true")], actions)


def selection() -> SfcRecipe:
    """X chooses P or Q by a parameter; neither holds when ``param.mode`` is unset."""
    return recipe(
        ["X", "P", "Q"],
        [("X", "S"), ("S", "P", "param.mode == 'p'"), ("S", "Q", "param.mode == 'q'")],
        [act("x", "X")],
        [branch("S", "selection", ["P"], ["Q"])],
    )


def test_a_transition_timeout_goes_to_its_on_timeout_step() -> None:
    d = Driver(timed(gate(), 0, 2.0, "C"))
    d.start()
    d.now = 0.5
    d.complete("a", {"ok": False})
    assert d.active == ("A",)
    effects = d.advance(2.0)  # to t = 2.5; the timer ran from A's entry at t = 0
    assert d.active == ("C",)
    assert "c" in d.dispatched(effects)


def test_a_transition_that_fires_in_time_cancels_its_timeout() -> None:
    d = Driver(timed(gate(), 0, 2.0, "C"))
    d.start()
    d.complete("a", {"ok": True})
    assert d.active == () and "transition:0" not in d.execution.timers


def test_a_transition_timeout_with_abort_aborts_the_job() -> None:
    d = Driver(timed(gate(escape=False), 0, 1.0, "abort"))
    d.start()
    d.complete("a", {"ok": False})
    effects = d.advance(1.0)
    assert d.status is ExecutionStatus.ABORTED
    assert any(isinstance(e, JobAborted) and "A -> B" in e.reason for e in effects)


def test_a_transition_timeout_with_suspend_pauses_until_resume_and_then_waits_again() -> None:
    d = Driver(timed(gate(escape=False), 0, 1.0, None))
    d.start()
    d.complete("a", {"ok": False})
    effects = d.advance(1.0)
    assert d.status is PAUSED
    assert [e for e in effects if isinstance(e, JobSuspended)]
    d.now = 10.0
    effects = d.send(Resume())
    assert d.status is RUNNING
    assert ScheduleTimer("transition:0", 11.0) in effects


def test_the_watchdog_suspends_a_selection_where_no_choice_holds_and_resume_rearms_it() -> None:
    d = Driver(replace(selection(), watchdog_seconds=5.0))
    d.start()
    d.now = 1.0
    effects = d.complete("x")
    assert d.active == ("X",)
    assert ScheduleTimer("watchdog", 6.0) in effects
    effects = d.advance(4.9)
    assert d.status is RUNNING
    effects = d.advance(0.2)
    assert d.status is PAUSED
    suspended = [e for e in effects if isinstance(e, JobSuspended)]
    assert suspended and "X" in suspended[0].reason
    d.now = 20.0
    effects = d.send(Resume())
    assert ScheduleTimer("watchdog", 25.0) in effects


def test_the_watchdog_does_not_run_while_a_step_waits_for_its_actions() -> None:
    d = Driver(replace(selection(), watchdog_seconds=5.0))
    d.start()
    d.advance(30.0)
    assert d.status is RUNNING and "watchdog" not in d.execution.timers


def test_a_selection_without_default_or_timeout_is_warned_about() -> None:
    warnings = recipe_warnings(selection())
    assert len(warnings) == 1 and "S" in warnings[0]


def test_a_selection_with_a_default_choice_or_a_timeout_is_not_warned_about() -> None:
    default = selection()
    transitions = list(default.transitions)
    transitions[2] = replace(transitions[2], condition="true")
    assert recipe_warnings(replace(default, transitions=transitions)) == []
    assert recipe_warnings(timed(selection(), 0, 30.0, "abort")) == []


@pytest.mark.parametrize(
    ("seconds", "target", "problem"),
    [
        (1.0, "Nowhere", "OnTimeout names unknown step Nowhere"),
        (-1.0, "C", "TimeoutSeconds must be a finite number >= 0"),
        (None, "C", "OnTimeout means nothing without TimeoutSeconds"),
    ],
)
def test_an_invalid_transition_timeout_is_rejected(
    seconds: float | None, target: str, problem: str
) -> None:
    with pytest.raises(RecipeValidationError) as info:
        validate_recipe(timed(gate(), 0, seconds, target))  # type: ignore[arg-type]
    assert any(problem in p for p in info.value.problems)


def test_a_timeout_into_a_selection_branch_runs_one_timer_for_all_its_choices() -> None:
    d = Driver(timed(selection(), 0, 3.0, "abort"))
    d.start()
    d.complete("x")
    assert [k for k in d.execution.timers if k.startswith("transition:")] == ["transition:0"]
    effects = d.advance(3.0)
    assert d.status is ExecutionStatus.ABORTED
    assert sum(isinstance(e, JobAborted) for e in effects) == 1
