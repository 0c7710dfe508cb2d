"""The current value table's Redis side: tag definitions, the stored samples and the stale
deadlines of every scope, written only by the scripts in ``lua/``.

One data event is one ``ingest.lua`` call (check every sample, then store them, all or
nothing); one look at a scope's due deadlines is one ``stale.lua`` call. Both answer with
the changes they stored, already read here into :class:`~.contract.TagChange` values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from microdcs.plantdata.contract import TagChange, TagSample
from microdcs.plantdata.keys import PlantKeys, scopes_key
from microdcs.plantdata.tags import TagDefinition, decode_sample, never_received, type_of_spec
from microdcs.storage.redis import RedisStore
from microdcs.storage.replies import text
from microdcs.storage.script import Script

_LUA = Path(__file__).parent / "lua"


def _changes(scope: str, reply: Sequence[Any], start: int) -> list[TagChange]:
    changes: list[TagChange] = []
    for i in range(start, len(reply), 4):
        tag = text(reply[i])
        code = text(reply[i + 1])
        sample = decode_sample(tag, code, reply[i + 2])
        assert sample is not None
        changes.append(TagChange(scope, sample, decode_sample(tag, code, reply[i + 3])))
    return changes


@dataclass(frozen=True, slots=True)
class IngestReply:
    """``ingest.lua``: the refused samples (index, code), or what was stored."""

    refused: list[tuple[int, str]]
    #: The raw changes (read into TagChange by :meth:`PlantDataStore.ingest`).
    raw: Sequence[Any]
    #: The earliest stale deadline the call set (``inf``: none).
    earliest: float

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> IngestReply:
        if int(reply[0]) == 0:
            refused = [(int(reply[i]), text(reply[i + 1])) for i in range(1, len(reply), 2)]
            return cls(refused, (), math.inf)
        due = text(reply[1])
        return cls([], reply, float(due) if due else math.inf)


@dataclass(frozen=True, slots=True)
class Ingested:
    refused: list[tuple[int, str]]
    changes: list[TagChange]
    earliest: float


class PlantDataStore:
    """Reads and writes the plant data keys of every scope (one instance per replica)."""

    def __init__(self, store: RedisStore) -> None:
        self.redis = store
        self._known_scopes: set[str] = set()
        self._ingest = Script.load(
            store, "plant.ingest", _LUA / "ingest.lua", IngestReply.from_reply
        )
        self._define = Script.load(store, "plant.define", _LUA / "define.lua", int)
        # Called by every replica's stale task: without a span (like the alarm timers).
        self._stale = Script.load(store, "plant.stale", _LUA / "stale.lua", list, traced=False)
        self._stale_done = Script.load(store, "plant.stale_done", _LUA / "stale_done.lua", int)

    def keys(self, scope: str) -> PlantKeys:
        return PlantKeys.of(self.redis, scope)

    # -- scopes ---------------------------------------------------------------------------
    async def register_scope(self, scope: str) -> None:
        """Make the scope's stale deadlines visible to every replica's stale task."""
        if scope not in self._known_scopes:
            await self.redis.execute("SADD", scopes_key(self.redis), scope)
            self._known_scopes.add(scope)

    async def scopes(self) -> set[str]:
        return {text(m) for m in await self.redis.execute("SMEMBERS", scopes_key(self.redis))}

    # -- definitions ----------------------------------------------------------------------
    async def put_definition(self, scope: str, definition: TagDefinition) -> bool:
        """Store it; True when a value of another type was dropped."""
        await self.register_scope(scope)
        k = self.keys(scope)
        data = orjson.dumps(definition.to_config().to_raw())
        dropped = await self._define(
            [k.definitions, k.specs, k.cvt, k.stale],
            ["put", definition.name, data, definition.spec],
        )
        return bool(dropped)

    async def delete_definition(self, scope: str, tag: str) -> None:
        k = self.keys(scope)
        await self._define([k.definitions, k.specs, k.cvt, k.stale], ["delete", tag, "", ""])

    async def definitions(self, scope: str) -> dict[str, bytes]:
        """Every definition of the scope (its ``...config.tag.v1`` JSON)."""
        pairs = list(await self.redis.execute("HGETALL", self.keys(scope).definitions) or ())
        return {text(pairs[i]): bytes(pairs[i + 1]) for i in range(0, len(pairs), 2)}

    # -- samples --------------------------------------------------------------------------
    async def ingest(self, scope: str, now: float, args: Sequence[str]) -> Ingested:
        """Run ``ingest.lua`` with the samples' arguments (see :mod:`.samples`)."""
        k = self.keys(scope)
        reply = await self._ingest([k.specs, k.cvt, k.stale], [repr(now), *args])
        if reply.refused:
            return Ingested(reply.refused, [], math.inf)
        return Ingested([], _changes(scope, reply.raw, 2), reply.earliest)

    async def read(self, scope: str, tags: Sequence[str]) -> dict[str, TagSample]:
        """The current sample of each configured tag asked for (:class:`TagReader`)."""
        if not tags:
            return {}
        k = self.keys(scope)
        specs, stored = await self.redis.execute_many(
            [("HMGET", k.specs, *tags), ("HMGET", k.cvt, *tags)]
        )
        for reply in (specs, stored):
            if isinstance(reply, Exception):
                raise reply
        result: dict[str, TagSample] = {}
        for tag, spec, value in zip(tags, specs, stored, strict=True):
            if spec is not None:
                result[tag] = decode_sample(tag, type_of_spec(spec), value) or never_received(tag)
        return result

    # -- stale deadlines ------------------------------------------------------------------
    async def claim_stale(
        self, scope: str, now: float, lease_until: float, *, limit: int = 500
    ) -> list[TagChange]:
        """Mark the due tags stale and lease their deadlines until ``lease_until``."""
        k = self.keys(scope)
        reply = await self._stale([k.specs, k.cvt, k.stale], [repr(now), limit, repr(lease_until)])
        return _changes(scope, reply, 0)

    async def stale_reported(self, scope: str, lease_until: float, tags: Sequence[str]) -> None:
        """The listeners heard these tags' staleness: their leased deadlines go."""
        await self._stale_done([self.keys(scope).stale], [repr(lease_until), *tags])

    async def next_due(self, scopes: Sequence[str]) -> Mapping[str, float]:
        """The earliest stale deadline of each scope (``inf``: none), in one write."""
        if not scopes:
            return {}
        replies = await self.redis.execute_many(
            [("ZRANGE", self.keys(s).stale, 0, 0, "WITHSCORES") for s in scopes]
        )
        earliest: dict[str, float] = {}
        for scope, reply in zip(scopes, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            earliest[scope] = float(reply[1]) if reply else math.inf
        return earliest
