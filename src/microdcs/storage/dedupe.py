"""Duplicate detection on CloudEvent ``source`` + ``id``.

An event is marked only after it was processed successfully, together with the responses
it produced, so a re-delivered duplicate gets the same responses again and never a second
effect. Marks expire after a configurable TTL.

Keys are ``<prefix>:dedupe:{<source tag>}:<digest>``: the hash tag (a short hash of the
``source``) puts every mark of one sender in one Redis Cluster slot, so the batched
lookup of what one MES sent in a loop iteration is one ``MGET`` on one primary (a batch
from several senders is split per slot by the cluster connection). Before the tag, keys
were ``<prefix>:dedupe:<digest>``; marks written under that layout are not found after an
upgrade, so for at most one TTL an event re-delivered across the upgrade is processed
again instead of being answered from its mark.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.eventformat import pack_records, unpack_records
from microdcs.storage.redis import RedisStore


class Deduplicator:
    """Remembers processed events (and their responses) in Redis.

    It is the pipeline's ``EventDedupe`` (``microdcs.processing.dedupe``) by its shape
    alone: storage does not import the processing layer.
    """

    def __init__(self, store: RedisStore, ttl_seconds: int) -> None:
        self._store = store
        self._ttl = ttl_seconds

    def key(self, source: str, event_id: str) -> str:
        """The Redis key remembering ``source`` + ``id``; computed once per event."""
        # source and id are arbitrary strings: hash them so the key is bounded and safe
        # (and the tag brace-free).
        tag = hashlib.blake2b(source.encode(), digest_size=6).hexdigest()
        digest = hashlib.blake2b(f"{source}\x00{event_id}".encode(), digest_size=16).hexdigest()
        return self._store.key("dedupe", f"{{{tag}}}", digest)

    async def lookup(self, key: str) -> list[CloudEvent] | None:
        """The responses of an already processed event, or ``None`` if it is new."""
        return self.recorded(await self._store.execute("GET", key))

    def fetch_many(self, keys: list[str]) -> Awaitable[list[bytes | None]]:
        """The stored records of several keys in one command (``MGET``), for
        :meth:`recorded`: a transport looks up a whole batch of received events at once."""
        return self._store.execute("MGET", *keys)

    @staticmethod
    def recorded(raw: bytes | None) -> list[CloudEvent] | None:
        """The responses kept in a stored record, ``None`` for no record (a new event)."""
        return None if raw is None else unpack_records(raw)

    def mark(self, key: str, responses: list[CloudEvent]) -> Awaitable[None]:
        """Record the event behind ``key`` as processed with the responses it produced.

        Await the result. A plain function returning the command's future: no coroutine
        of its own on the path of every message.
        """
        return self._store.execute("SET", key, pack_records(responses), "EX", self._ttl)
