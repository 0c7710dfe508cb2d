"""Transition conditions: a tiny safe expression language, parsed once at validation.

Why a hand-written parser: conditions come from the MES inside a work master, so they are
untrusted. A tokenizer and a recursive-descent parser accept only the grammar below and
build a small tree that is interpreted against a :class:`ConditionContext`; no user string
ever reaches ``eval``, ``exec``, ``compile`` or attribute access on Python objects.

Grammar::

    condition  := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand)?
    operand    := NUMBER | STRING | "true" | "false" | tag_read | name | "(" or_expr ")"
    tag_read   := ("tag" | "quality") "(" STRING ")"
    name       := IDENT ("." IDENT)*

Names:

- ``true``, ``false``; ``done`` - every action of the transition's source steps that the
  step waits for has completed (see ``docs/sfc.md``).
- ``result.<field>[.<sub>...]`` - the merged view of all action results: the results of
  completed actions folded in completion order, so a field reported by several actions
  has the value of the most recent one.
- ``results.<action>.<field>[...]`` - the latest result of one action.
- ``param.<ID>[.<sub>...]`` - a job order parameter.
- ``failed.<action>`` - that action's current run failed; bare ``failed`` - some action of
  the source steps failed. A transition mentioning them *handles* the failure.
- ``tag("<name>")`` - the current value of a plant data tag (``None`` if the tag has no
  value or is not configured in the job's scope); ``quality("<name>")`` - its quality,
  ``"good"``, ``"uncertain"`` or ``"bad"`` (``None`` if not configured). The tag name is a
  string literal, so the tags a condition reads are known when it is parsed: the engine
  reads them before evaluating and re-evaluates a waiting transition when one changes.
- any other bare identifier - a predicate registered by the application.

Values: a missing name is ``None``. ``==``/``!=`` compare by type (``true != 1``);
ordering needs two numbers or two strings, else it is false. A string that spells a number
is compared as that number when the other side is a number (job parameters often arrive as
strings). A name used as a boolean is true only if its value is exactly ``true``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from microdcs.plantdata.contract import TagSample
from microdcs.sfc.errors import PredicateError

NAMESPACES = ("result", "results", "param", "failed")
#: The two functions of the language: read a tag's value or its quality.
TAG_FUNCTIONS = ("tag", "quality")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class ConditionContext:
    """What a condition may look at: results, parameters, failures, ``done`` and tags.

    Built by the evolution for one transition at a time (``done`` and ``step_failed``
    depend on the transition's source steps). ``tags`` is the snapshot of current values
    the engine read before evaluating (evolution stays pure: it never reads a tag itself).
    """

    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    failed: frozenset[str] = frozenset()
    done: bool = False
    step_failed: bool = False
    steps: tuple[str, ...] = ()
    tags: Mapping[str, TagSample] = field(default_factory=dict)

    @cached_property
    def merged(self) -> Mapping[str, Any]:
        """The ``result.*`` view: results folded in completion order (last one wins)."""
        view: dict[str, Any] = {}
        for result in self.results.values():
            view.update(result)
        return view


Predicate = Callable[[ConditionContext], bool]


# -- tree -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Literal:
    value: bool | int | float | str


@dataclass(frozen=True)
class Name:
    """A dotted name; ``parts[0]`` is a namespace or a bare identifier."""

    parts: tuple[str, ...]


@dataclass(frozen=True)
class TagRead:
    """``tag("name")`` (``function`` "tag") or ``quality("name")``: a tag named statically."""

    function: str
    tag: str


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


Node = Literal | Name | TagRead | Not | BoolOp | Compare


def _walk(node: Node) -> list[Node]:
    out: list[Node] = [node]
    if isinstance(node, Not):
        out += _walk(node.operand)
    elif isinstance(node, BoolOp):
        for operand in node.operands:
            out += _walk(operand)
    elif isinstance(node, Compare):
        out += _walk(node.left) + _walk(node.right)
    return out


@dataclass(frozen=True)
class Condition:
    """A parsed condition with the facts validation and compilation need about it."""

    text: str
    root: Node

    @cached_property
    def names(self) -> tuple[Name, ...]:
        return tuple(n for n in _walk(self.root) if isinstance(n, Name))

    @property
    def predicates(self) -> frozenset[str]:
        """Bare identifiers other than built-ins: registered predicates."""
        return frozenset(
            n.parts[0] for n in self.names if len(n.parts) == 1 and n.parts[0] not in _BUILTINS
        )

    @cached_property
    def tags(self) -> frozenset[str]:
        """The plant data tags the condition reads (value or quality)."""
        return frozenset(n.tag for n in _walk(self.root) if isinstance(n, TagRead))

    @property
    def failed_actions(self) -> frozenset[str]:
        return frozenset(
            n.parts[1] for n in self.names if n.parts[0] == "failed" and len(n.parts) == 2
        )

    @property
    def handles_any_failure(self) -> bool:
        """Bare ``failed``: handles a failure of any action of the source steps."""
        return any(n.parts == ("failed",) for n in self.names)

    @property
    def result_actions(self) -> frozenset[str]:
        return frozenset(n.parts[1] for n in self.names if n.parts[0] == "results")

    @property
    def is_instant(self) -> bool:
        """Exactly ``true``: holds the moment its source steps are active."""
        return self.root == Literal(True)

    @property
    def is_done(self) -> bool:
        return self.root == Name(("done",))

    def evaluate(self, ctx: ConditionContext, predicates: Mapping[str, Predicate]) -> bool:
        """Truth of the condition; a raising predicate becomes :class:`PredicateError`."""
        return _truth(_value(self.root, ctx, predicates))


TRUE = Condition("true", Literal(True))
DONE = Condition("done", Name(("done",)))
_BUILTINS = frozenset({"done", "failed"})


# -- evaluation -----------------------------------------------------------------------
def _truth(value: Any) -> bool:
    return value is True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _lookup(root: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if not isinstance(root, Mapping):
            return None
        root = root.get(part)
    return root


def _value(node: Node, ctx: ConditionContext, predicates: Mapping[str, Predicate]) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Name):
        return _name_value(node.parts, ctx, predicates)
    if isinstance(node, TagRead):
        return _tag_value(node, ctx)
    if isinstance(node, Not):
        return not _truth(_value(node.operand, ctx, predicates))
    if isinstance(node, BoolOp):
        want = node.op == "or"
        for operand in node.operands:
            if _truth(_value(operand, ctx, predicates)) == want:
                return want
        return not want
    return _compare(
        node.op, _value(node.left, ctx, predicates), _value(node.right, ctx, predicates)
    )


def _name_value(
    parts: tuple[str, ...], ctx: ConditionContext, preds: Mapping[str, Predicate]
) -> Any:
    head, rest = parts[0], parts[1:]
    if not rest:
        if head == "done":
            return ctx.done
        if head == "failed":
            return ctx.step_failed
        predicate = preds.get(head)
        if predicate is None:
            return False
        try:
            return predicate(ctx) is True
        except Exception as exc:  # user code: turned into a job abort by the caller
            raise PredicateError(head, exc) from exc
    if head == "result":
        return _lookup(ctx.merged, rest)
    if head == "results":
        return _lookup(ctx.results, rest)
    if head == "param":
        return _lookup(ctx.parameters, rest)
    return rest[0] in ctx.failed  # "failed"


def _tag_value(node: TagRead, ctx: ConditionContext) -> Any:
    sample = ctx.tags.get(node.tag)
    if sample is None:
        return None
    if node.function == "quality":
        return str(sample.quality.value)  # a plain str: "good" == quality(...) by type
    return sample.value


def _as_number(value: Any) -> Any:
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if _is_number(left) and isinstance(right, str):
        right = _as_number(right)
    elif _is_number(right) and isinstance(left, str):
        left = _as_number(left)
    if op in ("==", "!="):
        same_kind = (_is_number(left) and _is_number(right)) or type(left) is type(right)
        equal = same_kind and left == right
        return equal if op == "==" else not equal
    comparable = (_is_number(left) and _is_number(right)) or (
        isinstance(left, str) and isinstance(right, str)
    )
    if not comparable or (_is_number(left) and (math.isnan(left) or math.isnan(right))):
        return False
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def unknown_predicates(condition: Condition, registered: Collection[str]) -> frozenset[str]:
    """Bare names of the condition that are neither built-in nor registered."""
    return frozenset(name for name in condition.predicates if name not in registered)
