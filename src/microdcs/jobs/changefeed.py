"""Reading the scopes' change streams, and keeping a reader's cursors, for the publisher.

Every job change appends an entry to its scope's change stream (``changes``) in the same
script that makes it. The retained-topic publisher follows those streams; this reader
owns the Redis side of that: one pipelined round trip reads the new entries of many
scopes, one more stores the cursors of many scopes. The cursor's content is the
reader's business: it is stored and returned as the text it was given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from microdcs.jobs.keys import ScopeKeys
from microdcs.jobs.states import JobState, JobStatus
from microdcs.storage.redis import RedisStore
from microdcs.storage.replies import text


@dataclass(frozen=True, slots=True)
class ChangeEntry:
    """One entry of a change stream: a job after one change (``put_order.lua`` and
    ``transition.lua`` write its fields ``id op v st sub res seq``)."""

    #: Stream entry id, ``<ms>-<n>``.
    entry_id: str
    job_id: str
    #: ``upsert`` or ``remove``.
    op: str
    #: The scope's change counter after this change.
    seq: int
    state: int
    substate: int
    has_result: bool

    @classmethod
    def from_fields(cls, entry_id: Any, fields: Mapping[bytes, Any]) -> ChangeEntry:
        return cls(
            text(entry_id),
            text(fields[b"id"]),
            text(fields[b"op"]),
            int(fields[b"seq"]),
            int(fields[b"st"]),
            int(fields[b"sub"]),
            text(fields[b"res"]) == "1",
        )

    @property
    def removed(self) -> bool:
        """The job left the list (deleted or archived)."""
        return self.op == "remove"

    @property
    def status(self) -> JobStatus:
        return JobStatus(JobState(self.state), self.substate or None)

    @property
    def time(self) -> float:
        """Wall-clock time (s) Redis added the entry: its id is ``<ms>-<n>``."""
        return int(self.entry_id.split("-", 1)[0]) / 1000


def stream_reply(reply: Any) -> list[ChangeEntry]:
    """The entries of a one-stream ``XREAD`` reply (nil when there are none)."""
    if not reply:
        return []
    entries = []
    for entry_id, fields in reply[0][1]:
        if not isinstance(fields, dict):
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        entries.append(ChangeEntry.from_fields(entry_id, fields))
    return entries


class ChangeFeed:
    """The change streams of every scope, read through the store's pipelined connection."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def _keys(self, scope: str) -> ScopeKeys:
        return ScopeKeys.of(self._store, scope)

    async def cursor(self, scope: str) -> str | None:
        """The cursor last saved for ``scope``, ``None`` if there is none."""
        stored = await self._store.execute("GET", self._keys(scope).cursor)
        return None if stored is None else text(stored)

    async def read(
        self, positions: Sequence[tuple[str, str]], *, count: int
    ) -> list[list[ChangeEntry]]:
        """Up to ``count`` entries after the stream id of each (scope, stream id), per
        scope in the same order; one pipelined round trip for all of them."""
        replies = await self._store.execute_many(
            [
                ("XREAD", "COUNT", count, "STREAMS", self._keys(scope).changes, position)
                for scope, position in positions
            ]
        )
        batches = []
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
            batches.append(stream_reply(reply))
        return batches

    async def save(self, cursors: Mapping[str, str]) -> None:
        """Store the cursor of each scope; one pipelined round trip for all of them."""
        replies = await self._store.execute_many(
            [("SET", self._keys(scope).cursor, cursor) for scope, cursor in cursors.items()]
        )
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
