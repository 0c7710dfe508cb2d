"""Whether the broker still holds the retained state the publisher gave it.

A broker that crashes between two autosaves (or loses its persistence file) comes back
without retained messages, while Redis still says everything was published. The
publisher therefore keeps one retained *marker* topic whose value (a random token) it
also stores in Redis. The marker being missing or different on the broker means its
retained state is not what the publisher left: everything has to be published again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid

import orjson

from microdcs.core.errors import BrokerUnavailableError
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient

#: How long the probe waits for the broker to deliver the marker (or its absence).
PROBE_SECONDS = 5.0


def new_marker() -> bytes:
    """A marker payload no broker can hold by chance."""
    return orjson.dumps({"marker": uuid.uuid4().hex})


async def retained_value(options: ClientOptions, topic: str) -> bytes | None:
    """The retained message on ``topic`` right now (``None``: there is none).

    Read on a connection of its own (same broker, credentials and TLS as the replica's
    session, clean and expiring at once): the replica's own subscriptions are shared
    ones, which never receive retained messages. A second, non-retained message on a
    topic of the probe follows the marker's subscription, so its arrival proves the
    broker has no marker instead of a timeout guessing it.
    """
    sentinel = f"{topic}/probe/{uuid.uuid4().hex}"
    loop = asyncio.get_running_loop()
    found: asyncio.Future[bytes | None] = loop.create_future()

    def on_message(message: codec.Publish) -> None:
        if found.done():
            return
        if message.topic == topic and message.retain and message.payload:
            found.set_result(message.payload)
        elif message.topic == sentinel:
            found.set_result(None)

    probe = MqttClient(
        dataclasses.replace(
            options,
            client_id=f"{options.client_id}-probe-{uuid.uuid4().hex[:8]}",
            clean_start=True,
            session_expiry=0,
        ),
        on_message,
    )
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            await probe.connect()
            codes = await probe.subscribe([(topic, 0)])
            if codes and codes[0] >= 0x80:
                raise BrokerUnavailableError(f"the broker refused a subscription to {topic}")
            await probe.subscribe([(sentinel, 0)])
            probe.publish(sentinel, b"", b"\x00", qos=0)
            return await found
    except TimeoutError:
        raise BrokerUnavailableError(f"no answer from the broker about {topic}") from None
    finally:
        with contextlib.suppress(Exception):
            await probe.disconnect(end_session=True)


class RetainedMarker:
    """The marker topic and the value Redis says it holds."""

    def __init__(self, store: RedisStore, key: str, topic: str) -> None:
        self._store = store
        self.key = key
        self.topic = topic

    async def intact(self, options: ClientOptions) -> bool:
        """True when the broker holds exactly the marker Redis knows of."""
        expected = await self._store.execute("GET", self.key)
        actual = await retained_value(options, self.topic)
        return expected is not None and actual == expected

    async def remember(self, value: bytes) -> None:
        """Store the marker just published (acknowledged by the broker)."""
        await self._store.execute("SET", self.key, value)
