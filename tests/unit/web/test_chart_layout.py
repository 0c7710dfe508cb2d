"""The SFC chart layout: every step placed once, nothing overlapping, branches in columns,
loops drawn back up on the left, and ids the page script can rely on."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from microdcs.web.chart import ChartLayout, StepBox, layout, render_svg, step_id, transition_id
from microdcs_models.sfc_recipe import SfcRecipe


def recipe(**raw: Any) -> SfcRecipe:
    return SfcRecipe.from_raw(raw)


def steps(*names: str) -> list[dict[str, Any]]:
    return [{"Name": n, **({"Initial": True} if i == 0 else {})} for i, n in enumerate(names)]


def t(source: str, target: str, condition: str = "done", **extra: Any) -> dict[str, Any]:
    return {"Source": source, "Target": target, "Condition": condition, **extra}


SIMULTANEOUS = recipe(
    Steps=steps("Cut", "Drill", "Polish", "Sand", "Dry"),
    Branches=[
        {"Name": "Finish", "Type": "simultaneous", "Branches": [["Drill", "Polish"], ["Sand"]]}
    ],
    Transitions=[t("Cut", "Finish"), t("Finish", "Dry")],
    Actions=[
        {"Name": "cut", "Step": "Cut", "Qualifier": "N", "Interaction": "push_command",
         "TypeId": "c"},
        {"Name": "heat", "Step": "Cut", "Qualifier": "L", "Time": 5,
         "Interaction": "push_command", "TypeId": "h"},
    ],
)  # fmt: skip

SELECTION = recipe(
    Steps=steps("Measure", "Good", "Rework", "Scrap", "Pack"),
    Branches=[
        {"Name": "Judge", "Type": "selection", "Branches": [["Good"], ["Rework"], ["Scrap"]]}
    ],
    Transitions=[
        t("Measure", "Judge"),
        t("Judge", "Good", "result.ok == true"),
        t("Judge", "Rework", "result.ok == false", Priority=1),
        t("Judge", "Scrap", "true", Priority=2),
        t("Judge", "Pack"),
    ],
)

LOOP = recipe(
    Steps=steps("Load", "Fill", "Check", "Unload"),
    Transitions=[
        t("Load", "Fill"),
        t("Fill", "Check"),
        t("Check", "Fill", "result.level < 10"),
        t("Check", "Unload", "result.level >= 10"),
    ],
)

#: Alternatives without a branch, one of them longer, so the short one skips a rank.
DIAMOND = recipe(
    Steps=steps("Cut", "Drill", "Deburr", "Reject", "End"),
    Transitions=[
        t("Cut", "Drill", "done and result.ok"),
        t("Cut", "Reject", "done and not result.ok"),
        t("Drill", "Deburr"),
        t("Deburr", "End"),
        t("Reject", "End"),
    ],
)

#: A loop inside a branch path, and a loop of the whole chart back to its start.
NESTED_LOOPS = recipe(
    Steps=steps("Start", "Heat", "Hold", "Stir", "Done"),
    Branches=[{"Name": "Cook", "Type": "simultaneous", "Branches": [["Heat", "Hold"], ["Stir"]]}],
    Transitions=[
        t("Start", "Cook"),
        t("Hold", "Heat", "result.temperature < 80"),
        t("Cook", "Done"),
        t("Done", "Start", "param.repeat == true"),
    ],
)

ALL = [SIMULTANEOUS, SELECTION, LOOP, DIAMOND, NESTED_LOOPS]


def overlaps(a: StepBox, b: StepBox) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def inside(chart: ChartLayout, x: float, y: float) -> bool:
    return 0 <= x <= chart.width and 0 <= y <= chart.height


@pytest.mark.parametrize("r", ALL)
def test_every_step_is_placed_once_inside_the_chart(r: SfcRecipe) -> None:
    chart = layout(r)
    assert set(chart.steps) == {s.name for s in r.steps}
    for box in chart.steps.values():
        assert inside(chart, box.x, box.y) and inside(chart, box.x + box.w, box.bottom)


@pytest.mark.parametrize("r", ALL)
def test_no_two_steps_overlap(r: SfcRecipe) -> None:
    chart = layout(r)
    for a, b in itertools.combinations(chart.steps.values(), 2):
        assert not overlaps(a, b), (a.name, b.name)


@pytest.mark.parametrize("r", ALL)
def test_no_transition_line_crosses_a_step_it_does_not_touch(r: SfcRecipe) -> None:
    chart = layout(r)
    for edge in chart.edges:
        for box in chart.steps.values():
            if box.name in (edge.source, edge.target):
                continue
            for (x1, y1), (x2, y2) in itertools.pairwise(edge.points):
                # Every segment is horizontal or vertical.
                assert x1 == x2 or y1 == y2, edge
                crosses_x = min(x1, x2) < box.x + box.w and box.x < max(x1, x2)
                crosses_y = min(y1, y2) < box.bottom and box.y < max(y1, y2)
                if x1 == x2:
                    crosses_x = box.x < x1 < box.x + box.w
                else:
                    crosses_y = box.y < y1 < box.bottom
                assert not (crosses_x and crosses_y), (edge.id, box.name)


def test_simultaneous_paths_start_on_one_row_in_their_own_columns() -> None:
    chart = layout(SIMULTANEOUS)
    drill, polish, sand = (chart.steps[n] for n in ("Drill", "Polish", "Sand"))
    assert drill.y == sand.y
    assert drill.cx == polish.cx != sand.cx
    assert polish.y > drill.y
    bars = [b for b in chart.bars if b.branch == "Finish"]
    assert [b.divergence for b in bars] == [True, False]
    top, bottom = bars
    assert top.x1 < drill.cx and sand.cx < top.x2  # the double bar spans both paths
    assert top.y < drill.y and bottom.y > polish.bottom
    cut, dry = chart.steps["Cut"], chart.steps["Dry"]
    assert cut.bottom < top.y and dry.y > bottom.y


def test_selection_has_one_choice_transition_per_path() -> None:
    chart = layout(SELECTION)
    choices = {e.target: e for e in chart.edges if e.kind == "choice"}
    assert set(choices) == {"Good", "Rework", "Scrap"}
    assert len({chart.steps[n].cx for n in choices}) == 3
    assert choices["Rework"].label == "result.ok == false"
    assert len({chart.steps[n].y for n in choices}) == 1


def test_a_loop_goes_back_up_in_a_lane_left_of_the_steps() -> None:
    chart = layout(LOOP)
    (back,) = [e for e in chart.edges if e.kind == "back"]
    assert (back.source, back.target) == ("Check", "Fill")
    leftmost = min(box.x for box in chart.steps.values())
    lane_x = min(x for x, _ in back.points)
    assert lane_x < leftmost
    assert back.points[-1] == (chart.steps["Fill"].cx, chart.steps["Fill"].y)
    assert chart.steps["Fill"].y < chart.steps["Check"].y < chart.steps["Unload"].y


def test_a_loop_inside_a_path_stays_in_its_column() -> None:
    chart = layout(NESTED_LOOPS)
    inner = next(e for e in chart.edges if (e.source, e.target) == ("Hold", "Heat"))
    outer = next(e for e in chart.edges if (e.source, e.target) == ("Done", "Start"))
    assert inner.kind == outer.kind == "back"
    heat, stir = chart.steps["Heat"], chart.steps["Stir"]
    assert all(heat.x - 30 < x < stir.x for x, _ in inner.points)
    assert min(x for x, _ in outer.points) < min(b.x for b in chart.steps.values())


def test_a_transition_skipping_ranks_runs_right_of_the_chart() -> None:
    chart = layout(DIAMOND)
    skip = next(e for e in chart.edges if (e.source, e.target) == ("Reject", "End"))
    assert skip.kind == "skip"
    assert max(x for x, _ in skip.points) > max(b.x + b.w for b in chart.steps.values())
    assert chart.steps["Drill"].y == chart.steps["Reject"].y


def test_implicit_path_transitions_are_drawn_as_done() -> None:
    chart = layout(SIMULTANEOUS)
    inner = next(e for e in chart.edges if (e.source, e.target) == ("Drill", "Polish"))
    assert inner.label == "done" and inner.id == transition_id("Drill", "Polish")


def test_a_chart_is_laid_out_the_same_every_time() -> None:
    assert layout(NESTED_LOOPS) == layout(NESTED_LOOPS)


def test_the_svg_carries_stable_ids_for_steps_transitions_and_actions() -> None:
    svg = render_svg(layout(SIMULTANEOUS))
    ids = re.findall(r' id="([^"]+)"', svg)
    assert len(ids) == len(set(ids))
    for name in ("Cut", "Drill", "Polish", "Sand", "Dry"):
        assert step_id(name) in ids
    assert {transition_id("Cut", "Finish"), transition_id("Finish", "Dry")} <= set(ids)
    assert "action-Cut-heat" in ids
    assert 'class="step initial"' in svg and "5s" in svg


def test_names_are_escaped_in_the_svg() -> None:
    r = recipe(Steps=steps('<b a="1">', "Two words"), Transitions=[t('<b a="1">', "Two words")])
    svg = render_svg(layout(r))
    assert "<b " not in svg and "&lt;b" in svg
    assert 'id="step-Two_words"' in svg


def test_a_long_chain_is_laid_out_without_recursion() -> None:
    names = [f"S{i}" for i in range(1500)]
    r = recipe(Steps=steps(*names), Transitions=[t(a, b) for a, b in itertools.pairwise(names)])
    chart = layout(r)
    assert chart.steps["S1499"].y > chart.steps["S0"].y
