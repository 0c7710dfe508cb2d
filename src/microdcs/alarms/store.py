"""The alarm runtime's Redis side: definitions, state records, timers and the journal.

Every write of a record is one ``transition.lua`` call: a compare-and-swap on the alarm's
version that stores the record, sets and cancels its timers, appends its journal entry and
counts the change, all or nothing. Reads go through the store's pipelined connection, so
the version check of every data event shares round trips with everything else.

A record is stored as ``b"<version> <json>"``: the version travels with the record it
belongs to (one ``HMGET`` reads both consistently), and a separate versions hash answers
the cheap "did anything change?" question of the fast path without the records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microdcs.alarms.keys import (
    DEFINITIONS_VERSION,
    AlarmKeys,
    scopes_key,
    split_timer_member,
    timer_member,
)
from microdcs.storage.redis import RedisStore
from microdcs.storage.replies import text
from microdcs.storage.script import Script

_LUA = Path(__file__).parent / "lua"

#: Every timer kind an alarm may have (its members are removed with its definition).
TIMER_KINDS = ("on_delay", "off_delay", "shelve_expiry")


@dataclass(frozen=True, slots=True)
class CasReply:
    """``transition.lua``: stored (with the scope's new change count), a version
    conflict (with the version found), or the alarm is no longer defined."""

    stored: bool
    seq: int = 0
    current: int = 0
    undefined: bool = False

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> CasReply:
        status = int(reply[0])
        if status == 1:
            return cls(True, seq=int(reply[1]))
        if status == -1:
            return cls(False, undefined=True)
        return cls(False, current=int(reply[1]))


@dataclass(frozen=True, slots=True)
class TimerOp:
    """Set (``due`` given) or cancel one timer of an alarm."""

    kind: str
    due: float | None


@dataclass(frozen=True, slots=True)
class DueTimer:
    alarm: str
    kind: str
    due: float


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as stored: its version and its JSON (``None``: never stored)."""

    version: int
    data: bytes | None


_NEVER = StoredRecord(0, None)


def _stored(value: Any) -> StoredRecord:
    if value is None:
        return _NEVER
    version, _, data = bytes(value).partition(b" ")
    return StoredRecord(int(version), data)


def _claimed(reply: Sequence[Any]) -> list[DueTimer]:
    timers: list[DueTimer] = []
    for i in range(0, len(reply), 2):
        alarm, kind = split_timer_member(text(reply[i]))
        timers.append(DueTimer(alarm, kind, float(reply[i + 1])))
    return timers


class AlarmStore:
    """Reads and writes the alarm keys of every scope (one instance per replica)."""

    def __init__(self, store: RedisStore, *, journal_maxlen: int) -> None:
        self.redis = store
        self.journal_maxlen = journal_maxlen
        self._known_scopes: set[str] = set()
        self._transition = Script.load(
            store, "alarms.transition", _LUA / "transition.lua", CasReply.from_reply
        )
        self._define = Script.load(store, "alarms.define", _LUA / "define.lua", int)
        self._drop = Script.load(store, "alarms.drop_timer", _LUA / "drop_timer.lua", int)
        # Called by every replica's timer task: without a span (see SFC claim_timers).
        self._claim = Script.load(
            store, "alarms.claim_timers", _LUA / "claim_timers.lua", _claimed, traced=False
        )

    def keys(self, scope: str) -> AlarmKeys:
        return AlarmKeys.of(self.redis, scope)

    # -- scopes ---------------------------------------------------------------------------
    async def register_scope(self, scope: str) -> None:
        """Make the scope's timers visible to every replica's timer task."""
        if scope not in self._known_scopes:
            await self.redis.execute("SADD", scopes_key(self.redis), scope)
            self._known_scopes.add(scope)

    async def scopes(self) -> set[str]:
        return {text(m) for m in await self.redis.execute("SMEMBERS", scopes_key(self.redis))}

    # -- definitions ----------------------------------------------------------------------
    async def put_definition(self, scope: str, alarm: str, definition: bytes) -> int:
        await self.register_scope(scope)
        k = self.keys(scope)
        return await self._define(
            [k.definitions, k.versions, k.records, k.timers, k.seq], ["put", alarm, definition]
        )

    async def delete_definition(self, scope: str, alarm: str) -> int:
        k = self.keys(scope)
        members = [timer_member(alarm, kind) for kind in TIMER_KINDS]
        return await self._define(
            [k.definitions, k.versions, k.records, k.timers, k.seq],
            ["delete", alarm, "", *members],
        )

    async def definitions(self, scope: str) -> tuple[int, dict[str, bytes]]:
        """The definitions version and every definition of the scope."""
        k = self.keys(scope)
        version, definitions = await self.redis.execute_many(
            [("HGET", k.versions, DEFINITIONS_VERSION), ("HGETALL", k.definitions)]
        )
        for reply in (version, definitions):
            if isinstance(reply, Exception):
                raise reply
        pairs = list(definitions or ())
        return int(version or 0), {
            text(pairs[i]): bytes(pairs[i + 1]) for i in range(0, len(pairs), 2)
        }

    # -- records --------------------------------------------------------------------------
    async def versions(self, scope: str, alarms: Sequence[str]) -> tuple[int, list[int]]:
        """The definitions version and each alarm's record version (0: never stored)."""
        reply = await self.redis.execute(
            "HMGET", self.keys(scope).versions, DEFINITIONS_VERSION, *alarms
        )
        return int(reply[0] or 0), [int(v or 0) for v in reply[1:]]

    async def records(self, scope: str, alarms: Sequence[str]) -> list[StoredRecord]:
        if not alarms:
            return []
        reply = await self.redis.execute("HMGET", self.keys(scope).records, *alarms)
        return [_stored(value) for value in reply]

    async def all_records(self, scope: str) -> dict[str, StoredRecord]:
        pairs = list(await self.redis.execute("HGETALL", self.keys(scope).records) or ())
        return {text(pairs[i]): _stored(pairs[i + 1]) for i in range(0, len(pairs), 2)}

    async def seq(self, scope: str) -> int:
        return int(await self.redis.execute("GET", self.keys(scope).seq) or 0)

    async def cas(
        self,
        scope: str,
        alarm: str,
        *,
        expected: int,
        version: int,
        record: bytes,
        timers: Sequence[TimerOp] = (),
        journal: Sequence[tuple[str, str]] = (),
        fired: DueTimer | None = None,
        fired_lease: float = 0.0,
    ) -> CasReply:
        """Store ``record`` as ``version`` if the stored version is ``expected``, with
        its timer changes and journal entry; ``fired`` is the claimed timer it handles."""
        k = self.keys(scope)
        args: list[Any] = [
            alarm, expected, version, b"%d %s" % (version, record), self.journal_maxlen,
            timer_member(alarm, fired.kind) if fired is not None else "", repr(fired_lease),
            len(timers),
        ]  # fmt: skip
        for op in timers:
            member = timer_member(alarm, op.kind)
            if op.due is None:
                args += ("cancel", member, "0")
            else:
                args += ("set", member, repr(op.due))
        args.append(len(journal))
        for name, value in journal:
            args += (name, value)
        return await self._transition(
            [k.records, k.versions, k.timers, k.journal, k.seq, k.definitions], args
        )

    # -- timers ---------------------------------------------------------------------------
    async def claim_timers(
        self, scope: str, now: float, lease_until: float, *, limit: int = 200
    ) -> list[DueTimer]:
        return await self._claim([self.keys(scope).timers], [repr(now), limit, repr(lease_until)])

    async def set_timers(self, scope: str, alarm: str, timers: Sequence[TimerOp]) -> None:
        """Move timers without a transition (a timer that fired early is set again)."""
        k = self.keys(scope)
        for op in timers:
            member = timer_member(alarm, op.kind)
            if op.due is None:
                await self.redis.execute("ZREM", k.timers, member)
            else:
                await self.redis.execute("ZADD", k.timers, repr(op.due), member)

    async def drop_timer(self, scope: str, timer: DueTimer, lease_until: float) -> None:
        """Remove a claimed timer that caused no transition (unless it was set again)."""
        member = timer_member(timer.alarm, timer.kind)
        await self._drop([self.keys(scope).timers], [member, repr(lease_until)])

    async def next_due(self, scopes: Sequence[str]) -> dict[str, float]:
        """The earliest due time of each scope's timers (``inf``: none), in one write."""
        if not scopes:
            return {}
        replies = await self.redis.execute_many(
            [("ZRANGE", self.keys(s).timers, 0, 0, "WITHSCORES") for s in scopes]
        )
        earliest: dict[str, float] = {}
        for scope, reply in zip(scopes, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            earliest[scope] = float(reply[1]) if reply else math.inf
        return earliest

    # -- journal --------------------------------------------------------------------------
    async def journal(
        self, scope: str, start: str, end: str, *, count: int
    ) -> list[tuple[str, dict[str, str]]]:
        """Entries with stream ids from ``start`` to ``end`` (``XRANGE`` bounds: ms ids,
        ``(`` exclusive, ``-``/``+``), oldest first."""
        reply = await self.redis.execute(
            "XRANGE", self.keys(scope).journal, start, end, "COUNT", count
        )
        entries: list[tuple[str, dict[str, str]]] = []
        for entry_id, fields in reply or ():
            values = list(fields or ())
            entries.append(
                (text(entry_id), {text(values[i]): text(values[i + 1])
                                  for i in range(0, len(values), 2)})
            )  # fmt: skip
        return entries

    async def append_journal(self, scope: str, fields: Sequence[tuple[str, str]]) -> None:
        """A journal entry that changes no record (a refused operator action)."""
        await self.redis.execute(
            "XADD", self.keys(scope).journal, "MAXLEN", "~", self.journal_maxlen, "*",
            *(x for pair in fields for x in pair),
        )  # fmt: skip
