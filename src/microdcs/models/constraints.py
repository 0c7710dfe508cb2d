"""JSON Schema validation keywords of model fields: the tests, the reasons, the formats.

The generator writes a property's keywords into its field metadata; the model compiler
builds each into the class's decoder from :data:`CONSTRAINTS` (one comparison after the
type check). Models the compiler does not take are checked after mashumaro's decode by
:func:`check_model`, from the same table, so both paths refuse the same values with the
same reasons.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

__all__ = [
    "APPLIES_TO",
    "CONSTRAINTS",
    "FORMATS",
    "Invalid",
    "bound_value",
    "check_model",
    "reason_of",
    "same",
]


class Invalid(Exception):
    """A schema violation; ``path`` is collected innermost-first while the stack unwinds."""

    def __init__(self, reason: str, path: list[str | int] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str | int] = path if path is not None else []

    def dotted(self) -> str | None:
        """``JobOrder.MaterialRequirements[2].Quantity`` (the names the sender wrote)."""
        text = ""
        for part in reversed(self.path):
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or None


#: JSON Schema keywords a field's metadata may carry, each the test that refuses ``{v}``
#: (``{k}`` is the keyword's value, bound as a constant) and the reason given. Numbers and
#: lengths are compared only after the type check passed, so the tests stay one comparison.
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "minimum": ("{v} < {k}", "must be at least {value!r}"),
    "maximum": ("{v} > {k}", "must be at most {value!r}"),
    "exclusiveMinimum": ("{v} <= {k}", "must be greater than {value!r}"),
    "exclusiveMaximum": ("{v} >= {k}", "must be less than {value!r}"),
    "minLength": ("len({v}) < {k}", "must be at least {value!r} characters long"),
    "maxLength": ("len({v}) > {k}", "must be at most {value!r} characters long"),
    "pattern": ("{k}({v}) is None", "must match the pattern {value!r}"),
    "minItems": ("len({v}) < {k}", "must have at least {value!r} items"),
    "maxItems": ("len({v}) > {k}", "must have at most {value!r} items"),
    "const": ("not _same({v}, {k})", "must be {value!r}"),
    "format": ("not {k}({v})", "{format}"),
}
_METADATA = {"alias", "serialize", "items", *CONSTRAINTS}
#: On an untyped field a keyword applies only to values of its JSON type (as in JSON Schema).
APPLIES_TO = {
    "minimum": "type({v}) in (int, float)",
    "maximum": "type({v}) in (int, float)",
    "exclusiveMinimum": "type({v}) in (int, float)",
    "exclusiveMaximum": "type({v}) in (int, float)",
    "minLength": "type({v}) is str",
    "maxLength": "type({v}) is str",
    "pattern": "type({v}) is str",
    "format": "type({v}) is str",
    "minItems": "type({v}) is list",
    "maxItems": "type({v}) is list",
}
#: RFC 3339 ``date-time`` (JSON Schema's format): a date, ``T``, a time and an offset.
_DATE_TIME = re.compile(
    r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)", re.ASCII
).fullmatch
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}").fullmatch


def _is_date_time(value: str) -> bool:
    """Shape by pattern, then the calendar (no 30 February); leap seconds are refused."""
    if _DATE_TIME(value) is None:
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_uuid(value: str) -> bool:
    return _UUID(value) is not None


FORMATS = {"date-time": _is_date_time, "uuid": _is_uuid}
FORMAT_REASONS = {"date-time": "must be an RFC 3339 date-time", "uuid": "must be a UUID"}


def same(value: Any, const: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1.0`` is ``1``, containers by their items."""
    if isinstance(value, bool) or isinstance(const, bool):
        return type(value) is type(const) and value == const
    if isinstance(value, list) and isinstance(const, list):
        return len(value) == len(const) and all(map(same, value, const))
    if isinstance(value, dict) and isinstance(const, dict):
        return value.keys() == const.keys() and all(same(value[k], const[k]) for k in value)
    return bool(value == const) and (type(value) in (int, float)) == (type(const) in (int, float))


def bound_value(keyword: str, value: Any) -> Any:
    """What a test's ``{k}`` stands for: the pattern's search, the format's check, or the value."""
    if keyword == "pattern":
        return re.compile(value).search
    if keyword == "format":
        return FORMATS[value]
    return value


def reason_of(keyword: str, value: Any) -> str:
    return CONSTRAINTS[keyword][1].format(value=value, format=FORMAT_REASONS.get(str(value)))


def _predicate(keyword: str) -> Callable[[Any, Any], bool]:
    test = CONSTRAINTS[keyword][0].format(v="v", k="k")
    guard = APPLIES_TO.get(keyword)
    source = (
        f"lambda v, k: ({guard.format(v='v')}) and ({test})" if guard else f"lambda v, k: {test}"
    )
    return eval(source, {"_same": same})  # type: ignore[no-any-return]


#: Refusing tests as functions, for values mashumaro decoded (JSON types guarded).
_PREDICATES = {keyword: _predicate(keyword) for keyword in CONSTRAINTS}


def check_model(model: Any) -> None:
    """Raise :class:`Invalid` at the first field of ``model`` (or below) that breaks a keyword."""
    for f in dataclasses.fields(model):
        if f.name.startswith("_") or f.metadata.get("serialize") == "omit":
            continue
        value = getattr(model, f.name)
        if value is None:
            continue
        try:
            _check_value(value, f.metadata)
        except Invalid as exc:
            exc.path.append(str(f.metadata.get("alias") or f.name))
            raise


def _check_value(value: Any, metadata: Any) -> None:
    for keyword in CONSTRAINTS:
        if keyword in metadata and (keyword != "format" or metadata[keyword] in FORMATS):
            limit = metadata[keyword]
            if _PREDICATES[keyword](value, bound_value(keyword, limit)):
                raise Invalid(reason_of(keyword, limit))
    items = metadata.get("items") or {}
    if isinstance(value, list):
        for index, item in enumerate(value):
            try:
                if item is not None:
                    _check_value(item, items)
            except Invalid as exc:
                exc.path.append(index)
                raise
    elif isinstance(value, dict):
        for key, item in value.items():
            try:
                if item is not None:
                    _check_value(item, {})
            except Invalid as exc:
                exc.path.append(str(key))
                raise
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        check_model(value)
