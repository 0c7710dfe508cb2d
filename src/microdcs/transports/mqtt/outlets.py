"""MQTT implementations of the outlets domain packages declare (their ``ports`` modules).

:class:`MqttRetainedOutlet` is the publisher's retained-topic outlet, :class:`MqttCommandOutlet`
the equipment processor's way out for commands. Both use the handler's public publish
methods only, so they know nothing of the domains beyond the shape of their ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import Awaitable, Callable

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import BrokerUnavailableError
from microdcs.core.tracing import Tracing
from microdcs.processing.routing import Intent
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.mapping import to_binary
from microdcs.transports.mqtt.topics import TopicLayout

#: How long a read-back waits for the broker to deliver the retained message (or none).
PROBE_SECONDS = 5.0


class MqttRetainedOutlet:
    """Retained state through the replica's MQTT handler (the publisher's outlet).

    To a broker whose CONNACK said Retain Available 0 every publish and delete raises
    ``RetainUnavailableError``, an unavailable error: the publisher backs off and retries.
    """

    def __init__(self, handler: MqttHandler) -> None:
        self._handler = handler

    @property
    def connected(self) -> asyncio.Event:
        return self._handler.connected

    def publish_nowait(self, topic: str, payload: bytes, *, expiry: int | None) -> Awaitable[None]:
        return self._handler.publish_retained_nowait(topic, payload, expiry=expiry)

    async def publish(self, topic: str, payload: bytes, *, expiry: int | None) -> None:
        await self._handler.publish_retained(topic, payload, expiry=expiry)

    def delete_nowait(self, topic: str) -> Awaitable[None]:
        return self._handler.delete_retained_nowait(topic)

    def on_session(self, listener: Callable[[bool], None]) -> None:
        self._handler.session_listeners.append(listener)

    async def read_retained(self, topic: str) -> bytes | None:
        return await retained_value(self._handler.client.options, topic)


async def retained_value(options: ClientOptions, topic: str) -> bytes | None:
    """The retained message on ``topic`` right now (``None``: there is none).

    Read on a connection of its own (same broker, credentials and TLS as the replica's
    session, clean and expiring at once): the replica's own subscriptions are shared
    ones, which never receive retained messages. A second, non-retained message on a
    topic of the probe follows the subscription, so its arrival proves the broker holds
    nothing there instead of a timeout guessing it.
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
            will=None,  # the replica's Will is the replica's, not the probe's
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


class MqttCommandOutlet:
    """Commands to equipment on ``{prefix}/{scope}/commands`` (the equipment outlet).

    ``layout`` must be the one the equipment processor is bound with, so that answers
    come back on the events topic its shared subscription covers.
    """

    def __init__(self, handler: MqttHandler, layout: TopicLayout, tracing: Tracing) -> None:
        self._handler = handler
        self.layout = layout
        self._tracing = tracing

    async def send(self, event: CloudEvent, correlation_id: str) -> None:
        """Publish and wait for the broker's acknowledgement (QoS 1).

        The correlation id goes into the MQTT Correlation Data as well, and the Response
        Topic names the scope's shared events topic: any replica may get the answer.
        """
        topic = self.layout.topic(event.subject, Intent.COMMANDS)
        # A PRODUCER span child of the engine's step: the command carries its context, and
        # equipment echoes it on the answer, so the answer joins the job's trace.
        with self._tracing.produce(event, system="mqtt", destination=topic):
            envelope = to_binary(event)
            envelope.correlation_data = correlation_id.encode()
            envelope.response_topic = self.layout.topic(event.subject, Intent.EVENTS)
            await self._handler.publish(topic, envelope)
