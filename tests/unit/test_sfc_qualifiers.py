"""The eleven action qualifiers, one behaviour per test."""

from __future__ import annotations

from microdcs.sfc import CancelAction, DispatchAction, ExecutionStatus, RunStatus
from tests.unit.test_sfc_support import Driver, act, branch, recipe


def two_steps(*actions: object, condition: str | None = None) -> Driver:
    """A -> B -> End; actions as given (mostly on A)."""
    return Driver(
        recipe(
            ["A", "B", "End"],
            [("A", "B", condition), ("B", "End", "true")],
            actions,  # type: ignore[arg-type]
        )
    )


def cancelled(d: Driver) -> list[str]:
    return [e.action for e in d.effects if isinstance(e, CancelAction)]


def test_n_action_is_dispatched_on_entry() -> None:
    d = two_steps(act("a", "A"))
    effects = d.start()
    dispatch = next(e for e in effects if isinstance(e, DispatchAction))
    assert (dispatch.action, dispatch.step, dispatch.type_id) == ("a", "A", "com.example.cmd")
    assert dispatch.correlation_id == "job1/A/a/1"


def test_n_action_completion_completes_the_step() -> None:
    d = two_steps(act("a", "A"))
    d.start()
    assert d.active == ("A",)
    d.complete("a")
    assert d.status is ExecutionStatus.COMPLETED


def test_n_action_is_cancelled_when_its_step_ends_first() -> None:
    d = two_steps(act("a", "A"), condition="param.skip == true")
    d.execution = type(d.execution)(job_id="job1", parameters={"skip": True})
    d.start()
    assert d.dispatched() == ["a"]
    assert cancelled(d) == ["a"]
    assert d.status is ExecutionStatus.COMPLETED


def test_p_action_runs_once_on_entry_and_is_awaited_by_done() -> None:
    d = two_steps(act("p", "A", "P"))
    d.start()
    assert d.dispatched() == ["p"]
    assert d.active == ("A",)
    d.complete("p")
    assert d.status is ExecutionStatus.COMPLETED


def test_p1_action_behaves_like_p() -> None:
    d = two_steps(act("p", "A", "P1"))
    d.start()
    d.complete("p")
    assert d.dispatched() == ["p"]
    assert d.status is ExecutionStatus.COMPLETED


def test_p_pulse_outlives_its_step_and_is_not_cancelled() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B", "true")], [act("p", "A", "P"), act("b", "B")]))
    d.start()
    assert d.active == ("B",)
    assert cancelled(d) == []
    assert d.running() == ["b", "p"]
    d.complete("p", {"x": 1})
    assert d.execution.results["p"] == {"x": 1}


def test_p0_action_runs_on_step_exit_not_entry() -> None:
    d = two_steps(act("a", "A"), act("p0", "A", "P0"))
    d.start()
    assert d.dispatched() == ["a"]
    d.complete("a")
    assert d.dispatched() == ["a", "p0"]


def test_recipe_waits_for_running_p0_before_completing() -> None:
    d = two_steps(act("p0", "A", "P0"))
    d.start()
    assert d.active == ()
    assert d.status is ExecutionStatus.RUNNING
    d.complete("p0")
    assert d.status is ExecutionStatus.COMPLETED


def test_s_action_stays_set_after_its_step_ends() -> None:
    d = Driver(
        recipe(
            ["A", "B", "C"],
            [("A", "B", "true"), ("B", "C")],
            [act("h", "A", "S"), act("b", "B"), act("h", "C", "R")],
        )
    )
    d.start()
    assert d.active == ("B",)
    assert d.running() == ["b", "h"]
    assert cancelled(d) == []
    assert d.execution.runs["A/h"].stored


def test_r_resets_a_running_stored_action() -> None:
    d = Driver(
        recipe(
            ["A", "B", "C"],
            [("A", "B", "true"), ("B", "C")],
            [act("h", "A", "S"), act("b", "B"), act("h", "C", "R")],
        )
    )
    d.start()
    d.complete("b")
    assert cancelled(d) == ["h"]
    assert "A/h" not in d.execution.runs
    assert d.status is ExecutionStatus.COMPLETED


def test_r_forgets_a_completed_stored_action() -> None:
    d = Driver(
        recipe(["A", "B"], [("A", "B")], [act("h", "A", "S"), act("h", "B", "R"), act("b", "B")])
    )
    d.start()
    d.complete("h", {"on": True})
    assert d.active == ("B",)
    assert "A/h" not in d.execution.runs
    assert d.execution.results["h"] == {"on": True}


def test_s_is_not_dispatched_again_while_still_set() -> None:
    d = Driver(
        recipe(
            ["A", "B"],
            [("A", "A", "results.n.again == true", 1), ("A", "B", "done", 2)],
            [act("h", "A", "S"), act("n", "A")],
        )
    )
    d.start()
    d.complete("h")
    d.complete("n", {"again": True})
    d.complete("n", {"again": False})
    assert d.dispatched() == ["h", "n", "n"]
    assert d.status is ExecutionStatus.COMPLETED


def test_l_action_is_cut_by_its_time_limit() -> None:
    d = two_steps(act("l", "A", "L", time=10))
    d.start()
    d.advance(10)
    assert cancelled(d) == ["l"]
    assert d.status is ExecutionStatus.COMPLETED


def test_l_action_is_cancelled_when_its_step_ends() -> None:
    d = Driver(
        recipe(
            ["A", "B"], [("A", "B", "results.n.ok")], [act("l", "A", "L", time=10), act("n", "A")]
        )
    )
    d.start()
    d.complete("n", {"ok": True})
    assert cancelled(d) == ["l"]
    assert d.execution.timers == {}


def test_l_action_completing_in_time_counts_as_done() -> None:
    d = two_steps(act("l", "A", "L", time=10))
    d.start()
    d.advance(3)
    d.complete("l")
    assert d.status is ExecutionStatus.COMPLETED
    assert cancelled(d) == []


def test_d_action_starts_after_its_delay() -> None:
    d = two_steps(act("d", "A", "D", time=5))
    d.start()
    d.advance(4.9)
    assert d.dispatched() == []
    d.advance(0.1)
    assert d.dispatched() == ["d"]


def test_d_action_never_starts_if_its_step_ended_first() -> None:
    d = Driver(
        recipe(
            ["A", "B"], [("A", "B", "results.n.ok")], [act("d", "A", "D", time=5), act("n", "A")]
        )
    )
    d.start()
    d.complete("n", {"ok": True})
    d.advance(10)
    assert d.dispatched() == ["n"]
    assert d.status is ExecutionStatus.COMPLETED


def test_d_action_is_awaited_by_done() -> None:
    d = two_steps(act("d", "A", "D", time=5))
    d.start()
    d.advance(5)
    assert d.active == ("A",)
    d.complete("d")
    assert d.status is ExecutionStatus.COMPLETED


def test_sd_action_starts_after_its_delay_even_if_its_step_ended() -> None:
    d = Driver(
        recipe(["A", "B"], [("A", "B", "true")], [act("sd", "A", "SD", time=5), act("b", "B")])
    )
    d.start()
    assert d.active == ("B",)
    d.advance(5)
    assert d.dispatched() == ["b", "sd"]


def test_sd_action_is_not_awaited_by_done() -> None:
    d = two_steps(act("sd", "A", "SD", time=5), act("n", "A"))
    d.start()
    d.complete("n")
    assert d.active == ()
    assert d.status is ExecutionStatus.RUNNING  # the job still waits for sd to run
    d.advance(5)
    d.complete("sd")
    assert d.status is ExecutionStatus.COMPLETED


def test_r_before_the_delay_prevents_an_sd_action() -> None:
    d = Driver(
        recipe(
            ["A", "B", "C"],
            [("A", "B", "true"), ("B", "C")],
            [act("sd", "A", "SD", time=5), act("b", "B"), act("sd", "C", "R")],
        )
    )
    d.start()
    d.complete("b")
    d.advance(10)
    assert d.dispatched() == ["b"]
    assert d.status is ExecutionStatus.COMPLETED


def test_ds_action_starts_only_if_its_step_is_still_active() -> None:
    d = Driver(
        recipe(
            ["A", "B"], [("A", "B", "results.n.ok")], [act("ds", "A", "DS", time=5), act("n", "A")]
        )
    )
    d.start()
    d.complete("n", {"ok": True})
    d.advance(10)
    assert d.dispatched() == ["n"]


def test_ds_action_stays_set_after_its_step_ends() -> None:
    d = Driver(
        recipe(
            ["A", "B"],
            [("A", "B", "results.n.ok")],
            [act("ds", "A", "DS", time=5), act("n", "A"), act("b", "B")],
        )
    )
    d.start()
    d.advance(5)
    d.complete("n", {"ok": True})
    assert d.active == ("B",)
    assert d.running() == ["b", "ds"]
    assert d.execution.runs["A/ds"].stored


def test_sl_action_is_cut_by_its_time_limit_after_its_step_ended() -> None:
    d = Driver(
        recipe(["A", "B"], [("A", "B", "true")], [act("sl", "A", "SL", time=5), act("b", "B")])
    )
    d.start()
    assert d.running() == ["b", "sl"]
    d.advance(5)
    assert cancelled(d) == ["sl"]
    assert d.execution.runs["A/sl"].status is RunStatus.LIMITED


def test_r_cuts_an_sl_action_before_its_limit() -> None:
    d = Driver(
        recipe(
            ["A", "B", "C"],
            [("A", "B", "true"), ("B", "C")],
            [act("sl", "A", "SL", time=50), act("b", "B"), act("sl", "C", "R")],
        )
    )
    d.start()
    d.complete("b")
    assert cancelled(d) == ["sl"]
    assert d.execution.timers == {}
    assert d.status is ExecutionStatus.COMPLETED


def test_timeout_fails_an_action() -> None:
    d = two_steps(act("a", "A", timeout=3))
    d.start()
    d.advance(3)
    assert d.status is ExecutionStatus.ABORTED
    assert d.execution.reason == "action a of step A failed: no response within 3 s"
    assert cancelled(d) == ["a"]


def test_response_before_timeout_cancels_the_timeout_timer() -> None:
    d = two_steps(act("a", "A", timeout=3))
    d.start()
    assert len(d.execution.timers) == 1
    d.complete("a")
    assert d.execution.timers == {}


def test_zero_timeout_means_none() -> None:
    d = two_steps(act("a", "A", timeout=0))
    d.start()
    assert d.execution.timers == {}


def test_stored_action_reset_in_a_parallel_path_counts_as_done() -> None:
    d = Driver(
        recipe(
            ["A", "L", "R"],
            [("A", "Par")],
            [act("h", "L", "S"), act("h", "R", "R")],
            [branch("Par", "simultaneous", ["L"], ["R"])],
        )
    )
    d.start()
    assert d.status is ExecutionStatus.COMPLETED
