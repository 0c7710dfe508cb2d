"""Progress events derived from one change: entries in order, numbered by version."""

from __future__ import annotations

from microdcs.sfc import ActionCompleted, Reevaluate
from microdcs.sfc.engine.progress import progress_event, retried
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
