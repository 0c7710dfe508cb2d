"""Whether the broker still holds the retained state the publisher gave it.

A broker that crashes between two autosaves (or loses its persistence file) comes back
without retained messages, while Redis still says everything was published. The
publisher therefore keeps one retained *marker* topic whose value (a random token) it
also stores in Redis. The marker being missing or different on the broker means its
retained state is not what the publisher left: everything has to be published again.
"""

from __future__ import annotations

import uuid

import orjson

from microdcs.publisher.ports import RetainedOutlet
from microdcs.storage.redis import RedisStore


def new_marker() -> bytes:
    """A marker payload no broker can hold by chance."""
    return orjson.dumps({"marker": uuid.uuid4().hex})


class RetainedMarker:
    """The marker topic and the value Redis says it holds."""

    def __init__(self, store: RedisStore, key: str, topic: str) -> None:
        self._store = store
        self.key = key
        self.topic = topic

    async def intact(self, outlet: RetainedOutlet) -> bool:
        """True when the broker holds exactly the marker Redis knows of."""
        expected = await self._store.execute("GET", self.key)
        actual = await outlet.read_retained(self.topic)
        return expected is not None and actual == expected

    async def remember(self, value: bytes) -> None:
        """Store the marker just published (acknowledged by the broker)."""
        await self._store.execute("SET", self.key, value)
