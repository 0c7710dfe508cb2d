"""Tokenizer and recursive-descent parser of transition conditions.

Only the grammar documented in :mod:`microdcs.sfc.conditions` is accepted; anything else
(function calls other than ``tag("...")`` and ``quality("...")`` with one string literal,
subscripts, unknown namespaces, dunder names, ``=``) is a :class:`ConditionSyntaxError`
naming the offset, raised at validation time so a bad condition never reaches a running
job. A tag is named by a literal, never computed, so the tags a condition reads are known
once it is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from microdcs.sfc.conditions import (
    DONE,
    NAMESPACES,
    TAG_FUNCTIONS,
    BoolOp,
    Compare,
    Condition,
    Literal,
    Name,
    Node,
    Not,
    TagRead,
)
from microdcs.sfc.errors import ConditionSyntaxError

MAX_CONDITION_LENGTH = 2000
MAX_NESTING = 32
MAX_TAG_NAME = 256
_KEYWORDS = frozenset({"and", "or", "not", "true", "false"})
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = re.compile(r"\s+")


# -- tokenizer ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Token:
    kind: str  # "num" | "str" | "ident" | "op" | "(" | ")" | "." | "end"
    text: str
    pos: int
    value: Any = None


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if m := _SPACE.match(text, pos):
            pos = m.end()
            continue
        if char in "\"'":
            pos = _string(text, pos, tokens)
            continue
        if m := _NUMBER.match(text, pos):
            literal = m.group()
            number = int(literal) if literal.lstrip("-").isdigit() else float(literal)
            tokens.append(_Token("num", literal, pos, number))
            pos = m.end()
            continue
        if m := _IDENT.match(text, pos):
            tokens.append(_Token("ident", m.group(), pos))
            pos = m.end()
            continue
        two = text[pos : pos + 2]
        if two in _COMPARISONS:
            tokens.append(_Token("op", two, pos))
            pos += 2
        elif char in "<>":
            tokens.append(_Token("op", char, pos))
            pos += 1
        elif char in "().":
            tokens.append(_Token(char, char, pos))
            pos += 1
        elif char == "=":
            raise ConditionSyntaxError(text, pos, "'=' is not an operator; use '=='")
        else:
            raise ConditionSyntaxError(text, pos, f"unexpected character {char!r}")
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _string(text: str, start: int, tokens: list[_Token]) -> int:
    quote, pos, chars = text[start], start + 1, []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text) and text[pos + 1] in (quote, "\\"):
            chars.append(text[pos + 1])
            pos += 2
        elif char == quote:
            tokens.append(_Token("str", text[start : pos + 1], start, "".join(chars)))
            return pos + 1
        else:
            chars.append(char)
            pos += 1
    raise ConditionSyntaxError(text, start, "unterminated string")


# -- parser ---------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def fail(self, reason: str, token: _Token | None = None) -> ConditionSyntaxError:
        return ConditionSyntaxError(self.text, (token or self.token).pos, reason)

    def next(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def at_keyword(self, word: str) -> bool:
        return self.token.kind == "ident" and self.token.text == word

    def parse(self) -> Node:
        node = self.or_expr()
        if self.token.kind != "end":
            raise self.fail(f"unexpected {self.token.text!r}")
        return node

    def or_expr(self) -> Node:
        return self.bool_op("or", self.and_expr)

    def and_expr(self) -> Node:
        return self.bool_op("and", self.not_expr)

    def bool_op(self, word: str, operand: Callable[[], Node]) -> Node:
        operands = [operand()]
        while self.at_keyword(word):
            self.next()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else BoolOp(word, tuple(operands))

    def not_expr(self) -> Node:
        if self.at_keyword("not"):
            self.next()
            with_depth = self.nest()
            node = Not(self.not_expr())
            self.depth = with_depth
            return node
        return self.comparison()

    def nest(self) -> int:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"nested deeper than {MAX_NESTING} levels")
        return self.depth - 1

    def comparison(self) -> Node:
        left = self.operand()
        if self.token.kind != "op":
            return left
        op = self.next().text
        right = self.operand()
        if self.token.kind == "op":
            raise self.fail("chained comparisons are not allowed; combine them with 'and'")
        return Compare(op, left, right)

    def operand(self) -> Node:
        token = self.next()
        if token.kind in ("num", "str"):
            return Literal(token.value)
        if token.kind == "(":
            outer = self.nest()
            node = self.or_expr()
            self.depth = outer
            if self.next().kind != ")":
                raise self.fail("missing ')'", self.tokens[self.index - 1])
            return node
        if token.kind == "ident":
            return self.name(token)
        if token.kind == "end":
            raise self.fail("condition ends too early", token)
        raise self.fail(f"unexpected {token.text!r}", token)

    def name(self, first: _Token) -> Node:
        if first.text in ("true", "false"):
            return Literal(first.text == "true")
        if first.text in _KEYWORDS:
            raise self.fail(f"unexpected keyword {first.text!r}", first)
        if first.text in TAG_FUNCTIONS:
            return self.tag_read(first)
        parts = [self.checked(first)]
        while self.token.kind == ".":
            self.next()
            part = self.next()
            if part.kind != "ident":
                raise self.fail("expected a name after '.'", part)
            parts.append(self.checked(part))
        if self.token.kind == "(":
            raise self.fail("function calls are not allowed, except tag(...) and quality(...)")
        if len(parts) > 1 and parts[0] not in NAMESPACES:
            raise self.fail(
                f"unknown namespace {parts[0]!r}; use result., results., param. or failed.",
                first,
            )
        if parts[0] == "failed" and len(parts) > 2:
            raise self.fail("failed.<action> takes exactly one action name", first)
        if len(parts) == 1 and parts[0] in NAMESPACES and parts[0] != "failed":
            raise self.fail(f"{parts[0]!r} needs a field, e.g. {parts[0]}.name", first)
        return Name(tuple(parts))

    def tag_read(self, function: _Token) -> Node:
        """``tag("name")`` or ``quality("name")``: exactly one string literal argument."""
        usage = f'{function.text}("<tag name>"), e.g. {function.text}("oven1.temp")'
        if self.token.kind != "(":
            raise self.fail(f"{function.text!r} reads a tag: write {usage}", function)
        self.next()
        argument = self.next()
        if argument.kind != "str":
            raise self.fail(f"the tag name must be a quoted string: {usage}", argument)
        name: str = argument.value
        if not name or len(name) > MAX_TAG_NAME:
            raise self.fail(f"a tag name has 1 to {MAX_TAG_NAME} characters", argument)
        if any(not char.isprintable() for char in name):
            raise self.fail("a tag name has no control characters", argument)
        if self.next().kind != ")":
            raise self.fail(f"{function.text}() takes exactly one tag name: {usage}",
                            self.tokens[self.index - 1])  # fmt: skip
        return TagRead(function.text, name)

    def checked(self, token: _Token) -> str:
        if token.text.startswith("__"):
            raise self.fail("names starting with '__' are not allowed", token)
        return token.text


def parse_condition(text: str | None) -> Condition:
    """Parse a transition condition; ``None`` or blank means ``done``.

    Raises :class:`ConditionSyntaxError` with the offset of the first problem.
    """
    if text is None or not text.strip():
        return DONE
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionSyntaxError(text[:40] + "...", 0, f"longer than {MAX_CONDITION_LENGTH}")
    return Condition(text, _Parser(text).parse())
