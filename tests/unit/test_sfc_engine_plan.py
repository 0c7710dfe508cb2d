"""The engine's pure planning: Redis operations and stored effects of one change."""

from __future__ import annotations

from microdcs.sfc import (
    ActionCompleted,
    DispatchAction,
    JobCompleted,
    Start,
    TimerDue,
    compile_recipe,
    evolve,
    new_execution,
)
from microdcs.sfc.engine.keys import RESEND, timer_member
from microdcs.sfc.engine.plan import (
    WorkItem,
    decode_effects,
    encode_effects,
    plan_change,
    response_data,
)
from microdcs_models.sfc_recipe import SfcRecipe

RECIPE = compile_recipe(
    SfcRecipe.from_raw(
        {
            "Steps": [{"Name": "A", "Initial": True}, {"Name": "B"}],
            "Actions": [
                {"Name": "cmd", "Step": "A", "Qualifier": "N", "Interaction": "push_command",
                 "TypeId": "t.cmd"},
                {"Name": "evt", "Step": "B", "Qualifier": "D", "Interaction": "pull_event",
                 "TypeId": "t.evt", "Time": 1.0},
            ],
            "Transitions": [{"Source": "A", "Target": "B"}],
        }
    )
)  # fmt: skip


def test_a_dispatched_command_is_indexed_and_gets_an_overdue_timer() -> None:
    old = new_execution("J")
    new, effects = evolve(RECIPE, old, Start(), 100.0)
    plan = plan_change(RECIPE, old, new, effects, now=100.0, resend_after=5.0)
    corr = new.running[0].correlation_id
    assert plan.ops == ["ha", corr, "J", "za", timer_member("J", RESEND + corr), 105.0]
    assert [type(e) for e in plan.external] == [DispatchAction]


def test_a_completed_command_leaves_the_index_and_a_delay_timer_is_scheduled() -> None:
    started, _ = evolve(RECIPE, new_execution("J"), Start(), 0.0)
    corr = started.running[0].correlation_id
    new, effects = evolve(RECIPE, started, ActionCompleted(corr, {"x": 1}), 1.0)
    plan = plan_change(RECIPE, started, new, effects, now=1.0, resend_after=5.0)
    assert ["hr", corr, ""] == plan.ops[3:6]
    assert ["zr", timer_member("J", RESEND + corr), ""] == plan.ops[6:9]
    assert plan.ops[0] == "za" and plan.ops[2] == 2.0  # the D timer, 1 s after entry
    assert plan.external == []


def test_an_awaited_event_is_indexed_in_the_pull_set_of_its_type() -> None:
    started, _ = evolve(RECIPE, new_execution("J"), Start(), 0.0)
    corr = started.running[0].correlation_id
    in_b, effects = evolve(RECIPE, started, ActionCompleted(corr, {}), 1.0)
    key = next(iter(in_b.timers))
    new, effects = evolve(RECIPE, in_b, TimerDue(key), 2.0)
    plan = plan_change(RECIPE, in_b, new, effects, now=2.0, resend_after=5.0)
    evt = new.running[0].correlation_id
    assert plan.pull_types == ["t.evt"]
    assert ["sa", 4, evt] == plan.ops[-3:]


def test_effects_survive_the_round_trip_through_storage() -> None:
    old = new_execution("J")
    new, effects = evolve(RECIPE, old, Start(), 0.0)
    plan = plan_change(RECIPE, old, new, effects, now=0.0, resend_after=5.0)
    stored = [*plan.external, JobCompleted({"cmd": {"x": 1}})]
    assert decode_effects(encode_effects(stored), "J") == stored


def test_work_items_of_timers_carry_the_job_and_key() -> None:
    item = WorkItem.from_fields({b"k": b"timer", b"m": timer_member("J/1", "A/evt:delay").encode()})
    assert (item.job_id, item.timer) == ("J/1", "A/evt:delay")
    assert not item.is_resend
    assert WorkItem.from_fields({b"k": b"timer", b"m": b"J\x1f~resend:c"}).is_resend


def test_action_results_become_one_response_parameter_per_action() -> None:
    data = response_data({"cut": {"Length": 120}})
    assert [(p.id, p.value) for p in data] == [("cut", {"Length": 120})]
