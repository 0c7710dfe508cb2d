"""SFC evolution rules: sequences, branches, loops, conditions, failures, lifecycle."""

from __future__ import annotations

import json

from microdcs.sfc import (
    Abort,
    ActionCompleted,
    CancelAction,
    CancelTimer,
    ConditionContext,
    DispatchAction,
    EventIgnored,
    Execution,
    ExecutionStatus,
    JobAborted,
    JobCompleted,
    JobStopped,
    Pause,
    Reevaluate,
    Resume,
    ScheduleTimer,
    Start,
    StepEntered,
    Stop,
    TimerDue,
    replay_effects,
)
from tests.unit.test_sfc_support import Driver, act, branch, kinds, recipe

RUNNING = ExecutionStatus.RUNNING


def test_start_activates_the_initial_step() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")], [act("a", "A")]))
    assert d.status is ExecutionStatus.READY
    d.start()
    assert (d.status, d.active) == (RUNNING, ("A",))
    assert d.execution.started_at == 0.0


def test_start_twice_is_ignored() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A")]))
    d.start()
    before = d.execution
    assert kinds(d.start()) == ["EventIgnored"]
    assert d.execution is before


def test_every_accepted_event_bumps_the_version() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")], [act("a", "A"), act("b", "B")]))
    d.start()
    d.complete("a")
    assert d.execution.version == 2


def test_steps_without_actions_pass_in_the_same_call() -> None:
    d = Driver(recipe(["A", "B", "C", "D"], [("A", "B"), ("B", "C"), ("C", "D")], [act("d", "D")]))
    d.start()
    assert d.active == ("D",)
    assert d.dispatched() == ["d"]


def test_final_step_waits_for_its_actions() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B", "true")], [act("b", "B")]))
    d.start()
    assert (d.status, d.active) == (RUNNING, ("B",))
    d.complete("b", {"weight": 3})
    assert d.status is ExecutionStatus.COMPLETED
    assert d.effects[-1] == JobCompleted({"b": {"weight": 3}})


def test_recipe_without_actions_completes_on_start() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")]))
    effects = d.start()
    assert d.status is ExecutionStatus.COMPLETED
    assert isinstance(effects[-1], JobCompleted)


def test_condition_over_results_waits_until_true() -> None:
    d = Driver(
        recipe(
            ["Heat", "Hold"],
            [("Heat", "Heat", "done and result.temperature < 180"), ("Heat", "Hold", "done")],
            [act("heat", "Heat"), act("hold", "Hold")],
        )
    )
    d.start()
    d.complete("heat", {"temperature": 150})
    assert d.active == ("Heat",)
    assert d.dispatched() == ["heat", "heat"]
    d.complete("heat", {"temperature": 185})
    assert d.active == ("Hold",)


def test_condition_over_job_parameters() -> None:
    r = recipe(["A", "B", "C"], [("A", "B", "param.Mode == 'fast'", 1), ("A", "C", "true", 2)])
    d = Driver(r, parameters={"Mode": "fast"})
    d.start()
    assert [e.step for e in d.effects if isinstance(e, StepEntered)] == ["A", "B"]


def test_registered_predicate_decides_and_reevaluate_rechecks() -> None:
    gate = {"open": False}

    def gate_open(ctx: ConditionContext) -> bool:
        return gate["open"]

    d = Driver(recipe(["A", "B"], [("A", "B", "gate_open")]), predicates={"gate_open": gate_open})
    d.start()
    assert d.active == ("A",)
    gate["open"] = True
    d.send(Reevaluate())
    assert d.status is ExecutionStatus.COMPLETED


def test_raising_predicate_aborts_the_job() -> None:
    def broken(ctx: ConditionContext) -> bool:
        raise ValueError("sensor offline")

    d = Driver(recipe(["A", "B"], [("A", "B", "broken")]), predicates={"broken": broken})
    d.start()
    assert d.status is ExecutionStatus.ABORTED
    assert "sensor offline" in (d.execution.reason or "")


def test_lower_priority_wins_among_true_conditions() -> None:
    r = recipe(["A", "B", "C"], [("A", "B", "true", 5), ("A", "C", "true", 1)], [act("c", "C")])
    d = Driver(r)
    d.start()
    assert d.active == ("C",)


def test_declaration_order_breaks_priority_ties() -> None:
    r = recipe(["A", "B", "C"], [("A", "B", "true"), ("A", "C", "true")], [act("b", "B")])
    d = Driver(r)
    d.start()
    assert d.active == ("B",)


def selection() -> Driver:
    return Driver(
        recipe(
            ["A", "B1", "B2", "C1", "End"],
            [
                ("A", "Sel"),
                ("Sel", "B1", "result.route == 'b'", 1),
                ("Sel", "C1", "result.route == 'c'", 2),
                ("Sel", "End"),
            ],
            [act("a", "A"), act("b1", "B1"), act("b2", "B2"), act("c1", "C1")],
            [branch("Sel", "selection", ["B1", "B2"], ["C1"])],
        )
    )


def test_selection_takes_the_first_true_path() -> None:
    d = selection()
    d.start()
    d.complete("a", {"route": "c"})
    assert d.active == ("C1",)


def test_selection_path_runs_its_steps_in_sequence() -> None:
    d = selection()
    d.start()
    d.complete("a", {"route": "b"})
    d.complete("b1")
    assert d.active == ("B2",)
    d.complete("b2")
    assert d.status is ExecutionStatus.COMPLETED
    assert d.dispatched() == ["a", "b1", "b2"]


def test_selection_waits_while_no_path_condition_holds() -> None:
    d = selection()
    d.start()
    d.complete("a", {"route": "x"})
    assert (d.status, d.active) == (RUNNING, ("A",))


def simultaneous() -> Driver:
    return Driver(
        recipe(
            ["A", "L1", "L2", "R1", "End"],
            [("A", "Par"), ("Par", "End")],
            [act("l1", "L1"), act("l2", "L2"), act("r1", "R1"), act("end", "End")],
            [branch("Par", "simultaneous", ["L1", "L2"], ["R1"])],
        )
    )


def test_simultaneous_divergence_starts_every_path() -> None:
    d = simultaneous()
    d.start()
    assert d.active == ("L1", "R1")
    assert d.dispatched() == ["l1", "r1"]


def test_simultaneous_convergence_waits_for_every_path() -> None:
    d = simultaneous()
    d.start()
    d.complete("r1")
    d.complete("l1")
    assert d.active == ("R1", "L2")
    d.complete("l2")
    assert d.active == ("End",)


def test_branch_can_follow_a_branch() -> None:
    r = recipe(
        ["A", "P1", "P2", "Q1", "Q2"],
        [("A", "P"), ("P", "Q"), ("Q", "A", "false")],
        [act("p1", "P1"), act("p2", "P2"), act("q1", "Q1"), act("q2", "Q2")],
        [
            branch("P", "simultaneous", ["P1"], ["P2"]),
            branch("Q", "simultaneous", ["Q1"], ["Q2"]),
        ],
    )
    d = Driver(r)
    d.start()
    d.complete("p1")
    d.complete("p2")
    assert d.active == ("Q1", "Q2")


def test_loop_reruns_the_actions_of_a_reentered_step() -> None:
    d = Driver(
        recipe(
            ["Fill", "Check", "Done"],
            [
                ("Fill", "Check"),
                ("Check", "Fill", "result.level < 3", 1),
                ("Check", "Done", "done", 2),
            ],
            [act("fill", "Fill"), act("measure", "Check")],
        )
    )
    d.start()
    for level in (1, 2):
        d.complete("fill")
        d.complete("measure", {"level": level})
    d.complete("fill")
    d.complete("measure", {"level": 3})
    assert d.dispatched() == ["fill", "measure"] * 3
    assert d.status is ExecutionStatus.COMPLETED


def test_reentered_step_forgets_its_last_result() -> None:
    d = Driver(
        recipe(
            ["A", "B"],
            [("A", "A", "results.a.again", 1), ("A", "B", "done", 2)],
            [act("a", "A")],
        )
    )
    d.start()
    d.complete("a", {"again": True})
    assert "a" not in d.execution.results
    assert d.active == ("A",)


def test_zero_time_loop_at_run_time_aborts_with_a_reason() -> None:
    d = Driver(
        recipe(
            ["A", "B", "C"],
            [("A", "B", "param.go"), ("B", "A", "param.go", 1), ("B", "C", "true", 2)],
        ),
        parameters={"go": True},
    )
    d.start()
    assert d.status is ExecutionStatus.ABORTED
    assert "zero-time loop" in (d.execution.reason or "")


def test_unhandled_failure_aborts_the_job() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")], [act("a", "A"), act("x", "A")]))
    d.start()
    effects = d.fail("a", "jammed")
    assert d.status is ExecutionStatus.ABORTED
    assert d.execution.reason == "action a of step A failed: jammed"
    assert d.running() == []
    assert [e.action for e in effects if isinstance(e, CancelAction)] == ["x"]
    assert isinstance(effects[-1], JobAborted)


def test_failure_routed_through_a_transition_does_not_abort() -> None:
    d = Driver(
        recipe(
            ["A", "Recover", "B"],
            [("A", "Recover", "failed.a", 1), ("A", "B", "done", 2), ("Recover", "B")],
            [act("a", "A"), act("fix", "Recover")],
        )
    )
    d.start()
    d.fail("a")
    assert (d.status, d.active) == (RUNNING, ("Recover",))
    d.complete("fix")
    assert d.status is ExecutionStatus.COMPLETED


def test_bare_failed_handles_any_action_of_the_step() -> None:
    d = Driver(
        recipe(
            ["A", "Recover"],
            [("A", "Recover", "failed")],
            [act("a", "A"), act("b", "A"), act("fix", "Recover")],
        )
    )
    d.start()
    d.fail("b")
    assert d.active == ("Recover",)


def test_failure_of_an_action_whose_step_ended_aborts() -> None:
    d = Driver(
        recipe(
            ["A", "B"],
            [("A", "B", "true"), ("B", "B", "failed.h")],
            [act("h", "A", "S"), act("b", "B")],
        )
    )
    d.start()
    d.fail("h")
    assert d.status is ExecutionStatus.ABORTED


def test_stale_response_is_ignored() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")], [act("a", "A"), act("b", "B")]))
    d.start()
    old = d.correlation("a")
    d.complete("a")
    before = d.execution
    assert kinds(d.send(ActionCompleted(old))) == ["EventIgnored"]
    assert d.execution is before


def test_unknown_timer_is_ignored() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A")]))
    d.start()
    assert kinds(d.send(TimerDue("delay:nope"))) == ["EventIgnored"]


def test_early_timer_is_ignored() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A", "D", time=5)]))
    d.start()
    (key,) = d.execution.timers
    assert kinds(d.send(TimerDue(key))) == ["EventIgnored"]


def test_pause_stops_firing_and_dispatching() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")], [act("a", "A"), act("b", "B")]))
    d.start()
    d.send(Pause())
    d.complete("a")
    assert (d.status, d.active, d.dispatched()) == (ExecutionStatus.PAUSED, ("A",), ["a"])
    d.send(Resume())
    assert (d.status, d.active, d.dispatched()) == (RUNNING, ("B",), ["a", "b"])


def test_pause_freezes_timers_and_resume_shifts_them() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A", "D", time=10)]))
    d.start()
    d.advance(4)
    effects = d.send(Pause())
    assert [type(e) for e in effects] == [CancelTimer]
    d.advance(100)
    assert d.dispatched() == []
    effects = d.send(Resume())
    assert effects == [ScheduleTimer(next(iter(d.execution.timers)), 110.0)]
    d.advance(6)
    assert d.dispatched() == ["a"]


def test_failure_while_paused_aborts_at_once() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A")]))
    d.start()
    d.send(Pause())
    d.fail("a")
    assert d.status is ExecutionStatus.ABORTED


def test_stop_cancels_everything_and_reports_results() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")], [act("a", "A"), act("t", "A", "D", time=9)]))
    d.start()
    effects = d.send(Stop("operator"))
    assert kinds(effects) == ["CancelAction", "CancelTimer", "StepExited", "JobStopped"]
    assert effects[-1] == JobStopped({}, "operator")
    assert (d.status, d.active, dict(d.execution.timers)) == (ExecutionStatus.STOPPED, (), {})


def test_stop_before_start_is_ignored() -> None:
    d = Driver(recipe(["A"], []))
    assert kinds(d.send(Stop())) == ["EventIgnored"]


def test_abort_works_from_paused() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A")]))
    d.start()
    d.send(Pause())
    effects = d.send(Abort("mes"))
    assert isinstance(effects[-1], JobAborted)
    assert d.execution.reason == "mes"


def test_events_after_the_end_are_ignored() -> None:
    d = Driver(recipe(["A"], []))
    d.start()
    assert kinds(d.send(Abort("late"))) == ["EventIgnored"]
    assert d.status is ExecutionStatus.COMPLETED


def test_timers_set_and_cleared_in_one_call_never_reach_the_engine() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B", "true")], [act("a", "A", "D", time=3)]))
    effects = d.start()
    assert not [e for e in effects if isinstance(e, ScheduleTimer | CancelTimer)]


def test_execution_round_trips_through_json() -> None:
    d = Driver(
        recipe(["A", "B"], [("A", "B")], [act("a", "A", "SD", time=4), act("b", "A", timeout=2)])
    )
    d.start()
    d.complete("b", {"v": [1, 2]})
    d.send(Pause())
    text = json.dumps(d.execution.to_dict())
    assert Execution.from_dict(json.loads(text)) == d.execution


def test_replay_effects_redispatches_running_actions_and_timers() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A", timeout=5), act("w", "A", "D", time=3)]))
    d.start()
    replay = replay_effects(d.compiled, d.execution)
    assert [type(e) for e in replay] == [DispatchAction, ScheduleTimer, ScheduleTimer]
    assert replay[0] == next(e for e in d.effects if isinstance(e, DispatchAction))


def test_ignored_event_reports_why() -> None:
    d = Driver(recipe(["A"], []))
    (effect,) = d.send(Resume())
    assert isinstance(effect, EventIgnored)
    assert effect.reason == "cannot resume a ready execution"


def test_start_event_type_is_exported() -> None:
    assert Start() == Start()
