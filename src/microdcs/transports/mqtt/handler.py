"""The MQTT v5 transport of one replica, composed of its parts.

:class:`~.routing.Router` (topic -> binding and intent, subscriptions),
:class:`~.inbox.Inbox` (receive callback, work queue, workers, ack gate),
:class:`~.outbox.Outbox` (every publish) and :class:`~.session.Session` (connect loop,
subscribe, drain). :class:`MqttHandler` wires them and is what the app and the
processors' bindings talk to. Where the broker offers no shared subscriptions, an
:class:`~.ingress.IngressElection` handed in by the app decides which replica subscribes
the request topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from microdcs.core.tracing import Tracing
from microdcs.processing.dedupe import EventDedupe
from microdcs.processing.pipeline import EventPipeline, LatencyRecorder, TransportStats
from microdcs.processing.processor import CloudEventProcessor
from microdcs.processing.tracker import ResponseTracker
from microdcs.transports.mqtt.binding import MqttBinding
from microdcs.transports.mqtt.client import MqttClient
from microdcs.transports.mqtt.inbox import Inbox
from microdcs.transports.mqtt.ingress import IngressElection, SubscriptionMode
from microdcs.transports.mqtt.mapping import MqttEnvelope
from microdcs.transports.mqtt.options import MqttConfig
from microdcs.transports.mqtt.outbox import RETAINED_EXPIRY_DEFAULT, Outbox
from microdcs.transports.mqtt.responsetopics import ResponseTopicPolicy, parse_patterns
from microdcs.transports.mqtt.routing import Router
from microdcs.transports.mqtt.session import Session
from microdcs.transports.mqtt.topics import TopicLayout
from microdcs.transports.replica import ReplicaOptions

__all__ = ["RETAINED_EXPIRY_DEFAULT", "MqttBinding", "MqttHandler"]


class MqttHandler:
    """The MQTT v5 transport of one replica; run it with :meth:`run` in a task group."""

    name = "mqtt"

    def __init__(
        self,
        mqtt: MqttConfig,
        replica: ReplicaOptions,
        *,
        dedupe: EventDedupe | None = None,
        latency: LatencyRecorder | None = None,
        tracing: Tracing | None = None,
        election: IngressElection | None = None,
    ) -> None:
        limits = replica.limits
        self.instance_id = replica.instance_id
        self.response_topic = f"{mqtt.response_topic_base}/{self.instance_id}"
        self.stats = TransportStats()
        self.tracing = tracing or Tracing()
        self.tracker = ResponseTracker()
        self._scope_levels = replica.scope_levels
        self.pipeline = EventPipeline(
            source=replica.source,
            stats=self.stats,
            dedupe=dedupe,
            storage_retry_seconds=replica.storage_retry_seconds,
            latency=latency,
            tracing=tracing,
            log_value_chars=limits.log_value_chars,
        )
        self.response_topics = ResponseTopicPolicy(
            [mqtt.response_topic_base],
            parse_patterns(mqtt.response_topic_allow),
            max_chars=limits.attribute_length,
        )
        self.router = Router(attribute_length=limits.attribute_length)
        self.outbox = Outbox()
        self.inbox = Inbox(
            router=self.router,
            outbox=self.outbox,
            pipeline=self.pipeline,
            stats=self.stats,
            tracker=self.tracker,
            response_topic=self.response_topic,
            response_topics=self.response_topics,
            queue_size=replica.queue_size,
            max_payload_bytes=mqtt.max_payload_bytes,
            max_unacked_publishes=mqtt.max_unacked_publishes,
            attribute_length=limits.attribute_length,
            nesting_depth=limits.nesting_depth,
            log_value_chars=limits.log_value_chars,
            response_expiry_seconds=replica.response_expiry_seconds,
        )
        self.session = Session(
            mqtt,
            instance_id=self.instance_id,
            response_topic=self.response_topic,
            router=self.router,
            inbox=self.inbox,
            outbox=self.outbox,
            stats=self.stats,
            tracker=self.tracker,
            workers=replica.workers,
            shutdown_grace=replica.shutdown_grace,
            is_processor_instance=replica.is_processor_instance,
            election=election,
        )

    # -- wiring -----------------------------------------------------------------
    def bind(self, processor: CloudEventProcessor, *, prefix: str | None = None) -> MqttBinding:
        """Route ``{prefix}/...`` traffic to ``processor`` and let it publish there."""
        layout = TopicLayout(prefix or processor.default_prefix, self._scope_levels)
        binding = MqttBinding(self, processor, layout)
        self.router.add(binding)
        self.response_topics.deny_prefix(layout.prefix)
        processor.attach_sink(binding)
        return binding

    @property
    def bindings(self) -> list[MqttBinding]:
        return self.router.bindings

    @property
    def connected(self) -> asyncio.Event:
        """Set while connected and subscribed."""
        return self.session.connected

    @property
    def session_listeners(self) -> list[Callable[[bool], None]]:
        """Called after every (re)connect with the CONNACK's Session Present flag."""
        return self.session.session_listeners

    @property
    def ready(self) -> bool:
        """Connected and subscribed."""
        return self.session.connected.is_set()

    @property
    def subscription_mode(self) -> SubscriptionMode | None:
        """Shared or plain subscriptions on the current connection (None before the first)."""
        return self.session.mode

    @property
    def takes_requests(self) -> bool:
        """True while the request topics are subscribed (False: standby, or not connected)."""
        return self.session.ingress

    @property
    def queue_depth(self) -> int:
        return self.inbox.queue.qsize()

    @property
    def client(self) -> MqttClient:
        client = self.session.client
        if client is None:
            raise RuntimeError("the MQTT handler is not running")
        return client

    # -- publishing (all through the outbox) -------------------------------------------
    def publish_nowait(
        self, topic: str, envelope: MqttEnvelope, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Queue a publish; the returned future completes on the broker's PUBACK."""
        return self.outbox.publish_envelope(topic, envelope, qos=qos, retain=retain)

    async def publish(
        self, topic: str, envelope: MqttEnvelope, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish and wait until the broker acknowledged it (QoS 1)."""
        publish = partial(self.outbox.publish_envelope, topic, envelope, qos=qos, retain=retain)
        await self.outbox.acknowledged(publish)

    def publish_retained_nowait(
        self,
        topic: str,
        payload: bytes,
        *,
        expiry: int | None = RETAINED_EXPIRY_DEFAULT,
        content_type: str = "application/json",
    ) -> asyncio.Future[None]:
        """Queue retained state; raises :class:`OutgoingEventError` for a refused topic."""
        return self.outbox.publish_retained(
            topic, payload, expiry=expiry, content_type=content_type
        )

    async def publish_retained(
        self,
        topic: str,
        payload: bytes,
        *,
        expiry: int | None = RETAINED_EXPIRY_DEFAULT,
        content_type: str = "application/json",
    ) -> None:
        """Publish retained state and wait for the broker's acknowledgement."""
        publish = partial(
            self.outbox.publish_retained, topic, payload, expiry=expiry, content_type=content_type
        )
        await self.outbox.acknowledged(publish)

    def delete_retained_nowait(self, topic: str) -> asyncio.Future[None]:
        """Queue the removal of a retained message (zero-byte retained publish)."""
        return self.outbox.delete_retained(topic)

    async def delete_retained(self, topic: str) -> None:
        """Remove a retained message and wait for the broker's acknowledgement."""
        await self.outbox.acknowledged(partial(self.outbox.delete_retained, topic))

    # -- lifecycle ------------------------------------------------------------------
    async def run(self, shutdown: asyncio.Event) -> None:
        """Connect, serve and reconnect until ``shutdown`` is set, then drain and leave."""
        await self.session.run(shutdown)
