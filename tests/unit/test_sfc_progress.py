"""Progress events derived from one change, and the execution summary kept with the job."""

from __future__ import annotations

import orjson

from microdcs.sfc import ActionCompleted, Execution, Reevaluate
from microdcs.sfc.engine.plan import summary
from microdcs.sfc.engine.progress import progress_event, retried
from microdcs.sfc.work import MAX_HISTORY
from microdcs_models.sfc_step_event import SfcStepEventKind as K
from tests.unit.test_sfc_support import Driver, act, recipe


def test_a_change_lists_what_happened_in_order_with_sequence_numbers_of_its_version() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")], [act("a", "A"), act("b", "B", "D", time=2.0)]))
    d.start()
    corr = d.correlation("a")
    event = ActionCompleted(corr, {"x": 1})
    effects = d.send(event)
    progress = progress_event(event, effects, d.execution, 5.0)
    assert progress is not None
    assert (progress.job_order_id, progress.version, progress.time) == ("job1", 2, 5.0)
    assert progress.active_steps == ["B"]
    assert [(e.kind, e.step or e.transition or e.timer) for e in progress.steps] == [
        (K.ACTION_COMPLETED, "A"),
        (K.TRANSITION_FIRED, "A -> B"),
        (K.STEP_EXITED, "A"),
        (K.STEP_ENTERED, "B"),
        (K.TIMER_STARTED, "delay:job1/B/b/1"),
    ]
    assert [e.sequence for e in progress.steps] == [2000, 2001, 2002, 2003, 2004]
    assert progress.steps[0].action_run == corr and progress.steps[0].action == "a"


def test_a_change_without_entries_gives_no_event() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B", "param.go")], [act("a", "A")]))
    d.start()
    assert progress_event(Reevaluate(), [], d.execution, 1.0) is None


def test_a_resent_command_is_an_action_retried_entry() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A")]))
    d.start()
    progress = retried(d.execution, d.correlation("a"), 9.0)
    assert [(e.kind, e.step, e.action) for e in progress.steps] == [(K.ACTION_RETRIED, "A", "a")]


def test_the_execution_summary_records_steps_with_times_and_action_outcomes() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")], [act("a", "A"), act("b", "B")]))
    d.start()
    d.now = 1.5
    d.complete("a")
    d.now = 4.0
    d.fail("b", "jammed")
    history = d.execution.history
    assert history[0] == ("step", "A", 1, 0.0, 1.5)
    assert ("action", "a", "A", "completed", 1.5) in history
    assert ("action", "b", "B", "failed", 4.0) in history
    assert ("step", "B", 1, 1.5, 4.0) in history  # left when the failure aborted the job
    assert Execution.from_dict(orjson.loads(orjson.dumps(d.execution.to_dict()))) == d.execution
    data = summary(history)
    assert [s["Step"] for s in data["Steps"]] == ["A", "B"]
    assert [(a["Action"], a["Outcome"]) for a in data["Actions"]] == [
        ("a", "completed"),
        ("b", "failed"),
    ]


def test_the_summary_of_a_looping_recipe_keeps_only_the_latest_entries() -> None:
    d = Driver(recipe(["A"], [("A", "A", "done and param.again")], [act("a", "A")]),
               parameters={"again": True})  # fmt: skip
    d.start()
    for _ in range(MAX_HISTORY):
        d.complete("a")
    history = d.execution.history
    assert len(history) == MAX_HISTORY
    assert history[-1][:3] == ("step", "A", MAX_HISTORY + 1)
