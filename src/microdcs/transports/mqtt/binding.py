"""A processor bound to the MQTT transport under a topic prefix: the processor's sink."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from microdcs.core.cloudevent import CloudEvent
from microdcs.processing.processor import CloudEventProcessor
from microdcs.processing.routing import Intent
from microdcs.transports.mqtt.mapping import to_binary
from microdcs.transports.mqtt.topics import TopicLayout
from microdcs.transports.mqtt.wirecheck import check_envelope, check_topic

if TYPE_CHECKING:
    from microdcs.transports.mqtt.handler import MqttHandler


#: How a replica's ``source`` begins unless ``APP_SOURCE`` names one for all replicas.
DEFAULT_SOURCE_PREFIX = "microdcs/"


def same_deployment(candidate: str, source: str) -> bool:
    """``candidate`` is the ``source`` of a replica like this one (whose is ``source``):
    equal, or both of the default per-replica form ``microdcs/{instance_id}``."""
    if candidate == source:
        return True
    return source.startswith(DEFAULT_SOURCE_PREFIX) and candidate.startswith(DEFAULT_SOURCE_PREFIX)


class MqttBinding:
    """A processor bound to this handler under a topic prefix; the processor's sink."""

    def __init__(self, handler: MqttHandler, processor: CloudEventProcessor, layout: TopicLayout):
        self.handler = handler
        self.processor = processor
        self.layout = layout

    def answer_topic(
        self, answer: CloudEvent, request_topic: str, request: CloudEvent | None
    ) -> str | None:
        """Where an answer to a message on ``request_topic`` naming no Response Topic goes.

        Responses go to the processor's default intent; errors to the processor's own
        ``events`` topic whatever its direction (:attr:`Direction.error_intent`), in the
        scope of the event or else of the topic it came on. ``None``, not sent: an error
        about an error event where errors go to a subscribed intent (a southbound
        processor would answer its own error events for ever), or about a message on a
        ``metadata`` topic (retained descriptions come again on every subscribe).
        """
        processor = self.processor
        if answer.error_kind is None:
            return self.layout.topic(answer.subject, processor.default_intent)
        intent = processor.direction.error_intent
        looping = request is not None and request.error_kind is not None
        if looping and intent in processor.subscribes:
            return None
        fit = self.layout.parse(request_topic)
        if fit is not None and fit[1] is Intent.METADATA:
            return None
        subject = answer.subject
        if subject is None and fit is not None:
            subject = fit[0]
        return self.layout.topic(subject, intent)

    def echoes(self, event: CloudEvent, topic: str, source: str) -> bool:
        """``event`` on ``topic`` is a replica's error event coming back (``source``: ours).

        A southbound processor subscribes to the ``events`` topic its error events go to;
        the replicas' own reports are neither input for it nor something to answer.
        """
        if event.error_kind is None or not same_deployment(event.source, source):
            return False  # every ordinary event: no topic parsed
        error_intent = self.processor.direction.error_intent
        if error_intent not in self.processor.subscribes:
            return False
        fit = self.layout.parse(topic)
        return fit is not None and fit[1] is error_intent

    async def emit(self, event: CloudEvent, intent: Intent, *, expect_response: bool) -> None:
        """Queue the event for the broker without awaiting its PUBACK.

        Like every QoS 1 publish it stays queued across reconnects until acknowledged;
        waiting here would only add a round trip to every handler that emits events.
        Back-pressure still applies when the socket's send buffer is full.
        """
        topic = self.layout.topic(event.subject, intent)
        check_topic(topic)  # OutgoingEventError to the emitting processor
        client = self.handler.client
        if not client.writable:
            await client.wait_writable()
        with self.handler.tracing.produce(event, system="mqtt", destination=topic):
            self._send(event, topic, expect_response)

    def _send(self, event: CloudEvent, topic: str, expect_response: bool) -> None:
        envelope = to_binary(event)
        check_envelope(envelope)
        handler = self.handler
        if expect_response:
            key = event.id.encode()
            envelope.response_topic = handler.response_topic
            envelope.correlation_data = key
            ttl = float(event.expiryinterval or 60)
            handler.tracker.add(key, self.processor, event, ttl)
        handler.outbox.send(topic, envelope)


def metadata_topics(bindings: Sequence[MqttBinding]) -> frozenset[str]:
    """The ``{prefix}/metadata`` topics the bindings subscribe to (southbound ones): where
    the replicas' own capability metadata (:mod:`microdcs.processing.metadata`) comes back."""
    return frozenset(
        binding.layout.topic(None, Intent.METADATA)
        for binding in bindings
        if Intent.METADATA in binding.processor.subscribes
    )
