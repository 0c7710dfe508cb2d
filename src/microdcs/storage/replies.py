"""Reading the values of Redis replies: bulk strings arrive as ``bytes``, nil as ``None``.

Each script's typed reply is built from these (one place per script), so no call site
decodes or indexes a raw RESP value.
"""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    """A reply value as text; nil (``None``, or ``False`` from a Lua ``false``) is ``""``."""
    if value is None or value is False:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def optional_text(value: Any) -> str | None:
    """A reply value as text, ``None`` for nil or empty."""
    return text(value) or None


def number(value: Any) -> int:
    """A reply value (integer reply, or a bulk string holding one) as an ``int``; nil and
    empty are 0."""
    if type(value) is int:
        return value
    return int(text(value) or 0)
