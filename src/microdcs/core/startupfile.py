"""JSON files read once at start-up (tags, alarms, web users): read, or fail the start.

Every problem is a :class:`~microdcs.core.errors.ConfigurationError` naming the setting
and the file, and for files with many entries every bad entry at once, so one typo does
not hide the next. A scoped file maps each scope to a list of entries; a scope may be
written with dots (``site.area.line1``, as CloudEvent subjects are) or slashes
(``site/area/line1``, as topics are).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import orjson

from microdcs.core.errors import ConfigurationError, InputError

__all__ = ["read_json_file", "read_scoped_file", "scope_of_file_key"]

T = TypeVar("T")


def read_json_file(path: str, variable: str) -> Any:
    """The file's JSON value; unreadable or not JSON is a :class:`ConfigurationError`."""
    try:
        return orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigurationError(variable, f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(variable, f"{path} is not JSON: {exc}") from None


def scope_of_file_key(key: str) -> str:
    """``site/area/line1`` or ``site.area.line1`` -> ``site.area.line1``."""
    return key.strip("/").replace("/", ".")


def read_scoped_file(
    path: str, variable: str, entries: Callable[[Any], list[T]], what: str
) -> dict[str, list[T]]:
    """scope -> the entries ``entries(value)`` made of its list (it raises
    :class:`InputError` naming each bad entry); ``what`` names them (``alarms``)."""
    data = read_json_file(path, variable)
    if not isinstance(data, Mapping):
        raise ConfigurationError(variable, f"{path}: an object of scope -> list of {what}")
    scopes: dict[str, list[T]] = {}
    problems: list[str] = []
    for key, value in data.items():
        scope = scope_of_file_key(str(key))
        if not scope:
            problems.append("a scope name must not be empty")
            continue
        try:
            scopes[scope] = entries(value)
        except InputError as exc:
            problems.append(f"scope {key!r}: {exc}")
    if problems:
        raise ConfigurationError(variable, f"{path}: " + "; ".join(problems))
    return scopes
