"""A processor bound to the MQTT transport under a topic prefix: the processor's sink."""

from __future__ import annotations

from typing import TYPE_CHECKING

from microdcs.core.cloudevent import CloudEvent
from microdcs.processing.processor import CloudEventProcessor
from microdcs.processing.routing import Intent
from microdcs.transports.mqtt.mapping import to_binary
from microdcs.transports.mqtt.topics import TopicLayout
from microdcs.transports.mqtt.wirecheck import check_envelope, check_topic

if TYPE_CHECKING:
    from microdcs.transports.mqtt.handler import MqttHandler


class MqttBinding:
    """A processor bound to this handler under a topic prefix; the processor's sink."""

    def __init__(self, handler: MqttHandler, processor: CloudEventProcessor, layout: TopicLayout):
        self.handler = handler
        self.processor = processor
        self.layout = layout

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
