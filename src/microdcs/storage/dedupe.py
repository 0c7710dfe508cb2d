"""Duplicate detection on CloudEvent ``source`` + ``id``.

An event is marked only after it was processed successfully, together with the responses
it produced, so a re-delivered duplicate gets the same responses again and never a second
effect. Marks expire after a configurable TTL.
"""

from __future__ import annotations

import hashlib

import msgpack

from microdcs.cloudevent import CloudEvent
from microdcs.eventformat import pack_record, unpack_record
from microdcs.storage.redis import RedisStore


class Deduplicator:
    """Remembers processed events (and their responses) in Redis."""

    def __init__(self, store: RedisStore, ttl_seconds: int) -> None:
        self._store = store
        self._ttl = ttl_seconds

    def key(self, source: str, event_id: str) -> str:
        """The Redis key remembering ``source`` + ``id``; computed once per event."""
        # source and id are arbitrary strings: hash them so the key is bounded and safe.
        digest = hashlib.blake2b(f"{source}\x00{event_id}".encode(), digest_size=16).hexdigest()
        return self._store.key("dedupe", digest)

    async def lookup(self, key: str) -> list[CloudEvent] | None:
        """The responses of an already processed event, or ``None`` if it is new."""
        raw = await self._store.execute("GET", key)
        if raw is None:
            return None
        return [unpack_record(record) for record in msgpack.unpackb(raw, raw=False)]

    async def mark(self, key: str, responses: list[CloudEvent]) -> None:
        """Record the event behind ``key`` as processed with the responses it produced."""
        value = msgpack.packb([pack_record(r) for r in responses], use_bin_type=True)
        await self._store.execute("SET", key, value, "EX", self._ttl)
