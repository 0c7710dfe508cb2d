"""Properties of the evolution over generated valid recipes (hypothesis).

Recipes are chains of steps, selection and simultaneous branches, with random actions of
every qualifier and optional loops back to earlier steps. An environment completes
actions in random order and fires timers when nothing else can happen. Checked:

- generated recipes validate;
- a step is never active twice at once;
- no deadlock: while running, some action runs or some timer is pending;
- every run terminates (acyclic recipes, and loops whose exit condition comes true);
- with failures injected, every run still reaches an end state.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microdcs.sfc import (
    ActionCompleted,
    ActionFailed,
    ExecutionStatus,
    Start,
    StepEntered,
    StepExited,
    TimerDue,
    TimerKind,
    compile_recipe,
    evolve,
    new_execution,
)
from microdcs_models.sfc_recipe import SfcAction, SfcBranch, SfcRecipe
from tests.unit.test_sfc_support import act, branch, recipe

QUALIFIERS = ["N", "N", "P", "P1", "P0", "S", "L", "D", "SD", "DS", "SL"]
TIMED = {"L", "D", "SD", "DS", "SL"}


@dataclass
class Generated:
    recipe: SfcRecipe
    parameters: dict[str, Any]
    #: Times each loop action answers {"again": true} before it answers false.
    repeats: dict[str, int] = field(default_factory=dict)
    has_loops: bool = False


@st.composite
def recipes(draw: st.DrawFn, loops: bool = True) -> Generated:
    steps: list[str] = []
    transitions: list[tuple[str, str, str | None, int] | tuple[str, str]] = []
    actions: list[SfcAction] = []
    branches: list[SfcBranch] = []
    params: dict[str, Any] = {}
    stored: list[str] = []
    top: list[str] = []  # top-level steps, for loop targets
    counter = iter(range(10_000))

    def new_step() -> str:
        name = f"S{next(counter)}"
        steps.append(name)
        if stored and draw(st.integers(0, 3)) == 0:
            actions.append(act(stored.pop(0), name, "R"))
        for _ in range(draw(st.integers(0, 2))):
            q = draw(st.sampled_from(QUALIFIERS))
            a = f"a{next(counter)}"
            time = draw(st.sampled_from([0.0, 1.0, 2.5])) if q in TIMED else None
            timeout = draw(st.sampled_from([None, None, 30.0]))
            actions.append(act(a, name, q, time=time, timeout=timeout))
            if q in ("S", "SD", "DS", "SL"):
                stored.append(a)
        return name

    first = new_step()
    top.append(first)
    previous = first
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["step", "step", "selection", "simultaneous"]))
        if kind == "step":
            node = new_step()
            top.append(node)
        else:
            node = f"B{next(counter)}"
            paths = [
                [new_step() for _ in range(draw(st.integers(1, 3)))]
                for _ in range(draw(st.integers(1, 3)))
            ]
            branches.append(branch(node, kind, *paths))
            if kind == "selection":
                for index, path in enumerate(paths):
                    if index == len(paths) - 1:
                        transitions.append((node, path[0], "true", index))
                    else:
                        flag = f"p{next(counter)}"
                        params[flag] = draw(st.booleans())
                        transitions.append((node, path[0], f"param.{flag} == true", index))
        transitions.append((previous, node))
        previous = node
    if previous not in steps and draw(st.booleans()):  # sometimes end on a step
        last = new_step()
        top.append(last)
        transitions.append((previous, last))
    repeats: dict[str, int] = {}
    if loops and len(top) > 1 and draw(st.booleans()):
        source = draw(st.sampled_from(top[1:]))
        target = draw(st.sampled_from(top[: top.index(source) + 1]))
        if not any(t[0] == source for t in transitions):
            end = new_step()  # the loop's step needs a way forward once the loop is over
            transitions.append((source, end))
        loop_action = f"loop{next(counter)}"
        actions.append(act(loop_action, source))
        transitions.append((source, target, f"done and results.{loop_action}.again", -1))
        repeats[loop_action] = draw(st.integers(0, 2))
    generated = Generated(recipe(steps, transitions, actions, branches), params, repeats)
    generated.has_loops = bool(repeats)
    return generated


def drive(g: Generated, seed: int, failure_rate: float = 0.0) -> tuple[ExecutionStatus, int]:
    """Run a generated recipe to its end, checking safety and liveness on the way."""
    rng = random.Random(seed)
    compiled = compile_recipe(g.recipe)
    execution = new_execution("job", g.parameters)
    now, events, answered = 0.0, 0, dict.fromkeys(g.repeats, 0)
    active: set[str] = set()

    def apply(event: Any) -> None:
        nonlocal execution, events
        execution, effects = evolve(compiled, execution, event, now)
        events += 1
        for effect in effects:
            if isinstance(effect, StepEntered):
                assert effect.step not in active, f"{effect.step} activated twice"
                active.add(effect.step)
            elif isinstance(effect, StepExited):
                active.remove(effect.step)
        assert set(execution.active) == active
        assert len(execution.active) == len(active)

    apply(Start())
    while not execution.status.terminal:
        assert events < 5000, "did not terminate"
        running = sorted(execution.running, key=lambda r: r.correlation_id)
        # Without failure injection equipment always answers before its timeout.
        timers = sorted(
            (t.due_at, t.key)
            for t in execution.timers.values()
            if t.due_at is not None and (failure_rate or t.kind is not TimerKind.TIMEOUT)
        )
        assert running or timers, f"deadlock: {execution}"
        if running and (not timers or rng.random() < 0.8):
            run = rng.choice(running)
            if rng.random() < failure_rate:
                apply(ActionFailed(run.correlation_id, "injected"))
                continue
            result: dict[str, Any] = {"n": rng.randint(0, 9)}
            if run.name in answered:
                result["again"] = answered[run.name] < g.repeats[run.name]
                answered[run.name] += 1
            apply(ActionCompleted(run.correlation_id, result))
        else:
            now = max(now, timers[0][0])
            apply(TimerDue(timers[0][1]))
    return execution.status, events


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(recipes(), st.integers(0, 2**32))
def test_generated_recipes_validate_and_complete_safely(g: Generated, seed: int) -> None:
    status, _ = drive(g, seed)
    assert status is ExecutionStatus.COMPLETED


@FAST
@given(recipes(loops=False), st.integers(0, 2**32))
def test_acyclic_recipes_terminate_within_a_bound(g: Generated, seed: int) -> None:
    status, events = drive(g, seed)
    assert status is ExecutionStatus.COMPLETED
    # each action answers once and each timer fires once: one event each, plus Start
    actions = len(g.recipe.actions or [])
    assert events <= 1 + 3 * actions


@FAST
@given(recipes(), st.integers(0, 2**32))
def test_injected_failures_still_reach_an_end(g: Generated, seed: int) -> None:
    status, _ = drive(g, seed, failure_rate=0.2)
    assert status in (ExecutionStatus.COMPLETED, ExecutionStatus.ABORTED)
