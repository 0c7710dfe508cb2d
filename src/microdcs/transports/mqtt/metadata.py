"""The MQTT implementation of the metadata outlet (:mod:`microdcs.processing.metadata`).

A binary-mode CloudEvent, retained at QoS 1 on ``{prefix}/metadata`` without a Message
Expiry: it stays as long as the processor is served, and its removal is an explicit
empty retained publish by the last replica leaving.
"""

from __future__ import annotations

from microdcs.core.cloudevent import CloudEvent
from microdcs.processing.routing import Intent
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.mapping import to_binary
from microdcs.transports.mqtt.topics import TopicLayout
from microdcs.transports.mqtt.wirecheck import check_envelope


class MqttMetadataOutlet:
    """The retained metadata topic of one binding's layout, through the replica's handler."""

    def __init__(self, handler: MqttHandler, layout: TopicLayout) -> None:
        self._handler = handler
        self._layout = layout
        self.topic = layout.topic(None, Intent.METADATA)

    @property
    def prefix(self) -> str:
        return self._layout.prefix

    async def publish(self, event: CloudEvent) -> None:
        envelope = to_binary(event)
        check_envelope(envelope, self.topic)
        await self._handler.publish(self.topic, envelope, retain=True)

    async def remove(self) -> None:
        await self._handler.delete_retained(self.topic)
