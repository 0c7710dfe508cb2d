"""Conditions on plant data tags: the safe parser, evaluation, evolution and the watches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.plantdata.contract import Quality, TagChange, TagSample, TagValue
from microdcs.sfc import (
    ConditionContext,
    ConditionSyntaxError,
    EventIgnored,
    ExecutionStatus,
    Reevaluate,
    Start,
    compile_recipe,
    evolve,
    new_execution,
    parse_condition,
)
from microdcs.sfc.conditions import TagRead
from microdcs.sfc.engine.plan import WorkItem, plan_change
from microdcs.sfc.engine.tagwatch import changed_since, changed_tags, read_tags
from tests.unit.test_sfc_support import recipe

OVEN = 'tag("oven1.temp") > 180 and quality("oven1.temp") == "good"'


def sample(tag: str, value: TagValue | None, quality: Quality = Quality.GOOD) -> TagSample:
    return TagSample(tag, value, quality, source_time=1.0, receive_time=1.0)


def holds(text: str, *samples: TagSample, **context: Any) -> bool:
    ctx = ConditionContext(tags={s.tag: s for s in samples}, **context)
    return parse_condition(text).evaluate(ctx, {})


# -- parser -----------------------------------------------------------------------------
def test_a_condition_names_the_tags_it_reads() -> None:
    condition = parse_condition(OVEN + ' or tag("line.speed") == 0 or result.ok')
    assert condition.tags == {"oven1.temp", "line.speed"}


def test_tag_and_quality_parse_into_static_tag_reads() -> None:
    condition = parse_condition("quality('a b/c{d}') != 'bad'")
    assert condition.root.left == TagRead("quality", "a b/c{d}")  # type: ignore[union-attr]


def test_a_condition_without_tags_reads_none() -> None:
    assert parse_condition("done and result.x > 1").tags == frozenset()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("tag", "reads a tag"),
        ("quality == 'good'", "reads a tag"),
        ("tag(oven1.temp) > 1", "quoted string"),
        ("tag(1) > 1", "quoted string"),
        ("tag(param.Tag) > 1", "quoted string"),
        ("tag('a' 'b')", "exactly one tag name"),
        ("tag('a'", "exactly one tag name"),
        ("tag('')", "1 to 256 characters"),
        ("tag('" + "x" * 257 + "')", "1 to 256 characters"),
        ("tag('a\x01')", "control characters"),
        ("tag('a').b", "unexpected '.'"),
        ("tag.x > 1", "reads a tag"),
        ("read('oven1.temp')", "function calls"),
        ("tag('a')('b')", "unexpected '\\('"),
    ],
)
def test_only_a_tag_named_by_one_string_literal_is_accepted(text: str, reason: str) -> None:
    with pytest.raises(ConditionSyntaxError, match=reason):
        parse_condition(text)


def test_a_predicate_cannot_be_called_like_a_tag_read() -> None:
    with pytest.raises(ConditionSyntaxError, match="function calls"):
        parse_condition("ready('oven1.temp')")


# -- evaluation -------------------------------------------------------------------------
def test_a_tag_value_is_compared_like_any_value() -> None:
    assert holds(OVEN, sample("oven1.temp", 190))
    assert not holds(OVEN, sample("oven1.temp", 170))
    assert holds('tag("mode") == "auto"', sample("mode", "auto"))
    assert holds('tag("door") == false', sample("door", False))
    assert not holds('tag("door") == 0', sample("door", False))


def test_quality_is_one_of_good_uncertain_bad() -> None:
    assert not holds(OVEN, sample("oven1.temp", 190, Quality.UNCERTAIN))
    assert holds('quality("oven1.temp") == "bad"', sample("oven1.temp", 190, Quality.BAD))


def test_a_tag_without_a_value_or_not_configured_reads_none() -> None:
    assert not holds('tag("oven1.temp") > 180')
    assert not holds('tag("oven1.temp") < 180', sample("oven1.temp", None, Quality.BAD))
    assert holds('quality("oven1.temp") == "bad"', sample("oven1.temp", None, Quality.BAD))
    assert not holds('quality("oven1.temp") == "bad"')
    assert holds('quality("oven1.temp") != "good"')


def test_tag_reads_combine_with_done_and_results() -> None:
    hot = sample("oven1.temp", 190)
    assert holds("done and " + OVEN, hot, done=True)
    assert not holds("done and " + OVEN, hot, done=False)
    results = {"heat": {"target": 185}}
    assert holds('tag("oven1.temp") >= results.heat.target', hot, results=results)


# -- evolution --------------------------------------------------------------------------
WAIT = compile_recipe(recipe(["Heat", "Bake"], [("Heat", "Bake", OVEN)]))


def test_the_compiled_recipe_knows_every_tag_it_reads() -> None:
    assert WAIT.tags == {"oven1.temp"}
    assert WAIT.watched_tags(["Heat"]) == {"oven1.temp"}
    assert WAIT.watched_tags(["Bake"]) == frozenset()


def test_a_tag_only_arc_of_a_convergence_is_watched_once_every_source_is_active() -> None:
    chart = compile_recipe(
        recipe(["A", "B", "C", "D"], [("A", "B"), ("A", "C"), ("B", "D", "tag('t') == 1")])
    )
    assert chart.watched_tags(["B"]) == {"t"}
    assert chart.watched_tags(["A", "C"]) == frozenset()


def test_a_waiting_transition_fires_when_reevaluated_with_the_new_value() -> None:
    started, _ = evolve(
        WAIT, new_execution("J"), Start(), 0.0, tags={"oven1.temp": sample("oven1.temp", 170)}
    )
    assert started.active == ("Heat",)
    hot = {"oven1.temp": sample("oven1.temp", 190)}
    fired, _ = evolve(WAIT, started, Reevaluate(), 1.0, tags=hot)
    assert fired.status is ExecutionStatus.COMPLETED


def test_a_condition_already_true_at_start_fires_at_once() -> None:
    hot = {"oven1.temp": sample("oven1.temp", 190)}
    done, _ = evolve(WAIT, new_execution("J"), Start(), 0.0, tags=hot)
    assert done.status is ExecutionStatus.COMPLETED


def test_a_reevaluation_that_fires_nothing_stores_nothing() -> None:
    cold = {"oven1.temp": sample("oven1.temp", 170)}
    started, _ = evolve(WAIT, new_execution("J"), Start(), 0.0, tags=cold)
    again, effects = evolve(WAIT, started, Reevaluate(), 1.0, tags=cold)
    assert again is started
    assert [type(e) for e in effects] == [EventIgnored]


# -- the engine's watches ---------------------------------------------------------------
def test_an_execution_watches_the_tags_of_its_enabled_transitions_until_it_leaves() -> None:
    cold = {"oven1.temp": sample("oven1.temp", 170)}
    old = new_execution("J")
    started, effects = evolve(WAIT, old, Start(), 0.0, tags=cold)
    plan = plan_change(WAIT, old, started, effects, now=0.0, resend_after=5.0)
    assert plan.sets == ["tagwatch:oven1.temp"]
    assert plan.ops == ["sa", 4, "J"]
    assert plan.watched == {"oven1.temp"}
    hot = {"oven1.temp": sample("oven1.temp", 190)}
    ended, effects = evolve(WAIT, started, Reevaluate(), 1.0, tags=hot)
    plan = plan_change(WAIT, started, ended, effects, now=1.0, resend_after=5.0)
    assert plan.ops[-3:] == ["sr", 4, "J"]
    assert plan.watched == frozenset()


def test_a_recipe_without_tags_plans_no_watch() -> None:
    chart = compile_recipe(recipe(["A", "B"], [("A", "B", "param.go")]))
    old = new_execution("J")
    new, effects = evolve(chart, old, Start(), 0.0)
    plan = plan_change(chart, old, new, effects, now=0.0, resend_after=5.0)
    assert plan.sets == [] and plan.watched == frozenset()


def test_a_tags_work_item_is_a_reevaluation() -> None:
    item = WorkItem.from_fields({b"k": b"tags", b"j": b"J"})
    assert item.job_id == "J" and item.event() == Reevaluate()


def test_only_a_new_value_or_quality_counts_as_a_change() -> None:
    old = sample("a", 1)
    changes = [
        TagChange("s", sample("a", 1), old),  # a newer timestamp only
        TagChange("s", sample("b", 2), None),  # a first value
        TagChange("s", sample("c", 2), sample("c", 1)),
        TagChange("s", sample("d", 1, Quality.BAD), sample("d", 1)),
        TagChange("s", sample("e", True), sample("e", 1)),  # 1 == True, another type
    ]
    assert changed_tags(changes) == ["b", "c", "d", "e"]


@pytest.mark.parametrize("name", ["tag", "quality"])
def test_a_predicate_cannot_take_the_name_of_a_tag_function(name: str) -> None:
    binder = Binder(AppConfig(), lambda *a: None, lambda t: None)
    with pytest.raises(ValueError):
        binder.predicate(name)


class Reader:
    def __init__(self, **samples: TagSample) -> None:
        self.samples = samples
        self.reads: list[list[str]] = []

    async def read(self, scope: str, tags: Sequence[str]) -> Mapping[str, TagSample]:
        self.reads.append(list(tags))
        return {t: self.samples[t] for t in tags if t in self.samples}


async def test_a_recipe_without_tags_reads_nothing() -> None:
    reader = Reader()
    chart = compile_recipe(recipe(["A", "B"], [("A", "B", "param.go")]))
    assert await read_tags(reader, "s", chart) == {}
    assert await read_tags(None, "s", WAIT) == {}
    assert reader.reads == []


async def test_a_change_stored_before_the_watch_is_found_by_the_read_after_the_cas() -> None:
    reader = Reader(**{"oven1.temp": sample("oven1.temp", 170)})
    snapshot = await read_tags(reader, "s", WAIT)
    assert not await changed_since(reader, "s", {"oven1.temp"}, snapshot)
    reader.samples["oven1.temp"] = sample("oven1.temp", 190)  # stored meanwhile
    assert await changed_since(reader, "s", {"oven1.temp"}, snapshot)
    assert not await changed_since(reader, "s", set(), snapshot)
