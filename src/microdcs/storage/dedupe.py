"""Duplicate detection on CloudEvent ``source`` + ``id``: claim, then record.

Before an event is processed it is claimed: ``SET key <claim> NX PX <claim time> GET``
takes the key when it is free and returns what it holds otherwise (one command, Redis
7), so of two copies arriving at once on one replica or two exactly one processes; the
other finds the claim and waits for the record. Once processed, the record with the
responses replaces the claim (``SET ... EX <dedupe TTL>``), so a re-delivered duplicate
gets the same responses again and never a second effect. A claim expires after
``APP_DEDUPE_CLAIM_SECONDS`` if its holder dies; a holder that fails without a response
to record deletes its own claim (compare-and-delete) so a retry processes at once.

A claim is ``b"\\xc1claim:" + holder + ":" + n``: 0xc1 is the one byte MessagePack never
uses, so a claim can never be mistaken for a record (a MessagePack array).

Keys are ``<prefix>:dedupe:{<source tag>}:<digest>``: the hash tag (a short hash of the
``source``) puts every key of one sender in one Redis Cluster slot, so the claims of
what one MES sent in a loop iteration go to one primary (a batch from several senders
is split per slot by the cluster connection). Before the tag, keys were
``<prefix>:dedupe:<digest>``; marks written under that layout are not found after an
upgrade, so for at most one TTL an event re-delivered across the upgrade is processed
again instead of being answered from its mark.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import secrets
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.eventformat import pack_records, unpack_records
from microdcs.storage.redis import RedisStore

#: What every claim marker starts with (0xc1: never used by MessagePack).
CLAIM_PREFIX = b"\xc1claim:"
#: Deletes a claim only while it is still the holder's (KEYS[1], ARGV[1]: the marker).
RELEASE_SOURCE = (Path(__file__).parent / "dedupe_release.lua").read_text(encoding="utf-8")


def event_digest(source: str, event_id: str) -> bytes:
    """16 bytes naming one event (``source`` + ``id``): bounded and safe in a key or a
    field, whatever the two strings are."""
    return hashlib.blake2b(f"{source}\x00{event_id}".encode(), digest_size=16).digest()


class Deduplicator:
    """Claims and remembers processed events (and their responses) in Redis.

    It is the pipeline's ``EventDedupe`` (``microdcs.processing.dedupe``) by its shape
    alone: storage does not import the processing layer.
    """

    def __init__(self, store: RedisStore, ttl_seconds: int, claim_seconds: float = 15.0) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._claim_seconds = claim_seconds
        self._claim_ms = max(1, int(claim_seconds * 1000))
        # Unique per process (the pid alone repeats across hosts and containers).
        self._holder = f"{os.getpid()}-{secrets.token_hex(6)}".encode()
        self._claims = itertools.count()

    @property
    def claim_seconds(self) -> float:
        """How long a claim lives unless its holder records the responses first."""
        return self._claim_seconds

    def key(self, source: str, event_id: str) -> str:
        """The Redis key remembering ``source`` + ``id``; computed once per event."""
        # source and id are arbitrary strings: hash them so the key is bounded and safe
        # (and the tag brace-free).
        tag = hashlib.blake2b(source.encode(), digest_size=6).hexdigest()
        return self._store.key("dedupe", f"{{{tag}}}", event_digest(source, event_id).hex())

    def new_claim(self) -> bytes:
        """A claim marker unique to this process and this claim."""
        return b"%s%s:%d" % (CLAIM_PREFIX, self._holder, next(self._claims))

    def claim(self, key: str, marker: bytes) -> Awaitable[bytes | None]:
        """``SET key marker NX PX <claim time> GET``: ``None`` when the key was free
        (ours now), else what it holds (a claim or a record), unchanged.

        A plain function returning the command's future: no coroutine per message.
        """
        return self._store.execute("SET", key, marker, "NX", "PX", self._claim_ms, "GET")

    def claim_many(
        self, claims: list[tuple[str, bytes]]
    ) -> Awaitable[list[bytes | BaseException | None]]:
        """:meth:`claim` of every pair, written together (commands issued in one loop
        iteration leave in one write): each reply, or the error of its command."""
        return asyncio.gather(
            *(self.claim(key, marker) for key, marker in claims), return_exceptions=True
        )

    @staticmethod
    def is_claim(raw: bytes) -> bool:
        """What a key holds is a claim (of some holder), not a record."""
        return raw.startswith(CLAIM_PREFIX)

    @staticmethod
    def recorded(raw: bytes) -> list[CloudEvent]:
        """The responses kept in a stored record."""
        return unpack_records(raw)

    async def lookup(self, key: str) -> list[CloudEvent] | None:
        """The responses recorded under ``key``; ``None`` for no record or a claim (for
        tools and tests: the pipeline claims instead of looking up)."""
        raw: bytes | None = await self._store.execute("GET", key)
        return None if raw is None or self.is_claim(raw) else unpack_records(raw)

    def mark(self, key: str, responses: list[CloudEvent]) -> Awaitable[None]:
        """Record the event behind ``key`` as processed with the responses it produced
        (replacing the claim).

        Await the result. A plain function returning the command's future: no coroutine
        of its own on the path of every message.
        """
        return self._store.execute("SET", key, pack_records(responses), "EX", self._ttl)

    def release(self, key: str, marker: bytes) -> Awaitable[Any]:
        """Delete ``key`` if it still holds the claim ``marker``.

        ``EVAL`` with the source rather than a script object's ``EVALSHA``: this is the
        rare path, and a holder cancelled at shutdown must be able to send it without
        awaiting (no ``NOSCRIPT`` round to handle).
        """
        return self._store.execute("EVAL", RELEASE_SOURCE, 1, key, marker)
