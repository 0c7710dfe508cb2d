"""The engine's Redis side: executions, work streams, timers and the awaiting index.

Per-item commands go through the store's pipelined connection (shared round trips);
blocking stream reads and claims use the redis-py client, which has its own connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from redis.exceptions import ResponseError

from microdcs.sfc.engine.keys import GROUP, EngineKeys, scopes_key
from microdcs.sfc.engine.plan import Plan, WorkItem
from microdcs.sfc.engine.tracecontext import NONE, Carried
from microdcs.sfc.state import Execution, ExecutionStatus
from microdcs.storage.redis import RedisStore
from microdcs.storage.replies import number, text
from microdcs.storage.script import Script

_LUA = Path(__file__).parent / "lua"

Entry = tuple[str, WorkItem]


@dataclass(frozen=True, slots=True)
class CasReply:
    """``cas.lua``: ``{1}`` when stored, ``{0, current version}`` when not."""

    stored: bool
    #: The version found instead of the expected one ("" when stored, or absent).
    current: str = ""

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> CasReply:
        if int(reply[0]) == 1:
            return cls(True)
        return cls(False, text(reply[1]) if len(reply) > 1 else "")


@dataclass(frozen=True, slots=True)
class Stored:
    """An execution as stored, with the work entry that produced it."""

    execution: Execution
    version: str
    applied: str
    subject: str
    #: The job's trace: the context its start item carried (``tp``/``ts`` of the hash).
    trace: Carried = NONE
    #: The last work entries applied (``applied`` among them), oldest first.
    recent: tuple[str, ...] = ()


class EngineStore:
    def __init__(self, store: RedisStore, *, maxlen: int) -> None:
        self.redis = store
        self.maxlen = maxlen
        self._known_scopes: set[str] = set()
        self._cas = Script.load(store, "sfc.cas", _LUA / "cas.lua", CasReply.from_reply)
        #: Replies how many actions the message completes.
        self._match = Script.load(store, "sfc.match", _LUA / "match.lua", number)
        # Polled several times a second: called without a span (see claim_timers).
        self._timers = Script.load(
            store, "sfc.claim_timers", _LUA / "claim_timers.lua", number, traced=False
        )

    def keys(self, scope: str) -> EngineKeys:
        return EngineKeys.of(self.redis, scope)

    # -- scopes ---------------------------------------------------------------------------
    async def register_scope(self, scope: str) -> bool:
        """Make the scope discoverable by every replica; True the first time in this process."""
        if scope in self._known_scopes:
            return False
        await self.redis.execute("SADD", scopes_key(self.redis), scope)
        self._known_scopes.add(scope)
        return True

    async def scopes(self) -> set[str]:
        return {text(m) for m in await self.redis.execute("SMEMBERS", scopes_key(self.redis))}

    async def ensure_group(self, scope: str) -> None:
        try:
            await self.redis.guarded(
                self.redis.client.xgroup_create(self.keys(scope).work, GROUP, "0", mkstream=True)
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _regroup(self, scope: str, error: ResponseError) -> None:
        """The consumer group is gone (Redis restarted without the stream): create it
        again rather than fail every read until a restart of the engine."""
        if "NOGROUP" not in str(error):
            raise error
        await self.ensure_group(scope)

    # -- work -----------------------------------------------------------------------------
    async def enqueue(self, scope: str, item: WorkItem) -> None:
        await self.redis.execute(
            "XADD", self.keys(scope).work, "MAXLEN", "~", self.maxlen, "*", *item.fields()
        )

    async def read(self, scope: str, consumer: str, *, count: int, block_ms: int) -> list[Entry]:
        try:
            reply: Any = await self.redis.guarded(
                self.redis.client.xreadgroup(
                    GROUP, consumer, {self.keys(scope).work: ">"}, count=count, block=block_ms
                )
            )
        except ResponseError as exc:
            await self._regroup(scope, exc)
            return []
        entries: list[Entry] = []
        for _, items in reply or ():
            entries += [(text(i), WorkItem.from_fields(f)) for i, f in items if f]
        return entries

    async def claim(
        self, scope: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[Entry]:
        """Entries another (dead or stuck) consumer left unacknowledged for ``min_idle_ms``."""
        try:
            reply: Any = await self.redis.guarded(
                self.redis.client.xautoclaim(
                    self.keys(scope).work, GROUP, consumer, min_idle_ms, "0-0", count=count
                )
            )
        except ResponseError as exc:
            await self._regroup(scope, exc)
            return []
        items = reply[1] if reply else []
        return [(text(i), WorkItem.from_fields(f)) for i, f in items if f]

    async def ack(self, scope: str, ids: list[str]) -> None:
        if ids:
            await self.redis.execute("XACK", self.keys(scope).work, GROUP, *ids)

    # -- executions -----------------------------------------------------------------------
    async def load(self, scope: str, job_id: str) -> Stored | None:
        v, state, applied, subject, tp, ts, recent = await self.redis.execute(
            "HMGET", self.keys(scope).execution(job_id), "v", "state", "applied", "subject",
            "tp", "ts", "recent",
        )  # fmt: skip
        if v is None or state is None:
            return None
        return Stored(
            Execution.from_dict(orjson.loads(state)), text(v), text(applied), text(subject),
            Carried(text(tp), text(ts)) if tp else NONE, tuple(text(recent).split()),
        )  # fmt: skip

    async def field(self, scope: str, job_id: str, name: str) -> bytes | None:
        value = await self.redis.execute("HGET", self.keys(scope).execution(job_id), name)
        return bytes(value) if value is not None else None

    async def cas(
        self,
        scope: str,
        new: Execution,
        *,
        expected: str,
        entry_id: str,
        effects: bytes,
        plan: Plan,
        extra: dict[str, bytes | str] | None = None,
    ) -> bool:
        """Store ``new`` if the stored version is still ``expected`` ("" = absent)."""
        k = self.keys(scope)
        pairs = [x for item in (extra or {}).items() for x in item]
        keys = [
            k.execution(new.job_id),
            k.timers,
            k.awaiting,
            *(k.base + suffix for suffix in plan.sets),
        ]
        # Membership of the active set changes in the same atomic write as the execution.
        keys.append(k.active)
        live = new.status in (ExecutionStatus.RUNNING, ExecutionStatus.PAUSED)
        active_op = ["sa" if live else "sr", len(keys), new.job_id]
        reply = await self._cas(
            keys,
            [expected, new.version, orjson.dumps(new.to_dict()), entry_id, effects,
             len(pairs) // 2, *pairs, *plan.ops, *active_op],
        )  # fmt: skip
        return reply.stored

    # -- timers and matching --------------------------------------------------------------
    async def claim_timers(self, scope: str, now: float, *, limit: int = 500) -> int:
        """Queue the due timers of a scope as work items.

        Not traced: a span per poll (every replica, every scope, many times a second)
        would bury the real traces; the timer items it queues are processed in their
        job's trace.
        """
        k = self.keys(scope)
        return await self._timers([k.timers, k.work], [now, limit, self.maxlen])

    async def active_count(self, scopes: set[str]) -> int:
        """Executions running or paused in these scopes (one pipelined SCARD each)."""
        counts = await asyncio.gather(
            *(self.redis.execute("SCARD", self.keys(scope).active) for scope in scopes)
        )
        return sum(int(c) for c in counts)

    async def add_timer(self, scope: str, member: str, due_at: float) -> None:
        await self.redis.execute("ZADD", self.keys(scope).timers, due_at, member)

    async def match(
        self,
        scope: str,
        correlation_id: str,
        kind: str,
        payload: str | bytes,
        event_type: str,
        trace: Carried = NONE,
    ) -> int:
        """Queue the completion(s) an equipment message causes, with its trace context."""
        k = self.keys(scope)
        return await self._match(
            [k.awaiting, k.work, k.pull(event_type)],
            [correlation_id, kind, payload, self.maxlen, trace.traceparent, trace.tracestate],
        )
