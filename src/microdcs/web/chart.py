"""The SFC chart of a recipe as SVG: a pure layout, then a renderer.

Why a layout of its own: the job detail page highlights the active steps live, so every
step and transition must have a stable element id (``step-<name>``,
``transition-<source>-<target>``) that the browser toggles classes on, and the drawing
must never change while a job runs. :func:`layout` places the chart on a grid (tested
without a browser: no overlaps, every step placed, branch columns, loop back edges),
:func:`render_svg` only draws it.

The shape follows IEC 61131-3 charts. Each branch is a *block*: a divergence bar (double
for simultaneous, single with one choice transition per path for selection), its paths
side by side in columns, and a convergence bar. Steps outside branches and the blocks
form a graph ranked top to bottom by longest path from the initial step; transitions
that go up (loops) run in lanes on the left, forward ones that skip ranks in lanes on
the right, so no line crosses a step.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

from microdcs_models.sfc_recipe import SfcAction, SfcBranch, SfcBranchType, SfcRecipe

__all__ = [
    "Bar",
    "ChartLayout",
    "Edge",
    "StepBox",
    "layout",
    "render_svg",
    "step_id",
    "transition_id",
]

COL_W = 220.0
STEP_W = 100.0
STEP_H = 36.0
ACTION_LINE = 14.0
#: Vertical room between ranks (transition marks and horizontal runs live there).
GAP = 64.0
#: Room between the steps of a branch path.
PATH_GAP = 40.0
LANE_W = 14.0
MARGIN = 24.0
#: The step box sits left of its column's centre so its actions fit on the right.
STEP_SHIFT = -40.0
LABEL_CHARS = 28


def _safe(name: str) -> str:
    return re.sub(r"\s", "_", name)


def step_id(name: str) -> str:
    """The element id of a step (the page's script finds steps by it)."""
    return f"step-{_safe(name)}"


def transition_id(source: str, target: str) -> str:
    """The element id of the transition ``source -> target`` (steps or branches)."""
    return f"transition-{_safe(source)}-{_safe(target)}"


@dataclass(frozen=True, slots=True)
class StepBox:
    name: str
    x: float  # left
    y: float  # top
    w: float
    h: float
    initial: bool
    #: ``(qualifier, action name, time)`` of the step's actions, in recipe order.
    actions: tuple[tuple[str, str, float | None], ...] = ()
    #: The branch whose path holds the step ("" outside branches).
    branch: str = ""
    #: The path's index within that branch.
    path: int = -1

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass(frozen=True, slots=True)
class Bar:
    """A divergence or convergence bar of a branch."""

    branch: str
    kind: SfcBranchType
    x1: float
    x2: float
    y: float
    divergence: bool


@dataclass(frozen=True, slots=True)
class Edge:
    """One transition as a polyline, with its mark (the short SFC bar) and label."""

    id: str
    source: str
    target: str
    points: tuple[tuple[float, float], ...]
    mark: tuple[float, float]
    label: str
    #: ``forward`` (next rank or inside a path), ``skip`` (right lane), ``back`` (loop,
    #: left lane), ``choice`` (selection branch to a path's first step).
    kind: str


@dataclass(frozen=True, slots=True)
class ChartLayout:
    width: float
    height: float
    steps: dict[str, StepBox] = field(default_factory=dict)
    bars: tuple[Bar, ...] = ()
    edges: tuple[Edge, ...] = ()


# -- the graph of top-level nodes ----------------------------------------------------------


@dataclass
class _Block:
    """A branch: its paths' step boxes relative to the block's top-left corner."""

    branch: SfcBranch
    width: float = 0.0
    height: float = 0.0
    #: Relative (x, y) of each path step's box, and the bars (relative).
    boxes: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)
    bars: list[Bar] = field(default_factory=list)
    #: The x (relative) of the bars' centre, where outside transitions attach.
    anchor: float = 0.0


def _actions_by_step(recipe: SfcRecipe) -> dict[str, list[SfcAction]]:
    found: dict[str, list[SfcAction]] = {}
    for action in recipe.actions or []:
        found.setdefault(action.step, []).append(action)
    return found


def _step_height(actions: Sequence[SfcAction]) -> float:
    return max(STEP_H, 8.0 + ACTION_LINE * len(actions))


def _block(branch: SfcBranch, heights: dict[str, float]) -> _Block:
    block = _Block(branch)
    paths = [path for path in branch.branches if path] or [[]]
    selection = branch.type is SfcBranchType.SELECTION
    first_y = 40.0 if selection else 24.0
    bottom = first_y
    centres = []
    for index, path in enumerate(paths):
        cx = (index + 0.5) * COL_W + STEP_SHIFT
        centres.append(cx)
        y = first_y
        for name in path:
            h = heights.get(name, STEP_H)
            block.boxes[name] = (cx - STEP_W / 2, y, h, index)
            y += h + PATH_GAP
        bottom = max(bottom, y - PATH_GAP)
    conv_y = bottom + 24.0
    pad = 24.0 if not selection else 0.0
    x1, x2 = centres[0] - pad, centres[-1] + pad
    block.bars = [
        Bar(branch.name, branch.type, x1, x2, 0.0, True),
        Bar(branch.name, branch.type, x1, x2, conv_y, False),
    ]
    block.width = len(paths) * COL_W
    block.height = conv_y + 4.0
    block.anchor = (centres[0] + centres[-1]) / 2
    return block


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"


def layout(recipe: SfcRecipe) -> ChartLayout:
    """Place every step, bar and transition of ``recipe`` (validity is not required:
    an invalid recipe is drawn as far as its names allow)."""
    actions = _actions_by_step(recipe)
    heights = {s.name: _step_height(actions.get(s.name, [])) for s in recipe.steps}
    branches = {b.name: b for b in recipe.branches or []}
    owner: dict[str, str] = {}  # path step -> branch
    for branch in branches.values():
        for path in branch.branches:
            for name in path:
                owner.setdefault(name, branch.name)
    blocks = {name: _block(b, heights) for name, b in branches.items()}

    def node_of(name: str) -> str:
        return owner.get(name, name)

    # Top-level nodes in declaration order: steps outside branches, then branches.
    nodes: list[str] = [s.name for s in recipe.steps if s.name not in owner]
    for name in branches:
        if name not in nodes:
            nodes.append(name)
    choices: list[tuple[int, str, str]] = []
    inner: list[tuple[int, str, str]] = []
    top: list[tuple[int, str, str]] = []
    for index, t in enumerate(recipe.transitions):
        src, dst = t.source, t.target
        split = branches.get(src)
        if split is not None and any(p and p[0] == dst for p in split.branches):
            choices.append((index, src, dst))
        elif src in owner and dst in owner and owner[src] == owner[dst]:
            inner.append((index, src, dst))
        else:
            for name in (node_of(src), node_of(dst)):
                if name not in nodes:
                    nodes.append(name)  # named only by a transition: drawn as a step
                    heights.setdefault(name, STEP_H)
            top.append((index, src, dst))
    priorities = {i: (t.priority or 0, i) for i, t in enumerate(recipe.transitions)}
    out: dict[str, list[str]] = {n: [] for n in nodes}
    for _index, src, dst in sorted(top, key=lambda e: priorities[e[0]]):
        out[node_of(src)].append(node_of(dst))

    initial = next((s.name for s in recipe.steps if s.initial), None)
    roots = ([node_of(initial)] if initial else []) + nodes
    order, back = _dfs(roots, out)
    rank = _ranks(order, out, back)

    # Rank heights and rows; centre each rank in the chart's width.
    def width_of(name: str) -> float:
        return blocks[name].width if name in blocks else COL_W

    def height_of(name: str) -> float:
        return blocks[name].height if name in blocks else heights.get(name, STEP_H)

    ranks: dict[int, list[str]] = {}
    for name in order:
        ranks.setdefault(rank[name], []).append(name)
    levels = sorted(ranks)
    chart_w = max((sum(width_of(n) for n in ranks[r]) for r in levels), default=COL_W)
    n_back = sum(1 for e in top if (node_of(e[1]), node_of(e[2])) in back)
    n_skip = sum(
        1
        for e in top
        if (node_of(e[1]), node_of(e[2])) not in back
        and rank[node_of(e[2])] - rank[node_of(e[1])] > 1
    )
    left = MARGIN + LANE_W * (n_back + 1)
    y = GAP
    rank_top: dict[int, float] = {}
    rank_bottom: dict[int, float] = {}
    origin: dict[str, tuple[float, float]] = {}
    for r in levels:
        row_w = sum(width_of(n) for n in ranks[r])
        x = left + (chart_w - row_w) / 2
        rank_top[r] = y
        for name in ranks[r]:
            origin[name] = (x, y)
            x += width_of(name)
        rank_bottom[r] = y + max(height_of(n) for n in ranks[r])
        y = rank_bottom[r] + GAP
    height = y

    initial_name = initial or ""
    steps: dict[str, StepBox] = {}
    bars: list[Bar] = []

    def box(name: str, x: float, y: float, h: float, branch: str = "", path: int = -1) -> None:
        acts = tuple((a.qualifier.value, a.name, a.time) for a in actions.get(name, []))
        steps[name] = StepBox(name, x, y, STEP_W, h, name == initial_name, acts, branch, path)

    for name, (ox, oy) in origin.items():
        if name in blocks:
            block = blocks[name]
            for step, (bx, by, h, path_index) in block.boxes.items():
                box(step, ox + bx, oy + by, h, name, path_index)
            for bar in block.bars:
                bars.append(Bar(bar.branch, bar.kind, ox + bar.x1, ox + bar.x2, oy + bar.y,
                                bar.divergence))  # fmt: skip
        else:
            box(name, ox + COL_W / 2 + STEP_SHIFT - STEP_W / 2, oy, heights.get(name, STEP_H))

    # Where outside transitions attach to a node: (x, y) leaving, (x, y) entering.
    def exit_point(name: str) -> tuple[float, float]:
        if name in blocks:
            ox, oy = origin[name]
            conv = blocks[name].bars[1]
            thick = 4.0 if conv.kind is SfcBranchType.SIMULTANEOUS else 0.0
            return ox + blocks[name].anchor, oy + conv.y + thick
        s = steps[name]
        return s.cx, s.bottom

    def entry_point(name: str) -> tuple[float, float]:
        if name in blocks:
            ox, oy = origin[name]
            return ox + blocks[name].anchor, oy
        s = steps[name]
        return s.cx, s.y

    labels = {i: t.condition or "done" for i, t in enumerate(recipe.transitions)}
    fan_out = {n: len(v) for n, v in out.items()}
    edges: list[Edge] = []
    ids: set[str] = set()

    def unique(base: str) -> str:
        name, n = base, 2
        while name in ids:
            name, n = f"{base}-{n}", n + 1
        ids.add(name)
        return name

    back_lane = skip_lane = 0
    right = left + chart_w
    for index, src, dst in top:
        s, d = node_of(src), node_of(dst)
        (sx, sy), (tx, ty) = exit_point(s), entry_point(d)
        low = rank_bottom[rank[s]] + GAP * 0.3
        high = rank_top[rank[d]] - GAP * 0.3
        if (s, d) in back or rank[d] - rank[s] > 1:
            if (s, d) in back:
                back_lane += 1
                lane, kind = left - LANE_W * back_lane, "back"
            else:
                skip_lane += 1
                lane, kind = right + LANE_W * skip_lane, "skip"
            points: tuple[tuple[float, float], ...] = (
                (sx, sy),
                (sx, low),
                (lane, low),
                (lane, high),
                (tx, high),
                (tx, ty),
            )
            mark = (sx, (sy + low) / 2)
        else:
            mid = rank_top[rank[d]] - GAP / 2
            points = ((sx, sy), (sx, mid), (tx, mid), (tx, ty))
            on_source = fan_out.get(s, 0) <= 1 and d not in blocks
            mark = (sx, (sy + mid) / 2) if on_source else (tx, (mid + ty) / 2)
            kind = "forward"
        edges.append(Edge(unique(transition_id(src, dst)), src, dst, points, mark,
                          labels[index], kind))  # fmt: skip

    for index, src, dst in choices:
        bar = next(b for b in bars if b.branch == src and b.divergence)
        t_box = steps[dst]
        points = ((t_box.cx, bar.y), (t_box.cx, t_box.y))
        edges.append(Edge(unique(transition_id(src, dst)), src, dst, points,
                          (t_box.cx, (bar.y + t_box.y) / 2), labels[index], "choice"))  # fmt: skip

    # Inside each path: consecutive steps (declared or implicit ``done``), then loops.
    declared_inner = {(src, dst): index for index, src, dst in inner}
    local_lane: dict[str, int] = {}
    for branch in branches.values():
        for path in branch.branches:
            if not path:
                continue
            bar_top = next(b for b in bars if b.branch == branch.name and b.divergence)
            first = steps[path[0]]
            if branch.type is SfcBranchType.SIMULTANEOUS:
                edges.append(Edge(unique(f"link-{_safe(branch.name)}-{_safe(path[0])}"),
                                  branch.name, path[0],
                                  ((first.cx, bar_top.y), (first.cx, first.y)),
                                  (first.cx, first.y), "", "link"))  # fmt: skip
            for a, b in itertools.pairwise(path):
                sa, sb = steps[a], steps[b]
                index_ab = declared_inner.pop((a, b), None)
                label = labels[index_ab] if index_ab is not None else "done"
                edges.append(Edge(unique(transition_id(a, b)), a, b,
                                  ((sa.cx, sa.bottom), (sb.cx, sb.y)),
                                  (sa.cx, (sa.bottom + sb.y) / 2), label, "forward"))  # fmt: skip
            last = steps[path[-1]]
            conv = next(b for b in bars if b.branch == branch.name and not b.divergence)
            edges.append(Edge(unique(f"link-{_safe(path[-1])}-{_safe(branch.name)}"),
                              path[-1], branch.name, ((last.cx, last.bottom), (last.cx, conv.y)),
                              (last.cx, conv.y), "", "link"))  # fmt: skip
    for (src, dst), index in declared_inner.items():
        sa, sb = steps[src], steps[dst]
        key = f"{sa.branch}/{sa.path}"
        local_lane[key] = local_lane.get(key, 0) + 1
        lane = sa.x - 8.0 - 6.0 * local_lane[key]
        low, high = sa.bottom + 10.0, sb.y - 10.0
        points = ((sa.cx, sa.bottom), (sa.cx, low), (lane, low), (lane, high), (sb.cx, high),
                  (sb.cx, sb.y))  # fmt: skip
        kind = "back" if sb.y <= sa.y else "skip"
        edges.append(Edge(unique(transition_id(src, dst)), src, dst, points,
                          (sa.cx, (sa.bottom + low) / 2), labels[index], kind))  # fmt: skip

    width = right + LANE_W * (n_skip + 1) + MARGIN
    return ChartLayout(width, height, steps, tuple(bars), tuple(edges))


def _dfs(roots: Iterable[str], out: dict[str, list[str]]) -> tuple[list[str], set[tuple[str, str]]]:
    """Discovery order of the nodes and the edges that close a cycle (loops)."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 finished
    back: set[tuple[str, str]] = set()
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        order.append(root)
        while stack:
            node, i = stack[-1]
            targets = out.get(node, [])
            if i == len(targets):
                stack.pop()
                state[node] = 2
                continue
            stack[-1] = (node, i + 1)
            nxt = targets[i]
            if state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                order.append(nxt)
                stack.append((nxt, 0))
    return order, back


def _ranks(
    order: Sequence[str], out: dict[str, list[str]], back: set[tuple[str, str]]
) -> dict[str, int]:
    """Longest path from a root over the edges that are not loops."""
    preds: dict[str, list[str]] = {n: [] for n in order}
    for src in order:
        for dst in out.get(src, []):
            if (src, dst) not in back and dst != src:
                preds[dst].append(src)
    rank: dict[str, int] = {}

    def of(node: str) -> int:
        # Iterative: a long chain must not hit the recursion limit.
        pending = [node]
        while pending:
            current = pending[-1]
            missing = [p for p in preds[current] if p not in rank]
            if missing:
                pending.extend(missing)
                continue
            pending.pop()
            rank[current] = max((rank[p] + 1 for p in preds[current]), default=0)
        return rank[node]

    for node in order:
        if node not in rank:
            of(node)
    return rank


# -- drawing ------------------------------------------------------------------------------


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_f(x)},{_f(y)}" for x, y in points)


def render_svg(chart: ChartLayout, *, title: str = "") -> str:
    """The chart as one ``<svg>`` element; classes and ids are the page script's API:
    ``step`` groups (``active``/``visited`` set live), ``action`` texts with a ``timer``
    span, ``transition`` groups (``fired`` set live)."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sfc-chart" '
        f'viewBox="0 0 {_f(chart.width)} {_f(chart.height)}" width="{_f(chart.width)}" '
        f'height="{_f(chart.height)}" role="img" aria-label="{escape(title or "SFC chart")}">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="4" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z"/></marker>'
        "</defs>",
    ]
    for edge in chart.edges:
        if edge.kind == "link":
            parts.append(f'<polyline class="link" points="{_points(edge.points)}"/>')
            continue
        mx, my = edge.mark
        arrow = ' marker-end="url(#arrow)"' if edge.kind in ("back", "skip") else ""
        parts.append(
            f'<g id="{escape(edge.id)}" class="transition {edge.kind}" '
            f'data-source="{escape(edge.source)}" data-target="{escape(edge.target)}">'
            f"<title>{escape(edge.source)} \u2192 {escape(edge.target)}: "
            f"{escape(edge.label)}</title>"
            f'<polyline points="{_points(edge.points)}"{arrow}/>'
            f'<line class="mark" x1="{_f(mx - 10)}" y1="{_f(my)}" x2="{_f(mx + 10)}" '
            f'y2="{_f(my)}"/>'
            f'<text x="{_f(mx + 14)}" y="{_f(my + 4)}">{escape(_short(edge.label))}</text></g>'
        )
    for bar in chart.bars:
        cls = f"bar {bar.kind.value} {'divergence' if bar.divergence else 'convergence'}"
        ys = (bar.y, bar.y + 4.0) if bar.kind is SfcBranchType.SIMULTANEOUS else (bar.y,)
        lines = "".join(
            f'<line x1="{_f(bar.x1)}" y1="{_f(y)}" x2="{_f(bar.x2)}" y2="{_f(y)}"/>' for y in ys
        )
        parts.append(f'<g class="{cls}" data-branch="{escape(bar.branch)}">{lines}</g>')
    for step in chart.steps.values():
        cls = "step initial" if step.initial else "step"
        inner = ""
        if step.initial:
            inner = (
                f'<rect class="inner" x="{_f(step.x + 3)}" y="{_f(step.y + 3)}" '
                f'width="{_f(step.w - 6)}" height="{_f(step.h - 6)}"/>'
            )
        texts = []
        for n, (qualifier, name, time) in enumerate(step.actions):
            timed = f" {_f(time)}s" if time else ""
            texts.append(
                f'<text class="action" '
                f'id="action-{escape(_safe(step.name))}-{escape(_safe(name))}" '
                f'x="{_f(step.x + step.w + 8)}" y="{_f(step.y + 16 + n * ACTION_LINE)}">'
                f'<tspan class="q">{escape(qualifier)}</tspan> {escape(_short(name))}{timed}'
                f'<tspan class="timer"></tspan></text>'
            )
        parts.append(
            f'<g id="{escape(step_id(step.name))}" class="{cls}" data-step="{escape(step.name)}">'
            f"<title>{escape(step.name)}</title>"
            f'<rect x="{_f(step.x)}" y="{_f(step.y)}" width="{_f(step.w)}" height="{_f(step.h)}"/>'
            f"{inner}"
            f'<text class="name" x="{_f(step.cx)}" y="{_f(step.y + step.h / 2 + 4)}">'
            f"{escape(_short(step.name)[:14])}</text>{''.join(texts)}</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
