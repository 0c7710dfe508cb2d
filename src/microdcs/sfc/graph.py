"""Expansion of a recipe into arcs: the firing rules the evolution actually runs.

A recipe speaks of steps, branches and transitions between them; the evolution only
needs *arcs*: "when all these steps are active and this condition holds, deactivate
them and activate those". Expanding branches into arcs once (at compile time) keeps
the per-event evolution free of branch bookkeeping:

- ``X -> B`` into a simultaneous branch: one arc from ``X`` to the first step of every
  path. Into a selection branch: one arc per choice ``B -> first`` (condition of both
  transitions, ordered by their priorities).
- ``B -> Y`` out of a simultaneous branch: one arc from the last steps of all paths
  (convergence waits for every path). Out of a selection branch: one arc per path.
- Consecutive steps of a path are linked by an implicit ``done`` arc unless the recipe
  declares that transition itself.

The expansion assumes names are valid; :mod:`microdcs.sfc.validation` checks them first.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from microdcs.sfc.conditions import DONE, BoolOp, Condition
from microdcs_models.sfc_recipe import (
    SfcBranch,
    SfcBranchType,
    SfcQualifier,
    SfcRecipe,
    SfcTransition,
)

Q = SfcQualifier
#: Qualifiers that take a ``Time``.
TIMED = frozenset({Q.L, Q.D, Q.SD, Q.DS, Q.SL})
#: Qualifiers whose action stays set after its step ends, until an R resets it.
STORED = frozenset({Q.S, Q.SD, Q.DS, Q.SL})
#: Qualifiers whose action the step waits for before ``done`` holds. Not P0 (it runs on
#: exit), not R (instantaneous), not SD (it starts whether or not the step is active).
AWAITED = frozenset({Q.N, Q.P, Q.P1, Q.S, Q.L, Q.D, Q.DS, Q.SL})


@dataclass(frozen=True)
class Arc:
    """One firing rule: all ``sources`` active and ``condition`` true -> ``targets``."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    condition: Condition
    #: Sort key: lower fires first among arcs competing for a step (priority, then order
    #: of declaration; a selection choice adds its own priority and declaration index).
    order: tuple[int, ...]
    label: str
    #: Seconds the arc may wait once its sources are all active (None: forever).
    timeout: float | None = None
    #: What its timeout does: ``suspend``, ``abort`` or the name of a step to go to.
    on_timeout: str = "suspend"


def both(first: Condition, second: Condition) -> Condition:
    """Conjunction of two conditions evaluated against the same source steps."""
    if first.is_instant:
        return second
    if second.is_instant:
        return first
    return Condition(
        f"({first.text}) and ({second.text})", BoolOp("and", (first.root, second.root))
    )


def _priority(transition: SfcTransition) -> int:
    return transition.priority if transition.priority is not None else 0


def is_choice(transition: SfcTransition, branches: Mapping[str, SfcBranch]) -> bool:
    """``B -> first step of a path`` of a selection branch ``B``: a choice, not an exit."""
    branch = branches.get(transition.source)
    return (
        branch is not None
        and branch.type is SfcBranchType.SELECTION
        and any(path and path[0] == transition.target for path in branch.branches)
    )


def expand(recipe: SfcRecipe, conditions: Sequence[Condition]) -> list[Arc]:
    """Arcs of a name-valid recipe; ``conditions[i]`` is transition ``i`` parsed."""
    branches = {b.name: b for b in recipe.branches or []}
    transitions = list(zip(recipe.transitions, conditions, strict=True))
    choices: dict[str, list[tuple[SfcTransition, Condition, tuple[int, int]]]] = {}
    for index, (t, cond) in enumerate(transitions):
        if is_choice(t, branches):
            choices.setdefault(t.source, []).append((t, cond, (_priority(t), index)))
    arcs: list[Arc] = []
    for index, (t, cond) in enumerate(transitions):
        if is_choice(t, branches):
            continue
        source_branch = branches.get(t.source)
        if source_branch is None:
            source_sets: list[tuple[str, ...]] = [(t.source,)]
        elif source_branch.type is SfcBranchType.SIMULTANEOUS:
            source_sets = [tuple(path[-1] for path in source_branch.branches)]
        else:
            source_sets = [(path[-1],) for path in source_branch.branches]
        target_branch = branches.get(t.target)
        # (targets, condition, order, timing transition): the timeout of ``X -> B`` rides
        # on its first choice only (one timer for the wait), a choice's own on itself.
        options: list[tuple[tuple[str, ...], Condition, tuple[int, ...], SfcTransition]]
        if target_branch is None:
            options = [((t.target,), cond, (), t)]
        elif target_branch.type is SfcBranchType.SIMULTANEOUS:
            options = [(tuple(path[0] for path in target_branch.branches), cond, (), t)]
        else:
            ordered = sorted(choices.get(t.target, []), key=lambda x: x[2])
            options = [
                ((c.target,), both(cond, c_cond), key,
                 c if c.timeout_seconds or i else t)
                for i, (c, c_cond, key) in enumerate(ordered)
            ]  # fmt: skip
        for sources in source_sets:
            for targets, condition, extra, timing in options:
                label = f"{t.source} -> {t.target}"
                if len(targets) == 1 and targets[0] != t.target:
                    label += f" -> {targets[0]}"
                arcs.append(
                    Arc(sources, targets, condition, (_priority(t), index, *extra), label,
                        timing.timeout_seconds or None, timing.on_timeout or "suspend")
                )  # fmt: skip
    declared = {(t.source, t.target) for t in recipe.transitions}
    implicit = len(transitions)
    for branch in branches.values():
        for path in branch.branches:
            for before, after in itertools.pairwise(path):
                if (before, after) not in declared:
                    arcs.append(
                        Arc((before,), (after,), DONE, (0, implicit), f"{before} -> {after}")
                    )
                    implicit += 1
    arcs.sort(key=lambda arc: arc.order)
    return arcs


def reachable(initial: str, arcs: Sequence[Arc]) -> set[str]:
    """Steps that can become active; an AND-join needs all its sources reachable."""
    seen = {initial}
    grew = True
    while grew:
        grew = False
        for arc in arcs:
            if set(arc.sources) <= seen and not set(arc.targets) <= seen:
                seen.update(arc.targets)
                grew = True
    return seen


def instant_cycle(arcs: Sequence[Arc], instant_steps: set[str]) -> list[str] | None:
    """A cycle of arcs that can all fire in zero time, or ``None``.

    An arc is instant when its condition is ``true``, or ``done`` over steps that wait
    for no action. Such a cycle would loop forever inside one evaluation.
    """
    edges: dict[str, set[str]] = {}
    for arc in arcs:
        if arc.condition.is_instant or (
            arc.condition.is_done and set(arc.sources) <= instant_steps
        ):
            for source in arc.sources:
                edges.setdefault(source, set()).update(arc.targets)
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None
