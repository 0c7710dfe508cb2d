"""What other parts may know of plant data: a tag's current value, and who hears changes.

The alarm manager, the SFC engine's tag conditions and the web view use plant data only
through this module (the layer test enforces it). Everything here is a plain value or a
small interface, so a consumer's unit test fills a :class:`TagReader` with a dict and
calls its own :class:`TagChangeListener` directly, with no broker and no Redis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = [
    "Quality",
    "TagChange",
    "TagChangeListener",
    "TagReader",
    "TagSample",
    "TagValue",
]

#: What a tag may hold (its configured data type: float, int, bool or string).
TagValue = float | int | bool | str


class Quality(StrEnum):
    """OPC UA-style quality of a value, as the current value table keeps it."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    #: Also what a tag turns to when nothing arrived within its stale timeout.
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class TagSample:
    """The current value of one tag in one scope."""

    tag: str
    #: ``None`` only for a tag that is configured but has never received a value.
    value: TagValue | None
    quality: Quality
    #: When the source measured it (Unix seconds, from the sample's timestamp).
    source_time: float
    #: When the current value table stored it (Unix seconds, the receiving replica).
    receive_time: float
    #: True when the quality is bad because the tag received nothing for its stale timeout.
    stale: bool = False


@dataclass(frozen=True, slots=True)
class TagChange:
    """One change the current value table stored: a new value or quality, or staleness."""

    scope: str
    sample: TagSample
    #: What the table held before (``None`` for a tag's first value).
    previous: TagSample | None


class TagReader(Protocol):
    """Reads current values (the plant data store implements it)."""

    async def read(self, scope: str, tags: Sequence[str]) -> Mapping[str, TagSample]:
        """The current value of each named tag that is configured in ``scope``; a tag
        that is not configured is absent from the result."""
        ...


class TagChangeListener(Protocol):
    """Told of every change the current value table stored, after it is stored.

    Called on the replica that stored the change, once per data event (or per stale
    timer) with all of its changes, and awaited: a slow listener slows ingestion, it does
    not lose changes. A listener that must act on another replica (an SFC execution held
    elsewhere) hands the work on through Redis itself.
    """

    async def tags_changed(self, scope: str, changes: Sequence[TagChange]) -> None: ...
