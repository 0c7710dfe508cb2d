"""Recipe validation: each rule of sfc.md rejected with a clear, complete error."""

from __future__ import annotations

import pytest

from microdcs.core.errors import InputError
from microdcs.sfc import RecipeValidationError, compile_recipe, validate_recipe
from microdcs_models.sfc_recipe import SfcRecipe
from tests.unit.test_sfc_support import act, branch, recipe


def problems(r: SfcRecipe, predicates: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(RecipeValidationError) as info:
        validate_recipe(r, predicates)
    return list(info.value.problems)


def one_problem(r: SfcRecipe, fragment: str, predicates: tuple[str, ...] = ()) -> None:
    found = problems(r, predicates)
    assert len(found) == 1, found
    assert fragment in found[0], found


def test_valid_recipe_passes() -> None:
    validate_recipe(recipe(["A", "B"], [("A", "B")], [act("a", "A")]))


def test_error_is_an_input_error_of_kind_invalid_recipe() -> None:
    with pytest.raises(InputError) as info:
        validate_recipe(recipe(["A"], [("A", "X")]))
    assert info.value.kind == "invalid_recipe"
    assert "unknown step or branch X" in info.value.message


def test_every_problem_is_listed() -> None:
    r = recipe(["A", "B", "B"], [("A", "X")], [act("a", "Q")])
    assert problems(r) == [
        "duplicate step names: B",
        "transition A -> X names unknown step or branch X",
        "action a of step Q names unknown step Q",
    ]


def test_no_steps() -> None:
    one_problem(recipe([], [], initial=""), "no steps")


def test_no_initial_step() -> None:
    one_problem(recipe(["A"], [], initial="none"), "no initial step")


def test_several_initial_steps() -> None:
    r = recipe(["A", "B"], [("A", "B")])
    assert r.steps[1].name == "B"
    r.steps[1].initial = True
    one_problem(r, "several initial steps: A, B")


def test_duplicate_step_names() -> None:
    one_problem(recipe(["A", "B", "B"], [("A", "B")]), "duplicate step names: B")


def test_duplicate_branch_names() -> None:
    r = recipe(
        ["A", "B", "C"],
        [("A", "P"), ("P", "A", "false")],
        branches=[branch("P", "simultaneous", ["B"]), branch("P", "simultaneous", ["C"])],
    )
    assert "duplicate branch names: P" in problems(r)


def test_branch_name_clashing_with_step() -> None:
    r = recipe(["A", "B"], [("A", "B")], branches=[branch("B", "simultaneous", ["A"])])
    assert any("both a step and a branch: B" in p for p in problems(r))


def test_unknown_transition_source() -> None:
    one_problem(recipe(["A"], [("X", "A", "true")]), "unknown step or branch X")


def test_unknown_action_step() -> None:
    one_problem(recipe(["A"], [], [act("a", "Z")]), "unknown step Z")


def test_duplicate_actions_in_a_step() -> None:
    one_problem(recipe(["A"], [], [act("a", "A"), act("a", "A", "P")]), "duplicate actions")


def test_unreachable_step() -> None:
    one_problem(recipe(["A", "B", "C"], [("A", "B"), ("C", "B")]), "unreachable steps: C")


def test_self_loop_without_condition() -> None:
    one_problem(recipe(["A"], [("A", "A")], [act("a", "A")]), "loops on itself")


def test_self_loop_with_condition_is_allowed() -> None:
    validate_recipe(recipe(["A", "B"], [("A", "A", "result.again"), ("A", "B")], [act("a", "A")]))


@pytest.mark.parametrize("qualifier", ["L", "D", "SD", "DS", "SL"])
def test_timed_qualifier_needs_time(qualifier: str) -> None:
    r = recipe(["A"], [], [act("a", "A", qualifier), act("r", "A", "R")])
    found = problems(r)
    assert any(f"qualifier {qualifier} needs a Time" in p for p in found), found


@pytest.mark.parametrize("qualifier", ["N", "P", "P0", "P1", "S"])
def test_time_is_meaningless_for_untimed_qualifiers(qualifier: str) -> None:
    one_problem(recipe(["A"], [], [act("a", "A", qualifier, time=3)]), "Time means nothing")


def test_negative_timeout() -> None:
    one_problem(recipe(["A"], [], [act("a", "A", timeout=-1)]), "TimeoutSeconds must be")


def test_negative_time() -> None:
    one_problem(recipe(["A"], [], [act("a", "A", "D", time=-2)]), "Time must be")


def test_infinite_time() -> None:
    one_problem(recipe(["A"], [], [act("a", "A", "L", time=float("inf"))]), "finite")


def test_reset_without_stored_action() -> None:
    one_problem(recipe(["A"], [], [act("x", "A", "R")]), "R resets no stored")


def test_reset_of_stored_action_in_another_step_is_valid() -> None:
    validate_recipe(recipe(["A", "B"], [("A", "B")], [act("h", "A", "S"), act("h", "B", "R")]))


def test_reset_with_timeout_is_meaningless() -> None:
    r = recipe(["A", "B"], [("A", "B")], [act("h", "A", "S"), act("h", "B", "R", timeout=1)])
    one_problem(r, "TimeoutSeconds means nothing for qualifier R")


@pytest.mark.parametrize("interaction", ["push_command", "pull_event"])
def test_interaction_without_type_id(interaction: str) -> None:
    r = recipe(["A"], [], [act("a", "A", type_id=" ", interaction=interaction)])
    one_problem(r, f"{interaction} needs a TypeId")


def test_malformed_condition_is_reported_with_its_transition() -> None:
    one_problem(recipe(["A", "B"], [("A", "B", "result.x >")]), "transition A -> B: condition")


def test_unknown_predicate() -> None:
    one_problem(recipe(["A", "B"], [("A", "B", "ready")]), "unknown predicates ready")


def test_registered_predicate_is_accepted() -> None:
    validate_recipe(recipe(["A", "B"], [("A", "B", "ready")]), ["ready"])


def test_condition_naming_unknown_action() -> None:
    one_problem(recipe(["A", "B"], [("A", "B", "failed.ghost")]), "unknown action ghost")


def test_branch_without_paths() -> None:
    r = recipe(["A", "B"], [("A", "P"), ("P", "B")], branches=[branch("P", "simultaneous")])
    assert "branch P has no paths" in problems(r)


def test_branch_with_empty_path() -> None:
    r = recipe(
        ["A", "B", "C"],
        [("A", "P"), ("P", "C")],
        branches=[branch("P", "simultaneous", ["B"], [])],
    )
    one_problem(r, "branch P path 2 is empty")


def test_branch_path_with_unknown_step() -> None:
    r = recipe(
        ["A", "B", "C"],
        [("A", "P"), ("P", "C")],
        branches=[branch("P", "simultaneous", ["B"], ["Z"])],
    )
    one_problem(r, "branch P path 2 names unknown step Z")


def test_step_in_two_paths() -> None:
    r = recipe(
        ["A", "B", "C"],
        [("A", "P"), ("P", "C")],
        branches=[branch("P", "simultaneous", ["B"], ["B"])],
    )
    one_problem(r, "more than one branch path")


def test_initial_step_inside_a_branch() -> None:
    r = recipe(["A", "B"], [("P", "B")], branches=[branch("P", "simultaneous", ["A"])])
    assert any("initial step A cannot be inside" in p for p in problems(r))


def test_selection_path_without_choice() -> None:
    r = recipe(
        ["A", "B", "C", "D"],
        [("A", "P"), ("P", "B", "true"), ("P", "D")],
        branches=[branch("P", "selection", ["B"], ["C"])],
    )
    one_problem(r, "no transition from P to C chooses path 2")


def test_transition_leaving_a_path() -> None:
    r = recipe(
        ["A", "B", "C", "D"],
        [("A", "P"), ("P", "D"), ("B", "D")],
        branches=[branch("P", "simultaneous", ["B"], ["C"])],
    )
    one_problem(r, "leaves the path of branch P")


def test_transition_entering_a_path_from_outside() -> None:
    r = recipe(
        ["A", "B", "C", "D"],
        [("A", "P"), ("P", "D"), ("A", "C", "false")],
        branches=[branch("P", "simultaneous", ["B"], ["C"])],
    )
    one_problem(r, "enters branch P from outside")


def test_simultaneous_branch_cannot_choose() -> None:
    r = recipe(
        ["A", "B", "C", "D"],
        [("A", "P"), ("P", "B"), ("P", "D")],
        branches=[branch("P", "simultaneous", ["B"], ["C"])],
    )
    one_problem(r, "simultaneous branch P cannot choose")


def test_selection_choice_must_target_a_first_step() -> None:
    r = recipe(
        ["A", "B", "C", "D"],
        [("A", "P"), ("P", "B"), ("P", "C"), ("P", "D")],
        branches=[branch("P", "selection", ["B", "C"])],
    )
    one_problem(r, "must choose the first step of a path")


def test_zero_time_loop_of_actionless_steps() -> None:
    r = recipe(["A", "B", "C"], [("A", "B"), ("B", "C", "true"), ("C", "B")])
    one_problem(r, "B -> C -> B form a loop that fires in zero time")


def test_true_self_loop_of_a_step_with_actions_is_a_zero_time_loop() -> None:
    r = recipe(["A", "B"], [("A", "A", "true"), ("A", "B", "false")], [act("a", "A")])
    one_problem(r, "A -> A form a loop")


def test_loop_through_a_step_with_actions_is_accepted() -> None:
    r = recipe(
        ["A", "B", "C"],
        [("A", "B"), ("B", "A", "result.again", 1), ("B", "C", "true", 2)],
        [act("a", "A")],
    )
    validate_recipe(r)


def test_compile_raises_the_same_error() -> None:
    with pytest.raises(RecipeValidationError, match="no initial step"):
        compile_recipe(recipe(["A"], [], initial="none"))
