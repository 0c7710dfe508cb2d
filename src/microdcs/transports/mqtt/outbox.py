"""Everything this replica publishes to the broker goes out here.

Two ways out: :meth:`Outbox.send` queues a PUBLISH with an optional acknowledgement
callback (the per-message path of responses and emitted events: no future, no task),
and :meth:`Outbox.publish` queues one and returns a future completed by the broker's
PUBACK; :meth:`Outbox.acknowledged` is the one awaiting wrapper around it. Retained
state and its removal are publishes like any other, with their properties encoded once;
to a broker without retained messages (Retain Available 0) they raise
:class:`~microdcs.transports.mqtt.client.RetainUnavailableError` before anything is queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import AckCallback, MqttClient
from microdcs.transports.mqtt.mapping import REPEATING_ATTRIBUTES, MqttEnvelope, encode_properties
from microdcs.transports.mqtt.wirecheck import check_topic

#: Message Expiry Interval (s) of retained state unless the publisher says otherwise.
RETAINED_EXPIRY_DEFAULT = 172800


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Outbox:
    """The publishing side of one MQTT connection (kept across reconnects)."""

    __slots__ = ("_repeating", "_retained", "client")

    def __init__(self) -> None:
        #: Set by the session once the client exists.
        self.client: MqttClient | None = None
        self._repeating = codec.PairCache(REPEATING_ATTRIBUTES)
        #: (content type, expiry) -> encoded properties of retained state
        self._retained: dict[tuple[str, int | None], bytes] = {}

    def _client(self) -> MqttClient:
        if self.client is None:
            raise RuntimeError("the MQTT handler is not running")
        return self.client

    def send(
        self,
        topic: str,
        envelope: MqttEnvelope,
        *,
        qos: int = 1,
        retain: bool = False,
        on_ack: AckCallback | None = None,
    ) -> None:
        """Queue one PUBLISH (kept across reconnects until the broker acknowledges it).

        ``on_ack`` runs on the PUBACK; at QoS 0, at once.
        """
        self._client().publish(
            topic,
            envelope.payload,
            encode_properties(envelope, self._repeating),
            qos=qos,
            retain=retain,
            on_ack=on_ack,
        )
        if qos == 0 and on_ack is not None:
            on_ack()

    def publish(
        self,
        topic: str,
        payload: bytes,
        properties: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
    ) -> asyncio.Future[None]:
        """Queue a publish; the returned future completes on the broker's PUBACK.

        A retained one raises ``RetainUnavailableError`` when the broker's last CONNACK
        said Retain Available 0. Many of these can be awaited together (``gather``)
        without a task per message.
        """
        client = self._client()
        if retain and not client.retain_available:
            raise client.refuse_retain()  # the caller learns it now, not from a timeout
        done: asyncio.Future[None] = client.loop.create_future()
        client.publish(
            topic, payload, properties, qos=qos, retain=retain, on_ack=partial(_resolve, done)
        )
        if qos == 0:
            _resolve(done)
        return done

    async def acknowledged(self, publish: Callable[[], asyncio.Future[None]]) -> None:
        """Wait until the socket takes more, then ``publish`` and wait for its PUBACK."""
        await self._client().wait_writable()
        await publish()

    def properties(self, envelope: MqttEnvelope) -> bytes:
        """The encoded PUBLISH properties of ``envelope``."""
        return encode_properties(envelope, self._repeating)

    def publish_envelope(
        self, topic: str, envelope: MqttEnvelope, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """:meth:`publish` of an envelope."""
        return self.publish(
            topic, envelope.payload, self.properties(envelope), qos=qos, retain=retain
        )

    def publish_retained(
        self,
        topic: str,
        payload: bytes,
        *,
        expiry: int | None = RETAINED_EXPIRY_DEFAULT,
        content_type: str = "application/json",
    ) -> asyncio.Future[None]:
        """Queue retained state (QoS 1, Message Expiry Interval); future = acknowledged.

        Raises :class:`OutgoingEventError` for a topic the broker would refuse and
        ``RetainUnavailableError`` (an unavailable error: wait and retry) for a broker
        that keeps no retained messages.
        """
        check_topic(topic)
        properties = self._retained.get((content_type, expiry))
        if properties is None:  # the publisher uses one or two combinations: encode once
            properties = encode_properties(
                MqttEnvelope(
                    payload=b"",
                    content_type=content_type,
                    message_expiry=expiry,
                    payload_is_utf8=content_type.startswith("application/json"),
                )
            )
            self._retained[(content_type, expiry)] = properties
        return self.publish(topic, payload, properties, retain=True)

    def delete_retained(self, topic: str) -> asyncio.Future[None]:
        """Queue the removal of a retained message (zero-byte retained publish)."""
        check_topic(topic)
        return self.publish_envelope(topic, MqttEnvelope(payload=b""), retain=True)
