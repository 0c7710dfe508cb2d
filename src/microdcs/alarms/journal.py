"""The alarm journal: one bounded Redis stream per scope of every transition and
operator action, and its reading by time range.

Entries are appended by ``transition.lua`` in the same script that stores the transition
(so the journal never shows what was not stored, nor misses what was), trimmed with
``XADD MAXLEN ~``. Stream ids are Redis' millisecond clock, so a time range is an
``XRANGE`` between two millisecond ids; each entry also carries the evaluating replica's
own time (``t``), which is what :class:`~microdcs.alarms.contract.JournalEntry.at` says.
Field names are one or two letters: the stream holds up to ``APP_ALARMS_JOURNAL_MAXLEN``
entries per scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from microdcs.alarms.contract import AlarmPriority, AlarmState, JournalEntry
from microdcs.alarms.store import AlarmStore

#: Most entries one query returns, whatever its limit asks.
MAX_QUERY = 10_000


def entry_fields(entry: JournalEntry) -> list[tuple[str, str]]:
    """The stream fields of ``entry`` (its scope is the stream's)."""
    fields = [
        ("a", entry.alarm), ("e", entry.event), ("s", entry.state.value),
        ("p", entry.previous.value), ("pr", entry.priority.value), ("t", repr(entry.at)),
    ]  # fmt: skip
    if entry.value is not None:
        fields.append(("v", orjson.dumps(entry.value).decode()))
    if entry.operator is not None:
        fields.append(("o", entry.operator))
    if entry.comment:
        fields.append(("c", entry.comment))
    return fields


def entry_from_fields(scope: str, fields: Mapping[str, str]) -> JournalEntry:
    value = fields.get("v")
    return JournalEntry(
        scope=scope,
        alarm=fields.get("a", ""),
        at=float(fields.get("t", 0.0)),
        event=fields.get("e", ""),
        state=AlarmState(fields.get("s", AlarmState.NORMAL.value)),
        previous=AlarmState(fields.get("p", AlarmState.NORMAL.value)),
        priority=AlarmPriority(fields.get("pr", AlarmPriority.MEDIUM.value)),
        value=orjson.loads(value) if value is not None else None,
        operator=fields.get("o"),
        comment=fields.get("c"),
    )


def ms_id(seconds: float) -> str:
    """The stream id bound of a Unix time (milliseconds, as Redis numbers entries)."""
    return str(max(0, int(seconds * 1000)))


class AlarmJournal:
    """Reads a scope's journal (appending is part of every transition's script)."""

    def __init__(self, store: AlarmStore) -> None:
        self.store = store

    async def entries(
        self, scope: str, start: float, end: float, limit: int = 1000
    ) -> list[JournalEntry]:
        """Entries stored from ``start`` to ``end`` (Unix seconds), oldest first."""
        count = max(1, min(limit, MAX_QUERY))
        rows = await self.store.journal(scope, ms_id(start), ms_id(end), count=count)
        return [entry_from_fields(scope, fields) for _, fields in rows]

    async def since(
        self, scope: str, after: str, *, count: int = 5000
    ) -> tuple[str, Sequence[JournalEntry]]:
        """Entries after stream id ``after`` ("0": from the start) and the last id read,
        for a reader that follows the journal (the KPI task)."""
        rows = await self.store.journal(scope, f"({after}", "+", count=count)
        if not rows:
            return after, ()
        return rows[-1][0], [entry_from_fields(scope, fields) for _, fields in rows]
