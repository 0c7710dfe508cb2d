"""Recipe validation: every reason a recipe cannot run, collected in one pass.

Why collect rather than fail fast: the MES author fixes a rejected work master by hand,
so one :class:`RecipeValidationError` lists all problems. Name-level checks run first;
the graph checks (reachability, zero-time loops) only run on a recipe whose names are
sound, because the graph cannot be built otherwise.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

from microdcs.sfc.conditions import DONE, Condition, unknown_predicates
from microdcs.sfc.errors import ConditionSyntaxError, RecipeValidationError
from microdcs.sfc.graph import AWAITED, STORED, TIMED, Arc, expand, instant_cycle, reachable
from microdcs.sfc.parser import parse_condition
from microdcs_models.sfc_recipe import (
    SfcAction,
    SfcBranch,
    SfcBranchType,
    SfcQualifier,
    SfcRecipe,
)

logger = logging.getLogger(__name__)


def validate_recipe(recipe: SfcRecipe, predicates: Collection[str] = ()) -> None:
    """Raise :class:`RecipeValidationError` listing every problem of ``recipe``.

    ``predicates`` are the names the application registered; a bare name in a condition
    that is neither built-in nor registered is a problem.
    """
    problems, _, _ = check_recipe(recipe, predicates)
    if problems:
        raise RecipeValidationError(problems)


def check_recipe(
    recipe: SfcRecipe, predicates: Collection[str] = ()
) -> tuple[list[str], list[Condition], list[Arc]]:
    """Problems, parsed conditions (aligned with transitions) and arcs (if sound)."""
    problems: list[str] = []
    steps = [s.name for s in recipe.steps]
    branches = recipe.branches or []
    actions = recipe.actions or []
    _check_steps(recipe, problems)
    path_of = _check_branches(branches, set(steps), recipe, problems)
    conditions = _check_conditions(recipe, predicates, {a.name for a in actions}, problems)
    _check_transitions(recipe, path_of, problems)
    _check_actions(actions, set(steps), problems)
    _check_timeouts(recipe, path_of, problems)
    if problems:
        return problems, conditions, []
    arcs = expand(recipe, conditions)
    initial = next(s.name for s in recipe.steps if s.initial)
    # A timeout's step is reached from the arc's sources, like a target.
    jumps = [replace(arc, targets=(arc.on_timeout,)) for arc in arcs
             if arc.timeout and arc.on_timeout not in ("suspend", "abort")]  # fmt: skip
    unreachable = [s for s in steps if s not in reachable(initial, [*arcs, *jumps])]
    if unreachable:
        problems.append(f"unreachable steps: {', '.join(unreachable)}")
    waiting = {a.step for a in actions if a.qualifier in AWAITED}
    cycle = instant_cycle(arcs, set(steps) - waiting)
    if cycle:
        problems.append(
            f"steps {' -> '.join(cycle)} form a loop that fires in zero time (no awaited "
            "action and 'true'/'done' conditions); it would never stop"
        )
    return problems, conditions, arcs


def _duplicates(names: Sequence[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _check_steps(recipe: SfcRecipe, problems: list[str]) -> None:
    names = [s.name for s in recipe.steps]
    if not names:
        problems.append("the recipe has no steps")
    if any(not name for name in names):
        problems.append("a step has an empty name")
    if dupes := _duplicates(names):
        problems.append(f"duplicate step names: {', '.join(dupes)}")
    initial = [s.name for s in recipe.steps if s.initial]
    if names and not initial:
        problems.append("no initial step (exactly one step needs Initial: true)")
    if len(initial) > 1:
        problems.append(f"several initial steps: {', '.join(initial)}")


def _check_branches(
    branches: Sequence[SfcBranch], steps: set[str], recipe: SfcRecipe, problems: list[str]
) -> dict[str, tuple[str, int]]:
    """Map each path step to (branch, path index), reporting malformed branches."""
    names = [b.name for b in branches]
    if dupes := _duplicates(names):
        problems.append(f"duplicate branch names: {', '.join(dupes)}")
    if clash := sorted(steps & set(names)):
        problems.append(f"names used by both a step and a branch: {', '.join(clash)}")
    path_of: dict[str, tuple[str, int]] = {}
    initial = {s.name for s in recipe.steps if s.initial}
    for branch in branches:
        if not branch.branches:
            problems.append(f"branch {branch.name} has no paths")
        for index, path in enumerate(branch.branches):
            where = f"branch {branch.name} path {index + 1}"
            if not path:
                problems.append(f"{where} is empty")
            for step in path:
                if step not in steps:
                    problems.append(f"{where} names unknown step {step}")
                elif step in path_of:
                    problems.append(f"step {step} appears in more than one branch path")
                elif step in initial:
                    problems.append(f"initial step {step} cannot be inside {where}")
                else:
                    path_of[step] = (branch.name, index)
        if branch.type is SfcBranchType.SELECTION:
            chosen = {t.target for t in recipe.transitions if t.source == branch.name}
            for index, path in enumerate(branch.branches):
                if path and path[0] in steps and path[0] not in chosen:
                    problems.append(
                        f"selection branch {branch.name}: no transition from {branch.name} "
                        f"to {path[0]} chooses path {index + 1}"
                    )
    return path_of


def _check_conditions(
    recipe: SfcRecipe, predicates: Collection[str], actions: set[str], problems: list[str]
) -> list[Condition]:
    conditions: list[Condition] = []
    for t in recipe.transitions:
        where = f"transition {t.source} -> {t.target}"
        try:
            condition = parse_condition(t.condition)
        except ConditionSyntaxError as exc:
            problems.append(f"{where}: {exc.message}")
            conditions.append(DONE)
            continue
        conditions.append(condition)
        if unknown := unknown_predicates(condition, predicates):
            problems.append(f"{where}: unknown predicates {', '.join(sorted(unknown))}")
        for name in sorted((condition.failed_actions | condition.result_actions) - actions):
            problems.append(f"{where}: condition names unknown action {name}")
    return conditions


def _check_transitions(
    recipe: SfcRecipe, path_of: dict[str, tuple[str, int]], problems: list[str]
) -> None:
    branches = {b.name: b for b in recipe.branches or []}
    nodes = {s.name for s in recipe.steps} | set(branches)
    for t in recipe.transitions:
        where = f"transition {t.source} -> {t.target}"
        for end in (t.source, t.target):
            if end not in nodes:
                problems.append(f"{where} names unknown step or branch {end}")
        if t.source not in nodes or t.target not in nodes:
            continue
        if t.source == t.target and not (t.condition or "").strip():
            problems.append(f"{where} loops on itself without a condition")
        source_path, target_path = path_of.get(t.source), path_of.get(t.target)
        if source_path and source_path != target_path:
            problems.append(
                f"{where} leaves the path of branch {source_path[0]}; only a transition "
                f"from {source_path[0]} may leave it"
            )
        if target_path and source_path != target_path:
            branch = branches[target_path[0]]
            first = branch.branches[target_path[1]][0] == t.target
            if t.source != branch.name:
                problems.append(
                    f"{where} enters branch {branch.name} from outside; target the branch"
                )
            elif branch.type is SfcBranchType.SIMULTANEOUS:
                problems.append(f"{where}: simultaneous branch {branch.name} cannot choose")
            elif not first:
                problems.append(f"{where} must choose the first step of a path")


def _check_timeouts(
    recipe: SfcRecipe, path_of: dict[str, tuple[str, int]], problems: list[str]
) -> None:
    steps = {s.name for s in recipe.steps}
    watchdog = recipe.watchdog_seconds
    if watchdog is not None and (not math.isfinite(watchdog) or watchdog < 0):
        problems.append("WatchdogSeconds must be a finite number >= 0")
    for t in recipe.transitions:
        where = f"transition {t.source} -> {t.target}"
        seconds = t.timeout_seconds
        if seconds is not None and (not math.isfinite(seconds) or seconds < 0):
            problems.append(f"{where}: TimeoutSeconds must be a finite number >= 0")
        target = t.on_timeout
        if target is None or target in ("suspend", "abort"):
            continue
        if not seconds:
            problems.append(f"{where}: OnTimeout means nothing without TimeoutSeconds")
        if target not in steps:
            problems.append(f"{where}: OnTimeout names unknown step {target} (or suspend, abort)")
        elif target in path_of:
            problems.append(f"{where}: OnTimeout step {target} is inside a branch path")


def recipe_warnings(recipe: SfcRecipe) -> list[str]:
    """What may stall a valid recipe silently: a selection branch that can wait forever.

    A selection branch whose choices all have a condition (none is ``true``/``done``)
    and no timeout on the transition into it or on a choice leaves the job Running with
    nothing to do when every condition is false. Not an error: the data may make it
    impossible, and a recipe-level watchdog still catches it at run time.
    """
    warnings: list[str] = []
    for branch in recipe.branches or []:
        if branch.type is not SfcBranchType.SELECTION:
            continue
        into = [t for t in recipe.transitions if t.target == branch.name]
        choices = [t for t in recipe.transitions if t.source == branch.name]
        firsts = {path[0] for path in branch.branches if path}
        choices = [t for t in choices if t.target in firsts]
        default = any(_always(t.condition) for t in choices)
        timeout = any(t.timeout_seconds for t in into + choices)
        if not default and not timeout:
            warnings.append(
                f"selection branch {branch.name} has no default choice (condition true or "
                "done) and no TimeoutSeconds: when no condition holds the job waits forever"
                + ("" if recipe.watchdog_seconds else " (and the recipe has no WatchdogSeconds)")
            )
    return warnings


def _always(text: str | None) -> bool:
    try:
        condition = parse_condition(text)
    except ConditionSyntaxError:
        return False
    return condition.is_instant or condition.is_done


def _check_actions(actions: Sequence[SfcAction], steps: set[str], problems: list[str]) -> None:
    keys = [f"{a.step}/{a.name}" for a in actions]
    if dupes := _duplicates(keys):
        problems.append(f"duplicate actions (step/name): {', '.join(dupes)}")
    stored = {a.name for a in actions if a.qualifier in STORED}
    for a in actions:
        where = f"action {a.name} of step {a.step}"
        q = a.qualifier
        if not a.name:
            problems.append(f"an action of step {a.step} has an empty name")
        if a.step not in steps:
            problems.append(f"{where} names unknown step {a.step}")
        if q in TIMED and a.time is None:
            problems.append(f"{where}: qualifier {q.value} needs a Time")
        if q not in TIMED and a.time is not None:
            problems.append(f"{where}: Time means nothing for qualifier {q.value}")
        for label, value in (("Time", a.time), ("TimeoutSeconds", a.timeout_seconds)):
            if value is not None and (not math.isfinite(value) or value < 0):
                problems.append(f"{where}: {label} must be a finite number >= 0")
        if q is SfcQualifier.R:
            if a.name not in stored:
                problems.append(f"{where}: R resets no stored (S, SD, DS, SL) action {a.name}")
            if a.timeout_seconds is not None:
                problems.append(f"{where}: TimeoutSeconds means nothing for qualifier R")
        elif not a.type_id.strip():
            problems.append(f"{where}: {a.interaction.value} needs a TypeId")


class RecipeValidation:
    """The job processor's recipe validator: work master data checked as an SFC recipe.

    Built with the predicate names the replica registers, before the job processor, so
    no one patches the names in afterwards.
    """

    def __init__(self, predicates: Collection[str] = ()) -> None:
        self.predicates = frozenset(predicates)

    def __call__(self, recipe_data: Any) -> None:
        recipe = SfcRecipe.from_raw(recipe_data)
        validate_recipe(recipe, self.predicates)
        for warning in recipe_warnings(recipe):
            logger.warning("SFC recipe: %s", warning)
