"""Transition conditions: the safe parser and the evaluation rules."""

from __future__ import annotations

from typing import Any

import pytest

from microdcs.sfc import ConditionContext, ConditionSyntaxError, parse_condition
from microdcs.sfc.conditions import Predicate
from microdcs.sfc.errors import PredicateError


def holds(
    text: str,
    *,
    results: dict[str, dict[str, Any]] | None = None,
    params: dict[str, Any] | None = None,
    done: bool = False,
    failed: frozenset[str] = frozenset(),
    step_failed: bool = False,
    predicates: dict[str, Predicate] | None = None,
) -> bool:
    ctx = ConditionContext(
        results=results or {},
        parameters=params or {},
        failed=failed,
        done=done,
        step_failed=step_failed,
    )
    return parse_condition(text).evaluate(ctx, predicates or {})


def test_missing_condition_means_done() -> None:
    assert parse_condition(None).is_done
    assert parse_condition("  ").is_done


def test_true_and_false_are_literals() -> None:
    assert holds("true")
    assert not holds("false")


def test_done_reflects_the_source_steps() -> None:
    assert holds("done", done=True)
    assert not holds("done", done=False)


def test_comparison_over_merged_results() -> None:
    assert holds("result.temperature >= 180", results={"heat": {"temperature": 181}})
    assert not holds("result.temperature >= 180", results={"heat": {"temperature": 179.5}})


def test_merged_view_takes_the_most_recent_completion() -> None:
    results = {"first": {"t": 1}, "second": {"t": 2}}
    assert holds("result.t == 2", results=results)


def test_results_namespace_addresses_one_action() -> None:
    results = {"first": {"t": 1}, "second": {"t": 2}}
    assert holds("results.first.t == 1", results=results)


def test_nested_fields_are_reachable() -> None:
    assert holds("result.probe.value < 3", results={"a": {"probe": {"value": 2}}})


def test_param_namespace_reads_job_parameters() -> None:
    assert holds("param.RunsPlanned > 2", params={"RunsPlanned": 3})


def test_numeric_string_compares_as_number() -> None:
    assert holds("param.RunsPlanned > 2", params={"RunsPlanned": "3"})


def test_and_or_not_and_parentheses() -> None:
    results = {"a": {"ok": True, "n": 1}}
    assert holds("result.ok == true and not (result.n > 5 or false)", results=results)
    assert holds("false or result.ok", results=results)


def test_bare_name_is_true_only_for_boolean_true() -> None:
    assert not holds("result.n", results={"a": {"n": 1}})
    assert holds("result.ok", results={"a": {"ok": True}})


def test_missing_value_makes_ordering_false() -> None:
    assert not holds("result.absent > 0")
    assert not holds("result.absent <= 0")


def test_missing_value_is_unequal_to_a_number() -> None:
    assert holds("result.absent != 0")


def test_equality_distinguishes_booleans_from_numbers() -> None:
    assert not holds("result.flag == 1", results={"a": {"flag": True}})


def test_ordering_mixed_types_is_false() -> None:
    assert not holds("result.name > 3", results={"a": {"name": "abc"}})


def test_strings_compare_with_both_quote_styles() -> None:
    results = {"a": {"mode": "it's"}}
    assert holds("result.mode == 'it\\'s'", results=results)
    assert holds('result.mode == "it\'s"', results=results)


def test_negative_and_float_numbers() -> None:
    assert holds("result.x > -1.5e0", results={"a": {"x": -1}})


def test_failed_names_a_failed_action() -> None:
    assert holds("failed.heat", failed=frozenset({"heat"}))
    assert not holds("failed.heat", failed=frozenset({"cool"}))


def test_bare_failed_means_a_source_step_action_failed() -> None:
    assert holds("failed", step_failed=True)


def test_registered_predicate_is_called_with_the_context() -> None:
    seen: list[ConditionContext] = []

    def ready(ctx: ConditionContext) -> bool:
        seen.append(ctx)
        return ctx.parameters.get("go") == 1

    assert holds("ready and done", params={"go": 1}, done=True, predicates={"ready": ready})
    assert len(seen) == 1


def test_raising_predicate_becomes_predicate_error() -> None:
    def broken(ctx: ConditionContext) -> bool:
        raise RuntimeError("boom")

    with pytest.raises(PredicateError, match="boom"):
        holds("broken", predicates={"broken": broken})


def test_condition_reports_its_names() -> None:
    condition = parse_condition("failed.heat or results.cool.t > 1 or ready")
    assert condition.failed_actions == {"heat"}
    assert condition.result_actions == {"cool"}
    assert condition.predicates == {"ready"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("__import__('os').system('x')", "'__'"),
        ("result.__class__", "'__'"),
        ("os.system", "unknown namespace"),
        ("ready()", "function calls"),
        ("result.x(1)", "function calls"),
        ("result.x = 1", "'=='"),
        ("result.x[0] > 1", "unexpected character"),
        ("1 < result.x < 3", "chained"),
        ("result.x >", "ends too early"),
        ("(true", "missing ')'"),
        ("true true", "unexpected"),
        ("'open", "unterminated"),
        ("result", "needs a field"),
        ("failed.a.b", "exactly one action"),
        ("lambda: 1", "unexpected character"),
        ("result.x > 1; drop", "unexpected character"),
        ("and", "unexpected keyword"),
        ("result.", "expected a name"),
        ("not " * 40 + "true", "nested deeper"),
        ("(" * 40 + "true" + ")" * 40, "nested deeper"),
    ],
)
def test_dangerous_or_malformed_input_is_rejected(text: str, reason: str) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(text)
    assert reason in info.value.reason


def test_overlong_condition_is_rejected() -> None:
    with pytest.raises(ConditionSyntaxError, match="longer than"):
        parse_condition("true or " * 400 + "true")


def test_syntax_error_names_the_offset() -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition("result.x == @")
    assert info.value.position == 12
