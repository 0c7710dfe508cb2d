"""The compiled recipe: built once from a valid recipe, read on every event.

Why compile: evolution runs for every action response and timer of every job, so it
must not re-parse conditions or re-derive branch structure. A :class:`CompiledRecipe` is
immutable and can be cached per work master by the engine.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from microdcs.sfc.conditions import Predicate
from microdcs.sfc.errors import RecipeValidationError
from microdcs.sfc.graph import AWAITED, STORED, Arc
from microdcs.sfc.validation import check_recipe
from microdcs_models.sfc_recipe import SfcInteraction, SfcQualifier, SfcRecipe


@dataclass(frozen=True)
class CompiledAction:
    """An action of a step, with the facts the evolution needs precomputed."""

    name: str
    step: str
    qualifier: SfcQualifier
    interaction: SfcInteraction
    type_id: str
    timeout_seconds: float | None
    time: float | None
    parameters: Mapping[str, Any]
    #: The step waits for this action before ``done`` holds.
    awaited: bool
    #: The action outlives its step until an R resets it.
    stored: bool
    #: Some transition out of the step handles this action's failure.
    failure_handled: bool
    #: Equipment ID the action talks to (``None``: the default equipment processor).
    equipment: str | None = None

    @property
    def key(self) -> str:
        """Identity of the action in the execution state: ``step/name``."""
        return f"{self.step}/{self.name}"


@dataclass(frozen=True)
class CompiledRecipe:
    """Steps, actions per step and arcs in firing order, plus the predicate registry."""

    initial: str
    steps: tuple[str, ...]
    actions: Mapping[str, tuple[CompiledAction, ...]]
    #: All arcs, sorted: lower priority first, then declaration order.
    arcs: tuple[Arc, ...]
    #: Arcs by source step, in firing order.
    outgoing: Mapping[str, tuple[Arc, ...]]
    predicates: Mapping[str, Predicate] = field(default_factory=dict)
    #: Arcs with a timeout, with their index in ``arcs`` (the timer key); usually none.
    timed_arcs: tuple[tuple[int, Arc], ...] = ()
    #: Seconds the chart may wait on conditions before the job is suspended (None: off).
    watchdog: float | None = None
    #: Every plant data tag some condition reads (the engine reads them before evolving).
    tags: frozenset[str] = frozenset()

    def action(self, key: str) -> CompiledAction:
        step, _, name = key.partition("/")
        return next(a for a in self.actions[step] if a.name == name)

    def watched_tags(self, active: Collection[str]) -> frozenset[str]:
        """Tags read by the arcs that are enabled (all sources active): the tags whose
        change can make one of them fire, so the engine re-evaluates when they change."""
        if not self.tags:
            return frozenset()
        steps = set(active)
        return frozenset(
            tag
            for step in steps
            for arc in self.outgoing[step]
            if steps.issuperset(arc.sources)
            for tag in arc.condition.tags
        )

    def is_final(self, step: str) -> bool:
        """A step no arc leaves: the recipe ends when it (and every other step) is done."""
        return not self.outgoing[step]


def compile_recipe(
    recipe: SfcRecipe, predicates: Mapping[str, Predicate] | None = None
) -> CompiledRecipe:
    """Validate ``recipe`` and compile it; raises :class:`RecipeValidationError`.

    ``predicates`` is the application's registry of named conditions, passed explicitly
    (there is no global registry) and kept in the compiled recipe for evaluation.
    """
    registry = dict(predicates or {})
    problems, _, arcs = check_recipe(recipe, registry)
    if problems:
        raise RecipeValidationError(problems)
    handled: dict[str, set[str]] = {}
    handles_all: set[str] = set()
    for arc in arcs:
        for source in arc.sources:
            handled.setdefault(source, set()).update(arc.condition.failed_actions)
            if arc.condition.handles_any_failure:
                handles_all.add(source)
    actions: dict[str, list[CompiledAction]] = {s.name: [] for s in recipe.steps}
    for a in recipe.actions or []:
        actions[a.step].append(
            CompiledAction(
                name=a.name,
                step=a.step,
                qualifier=a.qualifier,
                interaction=a.interaction,
                type_id=a.type_id,
                timeout_seconds=a.timeout_seconds,
                time=a.time,
                parameters=dict(a.parameters or {}),
                awaited=a.qualifier in AWAITED,
                stored=a.qualifier in STORED,
                failure_handled=a.step in handles_all or a.name in handled.get(a.step, ()),
                equipment=a.equipment or None,
            )
        )
    outgoing: dict[str, list[Arc]] = {step.name: [] for step in recipe.steps}
    for arc in arcs:
        for source in arc.sources:
            outgoing.setdefault(source, []).append(arc)
    return CompiledRecipe(
        initial=next(s.name for s in recipe.steps if s.initial),
        steps=tuple(s.name for s in recipe.steps),
        actions={step: tuple(items) for step, items in actions.items()},
        arcs=tuple(arcs),
        outgoing={step: tuple(items) for step, items in outgoing.items()},
        predicates=registry,
        timed_arcs=tuple((i, arc) for i, arc in enumerate(arcs) if arc.timeout),
        watchdog=recipe.watchdog_seconds or None,
        tags=frozenset(tag for arc in arcs for tag in arc.condition.tags),
    )
