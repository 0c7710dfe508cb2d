"""The job's retained step state derived from a change: active steps and since when."""

from __future__ import annotations

import orjson

from microdcs.sfc import ActionCompleted
from microdcs.sfc.engine.progress import progress_event, step_state
from tests.unit.test_sfc_support import Driver, act, recipe


def test_a_change_that_enters_a_step_gives_the_active_steps_with_their_entry_time() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")], [act("a", "A"), act("b", "B")]))
    d.start()
    event = ActionCompleted(d.correlation("a"), {})
    effects = d.send(event)
    state = step_state(progress_event(event, effects, d.execution, 5.0), d.execution)
    assert state is not None
    entered = next(e for e in d.execution.history if e[0] == "step" and e[1] == "B")[3]
    assert state.active == (("B", entered),)
    assert orjson.loads(state.payload()) == {
        "JobOrderID": "job1", "Version": d.execution.version, "Time": 5.0,
        "ActiveSteps": [{"Step": "B", "Since": entered}],
    }  # fmt: skip


def test_a_change_that_enters_and_leaves_no_step_keeps_the_retained_state() -> None:
    d = Driver(recipe(["A", "B"], [("A", "B")], [act("a", "A"), act("a2", "A"), act("b", "B")]))
    d.start()
    event = ActionCompleted(d.correlation("a"), {})  # a2 still runs: A stays active
    effects = d.send(event)
    assert step_state(progress_event(event, effects, d.execution, 5.0), d.execution) is None


def test_the_end_of_the_recipe_leaves_no_active_step() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A")]))
    d.start()
    event = ActionCompleted(d.correlation("a"), {})
    effects = d.send(event)
    state = step_state(progress_event(event, effects, d.execution, 5.0), d.execution)
    assert state is not None and state.active == ()
