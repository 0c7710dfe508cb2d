"""The configuration reference (``docs/configuration.md``), generated from the config object."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from microdcs.app.config import iter_settings

HEADER = """\
# Configuration reference

Generated from `microdcs.app.config` by `microdcs config-docs > docs/configuration.md`;
a test fails when this file and the code disagree. Every setting is an environment
variable read once at start-up; an invalid value stops the start with a message naming
the variable.

| variable | type | default | meaning |
|---|---|---|---|
"""


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return f"{_type_name(inner[0])} (optional)"
    return getattr(annotation, "__name__", str(annotation))


def _default(value: Any) -> str:
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"`{value}`"


def render() -> str:
    rows = [
        f"| `{env}` | {_type_name(annotation)} | {_default(default)} | {doc} |"
        for env, annotation, doc, default in iter_settings()
    ]
    return HEADER + "\n".join(rows) + "\n"
