"""Helpers shared by the SFC tests: terse recipe builders and an event driver.

Kept in a ``test_sfc_*`` module so the SFC tests stay inside their own files; the two
tests at the bottom check the helpers themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from microdcs.sfc import (
    ActionCompleted,
    ActionFailed,
    CompiledRecipe,
    DispatchAction,
    Effect,
    Event,
    Execution,
    ExecutionStatus,
    ScheduleTimer,
    Start,
    TimerDue,
    compile_recipe,
    evolve,
    new_execution,
)
from microdcs.sfc.conditions import ConditionContext
from microdcs_models.sfc_recipe import (
    SfcAction,
    SfcBranch,
    SfcBranchType,
    SfcInteraction,
    SfcQualifier,
    SfcRecipe,
    SfcStep,
    SfcTransition,
)

TransitionSpec = tuple[str, str] | tuple[str, str, str | None] | tuple[str, str, str | None, int]


def act(
    name: str,
    step: str,
    qualifier: str = "N",
    *,
    time: float | None = None,
    timeout: float | None = None,
    type_id: str = "com.example.cmd",
    interaction: str = "push_command",
    parameters: dict[str, Any] | None = None,
) -> SfcAction:
    return SfcAction(
        name=name,
        step=step,
        qualifier=SfcQualifier(qualifier),
        interaction=SfcInteraction(interaction),
        type_id=type_id,
        time=time,
        timeout_seconds=timeout,
        parameters=parameters,
    )


def branch(name: str, kind: str, *paths: Sequence[str]) -> SfcBranch:
    return SfcBranch(name=name, type=SfcBranchType(kind), branches=[list(p) for p in paths])


def recipe(
    steps: Sequence[str],
    transitions: Iterable[TransitionSpec],
    actions: Iterable[SfcAction] = (),
    branches: Iterable[SfcBranch] = (),
    *,
    initial: str | None = None,
) -> SfcRecipe:
    """A recipe; the first step is initial unless ``initial`` says otherwise."""
    first = initial if initial is not None else steps[0]
    made = []
    for spec in transitions:
        condition = spec[2] if len(spec) > 2 else None
        priority = spec[3] if len(spec) > 3 else None
        made.append(
            SfcTransition(source=spec[0], target=spec[1], condition=condition, priority=priority)
        )
    return SfcRecipe(
        steps=[SfcStep(name=s, initial=True if s == first else None) for s in steps],
        transitions=made,
        actions=list(actions) or None,
        branches=list(branches) or None,
    )


class Driver:
    """Feeds events to :func:`evolve` with a manual clock and keeps every effect."""

    def __init__(
        self,
        source: SfcRecipe | CompiledRecipe,
        parameters: Mapping[str, Any] | None = None,
        predicates: Mapping[str, Callable[[ConditionContext], bool]] | None = None,
    ) -> None:
        self.compiled = (
            source if isinstance(source, CompiledRecipe) else compile_recipe(source, predicates)
        )
        self.execution: Execution = new_execution("job1", parameters)
        self.now = 0.0
        self.effects: list[Effect] = []

    @property
    def status(self) -> ExecutionStatus:
        return self.execution.status

    @property
    def active(self) -> tuple[str, ...]:
        return self.execution.active

    def send(self, event: Event) -> list[Effect]:
        self.execution, effects = evolve(self.compiled, self.execution, event, self.now)
        self.effects.extend(effects)
        return effects

    def start(self) -> list[Effect]:
        return self.send(Start())

    def correlation(self, action: str) -> str:
        runs = [r for r in self.execution.running if r.name == action]
        assert len(runs) == 1, f"expected one running {action}, got {runs}"
        return runs[0].correlation_id

    def complete(self, action: str, result: Mapping[str, Any] | None = None) -> list[Effect]:
        return self.send(ActionCompleted(self.correlation(action), result))

    def fail(self, action: str, reason: str = "equipment error") -> list[Effect]:
        return self.send(ActionFailed(self.correlation(action), reason))

    def advance(self, seconds: float) -> list[Effect]:
        """Move the clock, firing each timer that falls due on the way, in order."""
        end = self.now + seconds
        out: list[Effect] = []
        while True:
            due = sorted(
                (t.due_at, t.key)
                for t in self.execution.timers.values()
                if t.due_at is not None and t.due_at <= end
            )
            if not due:
                break
            self.now = max(self.now, due[0][0])
            out += self.send(TimerDue(due[0][1]))
        self.now = end
        return out

    def dispatched(self, effects: Iterable[Effect] | None = None) -> list[str]:
        items = self.effects if effects is None else effects
        return [e.action for e in items if isinstance(e, DispatchAction)]

    def running(self) -> list[str]:
        return sorted(r.name for r in self.execution.running)


def kinds(effects: Iterable[Effect]) -> list[str]:
    return [type(e).__name__ for e in effects]


def test_driver_runs_a_one_step_recipe_to_completion() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A")]))
    d.start()
    d.complete("a")
    assert d.status is ExecutionStatus.COMPLETED


def test_driver_advance_fires_due_timers_in_order() -> None:
    d = Driver(recipe(["A"], [], [act("a", "A", "D", time=5)]))
    d.start()
    assert d.dispatched() == []
    assert any(isinstance(e, ScheduleTimer) for e in d.effects)
    d.advance(5)
    assert d.dispatched() == ["a"]
