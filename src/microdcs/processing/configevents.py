"""Configuration CloudEvents (station, tag, alarm configuration) say PUT or DELETE in the
``method`` extension, as the wire contract's configuration events do."""

from __future__ import annotations

from microdcs.core.errors import InvalidRequestError
from microdcs.processing.processor import MessageContext

__all__ = ["config_method"]


def config_method(context: MessageContext) -> str:
    """``PUT`` or ``DELETE`` from the CloudEvent ``method`` extension (PUT when absent)."""
    value = context.event.extensions.get("method")
    method = "PUT" if value is None else str(value).upper()
    if method not in ("PUT", "DELETE"):
        raise InvalidRequestError(f"method must be PUT or DELETE, not {value!r}")
    return method
