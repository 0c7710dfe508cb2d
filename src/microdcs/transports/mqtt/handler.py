"""MQTT v5 protocol handler: subscriptions, worker pool, acknowledgement, reconnect.

aiomqtt owns the connection (connect, socket callbacks, subscribe). The hot path goes
around its message queue: paho's ``on_message`` puts received messages straight into
our bounded queue, a pool of workers processes them concurrently, responses are handed
to paho without awaiting each PUBACK, and the request is acknowledged (manual PUBACK)
only once its response was acknowledged by the broker. Back-pressure comes from the
MQTT v5 Receive Maximum: the broker never has more unacknowledged messages in flight to
us than we can queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from microdcs.cloudevent import CloudEvent
from microdcs.config import AppConfig
from microdcs.errors import (
    ConfigurationError,
    InputError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnknownEventTypeError,
)
from microdcs.processor import CloudEventProcessor, MessageContext
from microdcs.routing import Intent
from microdcs.storage.dedupe import Deduplicator
from microdcs.transports.mqtt.mapping import MqttEnvelope, from_mqtt, to_binary
from microdcs.transports.mqtt.topics import TopicLayout
from microdcs.transports.pipeline import EventPipeline, TransportStats
from microdcs.transports.tracker import ResponseTracker

logger = logging.getLogger(__name__)

RETAINED_EXPIRY_DEFAULT = 172800


def _new_properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]


@dataclass(slots=True)
class _Received:
    """One received PUBLISH, as taken off paho before any decoding of ours."""

    topic: str
    payload: bytes
    properties: Any
    mid: int
    qos: int
    epoch: int


class MqttBinding:
    """A processor bound to this handler under a topic prefix; the processor's sink."""

    def __init__(self, handler: MqttHandler, processor: CloudEventProcessor, layout: TopicLayout):
        self.handler = handler
        self.processor = processor
        self.layout = layout

    async def emit(self, event: CloudEvent, intent: Intent, *, expect_response: bool) -> None:
        envelope = to_binary(event)
        topic = self.layout.topic(event.subject, intent)
        if expect_response:
            key = event.id.encode()
            envelope.response_topic = self.handler.response_topic
            envelope.correlation_data = key
            ttl = float(event.expiryinterval or 60)
            self.handler.tracker.add(key, self.processor, event, ttl)
        await self.handler.publish(topic, envelope)


class MqttHandler:
    """The MQTT v5 transport of one replica; run it with :meth:`run` in a task group."""

    name = "mqtt"

    def __init__(self, config: AppConfig, *, dedupe: Deduplicator | None = None) -> None:
        self.config = config
        self.instance_id = config.resolved_instance_id
        self.response_topic = f"{config.mqtt.response_topic_base}/{self.instance_id}"
        self.stats = TransportStats()
        self.tracker = ResponseTracker()
        self.pipeline = EventPipeline(
            source=config.resolved_source,
            stats=self.stats,
            dedupe=dedupe,
            storage_retry_seconds=config.storage_retry_seconds,
        )
        self.bindings: list[MqttBinding] = []
        self.connected = asyncio.Event()
        self._epoch = 0
        self._accepting = True
        self._queue: asyncio.Queue[_Received] = asyncio.Queue()
        self._after_puback: dict[int, list[Callable[[], None]]] = {}
        self._client = self._make_client()

    # -- wiring -----------------------------------------------------------------
    def bind(self, processor: CloudEventProcessor, *, prefix: str | None = None) -> MqttBinding:
        """Route ``{prefix}/...`` traffic to ``processor`` and let it publish there."""
        layout = TopicLayout(prefix or processor.default_prefix, self.config.scope_levels)
        for other in self.bindings:
            a, b = other.layout.prefix, layout.prefix
            if a != b and (a.startswith(b + "/") or b.startswith(a + "/")):
                # Both subscriptions would match one topic: the broker sends two copies.
                raise ConfigurationError("prefix", f"topic prefixes {a!r} and {b!r} overlap")
        binding = MqttBinding(self, processor, layout)
        self.bindings.append(binding)
        processor.attach_sink(binding)
        return binding

    @property
    def ready(self) -> bool:
        """Connected and subscribed."""
        return self.connected.is_set()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def _make_client(self) -> aiomqtt.Client:
        mqtt = self.config.mqtt
        connect_props = _new_properties(PacketTypes.CONNECT)
        connect_props.SessionExpiryInterval = mqtt.session_expiry
        connect_props.ReceiveMaximum = mqtt.receive_maximum
        tls_context = None
        if mqtt.tls:
            tls_context = ssl.create_default_context(cafile=mqtt.tls_ca_file)
            if mqtt.tls_cert_file:
                tls_context.load_cert_chain(mqtt.tls_cert_file, mqtt.tls_key_file)
            if mqtt.tls_insecure:
                tls_context.check_hostname = False
        client = aiomqtt.Client(
            mqtt.hostname,
            mqtt.port,
            username=mqtt.username,
            password=mqtt.password,
            identifier=self.instance_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=connect_props,
            keepalive=mqtt.keepalive,
            tls_context=tls_context,
            tls_insecure=mqtt.tls_insecure if mqtt.tls else None,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            timeout=10,
        )
        raw: paho.Client = client._client
        raw.manual_ack_set(True)
        raw.max_inflight_messages_set(mqtt.receive_maximum)
        raw.max_queued_messages_set(0)
        raw.on_message = self._on_message
        aiomqtt_on_publish = raw.on_publish
        assert aiomqtt_on_publish is not None

        def on_publish(*args: Any) -> None:
            aiomqtt_on_publish(*args)
            for callback in self._after_puback.pop(args[2], ()):
                callback()

        raw.on_publish = on_publish
        return client

    @property
    def _raw(self) -> paho.Client:
        return self._client._client

    # -- receiving (paho callback, event loop thread) -------------------------------
    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if not self._accepting:
            return  # shutting down: leave it unacknowledged for redelivery
        if message.qos == 0 and self._queue.qsize() >= self.config.queue_size:
            self.stats.dropped += 1  # QoS 0 is at-most-once; QoS 1 is bounded by Receive Maximum
            return
        self.stats.received += 1
        self._queue.put_nowait(
            _Received(
                message.topic,
                cast(bytes, message.payload),
                getattr(message, "properties", None),
                message.mid,
                message.qos,
                self._epoch,
            )
        )

    def _ack(self, item: _Received) -> None:
        if item.qos > 0 and item.epoch == self._epoch and self.connected.is_set():
            self._raw.ack(item.mid, item.qos)

    # -- processing -----------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._handle(item)
            except Exception:
                self.stats.fail("internal_error")
                logger.exception("unexpected failure handling a message on %s", item.topic)
                self._ack(item)
            finally:
                self._queue.task_done()

    async def _handle(self, item: _Received) -> None:
        props = item.properties
        response_topic: str | None = getattr(props, "ResponseTopic", None)
        correlation: bytes | None = getattr(props, "CorrelationData", None)
        if item.topic == self.response_topic:
            await self._handle_response(item, correlation)
            return
        event: CloudEvent | None = None
        binding: MqttBinding | None = None
        try:
            if len(item.payload) > self.config.mqtt.max_payload_bytes:
                raise PayloadTooLargeError(
                    f"payload of {len(item.payload)} bytes exceeds "
                    f"{self.config.mqtt.max_payload_bytes}"
                )
            event = from_mqtt(
                item.payload,
                getattr(props, "ContentType", None),
                getattr(props, "UserProperty", None),
                getattr(props, "MessageExpiryInterval", None),
            )
            binding, intent = self._route(item.topic, event)
        except InputError as error:
            rejection = self.pipeline.reject(event, error)
            binding = binding or self._binding_for_topic(item.topic)
            self._send_responses([rejection], response_topic, correlation, binding, after=item)
            return
        context = MessageContext(event=event, transport=self.name, intent=intent)
        responses = await self.pipeline.process(event, binding.processor, context)
        self._send_responses(responses, response_topic, correlation, binding, after=item)

    def _binding_for_topic(self, topic: str) -> MqttBinding | None:
        for binding in self.bindings:
            if binding.layout.parse(topic) is not None:
                return binding
        return None

    def _route(self, topic: str, event: CloudEvent) -> tuple[MqttBinding, Intent]:
        """The binding whose processor handles ``event`` on ``topic``; fills the subject."""
        on_topic = False
        mismatch: str | None = None
        for binding in self.bindings:
            parsed = binding.layout.parse(topic)
            if parsed is None:
                continue
            on_topic = True
            subject, intent = parsed
            if not binding.processor.handles_type(event.type):
                continue
            if event.subject is not None and event.subject != subject:
                mismatch = f"subject {event.subject!r} does not match topic scope {subject!r}"
                continue
            event.subject = subject
            return binding, intent
        if mismatch is not None:
            raise InvalidRequestError(mismatch)
        if not on_topic:
            raise InvalidRequestError(f"no processor is bound to topic {topic!r}")
        raise UnknownEventTypeError(f"no handler for CloudEvent type {event.type!r} on {topic!r}")

    async def _handle_response(self, item: _Received, correlation: bytes | None) -> None:
        awaited = self.tracker.pop(correlation) if correlation is not None else None
        if awaited is None:
            logger.info("response without an awaiting request (late or unknown); dropped")
            self.stats.dropped += 1
            self._ack(item)
            return
        props = item.properties
        try:
            event = from_mqtt(
                item.payload,
                getattr(props, "ContentType", None),
                getattr(props, "UserProperty", None),
                getattr(props, "MessageExpiryInterval", None),
            )
            await awaited.processor.dispatch_response(event, awaited.request)
            self.stats.processed += 1
        except InputError as error:
            self.pipeline.reject(None, error)
        self._ack(item)

    def _send_responses(
        self,
        responses: list[CloudEvent],
        response_topic: str | None,
        correlation: bytes | None,
        binding: MqttBinding | None,
        *,
        after: _Received | None = None,
    ) -> None:
        """Publish responses; acknowledge ``after`` once the broker has them all."""
        mids: list[int] = []
        for response in responses:
            envelope = to_binary(response)
            if response_topic:
                envelope.correlation_data = correlation
                mids.append(self._publish_now(response_topic, envelope))
            elif binding is not None:
                topic = binding.layout.topic(
                    response.subject, binding.processor.direction.default_intent
                )
                mids.append(self._publish_now(topic, envelope))
            else:
                logger.info("no Response Topic for %s; response dropped", response.type)
        if after is None:
            return
        pending = [mid for mid in mids if mid >= 0]
        if not pending:
            self._ack(after)
            return
        remaining = len(pending)

        def one_done() -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                self._ack(after)

        for mid in pending:
            self._after_puback.setdefault(mid, []).append(one_done)

    # -- sending --------------------------------------------------------------------
    def _properties(self, envelope: MqttEnvelope) -> Properties:
        props = _new_properties(PacketTypes.PUBLISH)
        if envelope.content_type:
            props.ContentType = envelope.content_type
        if envelope.user_properties:
            props.UserProperty = envelope.user_properties
        if envelope.message_expiry:
            props.MessageExpiryInterval = envelope.message_expiry
        if envelope.response_topic:
            props.ResponseTopic = envelope.response_topic
        if envelope.correlation_data is not None:
            props.CorrelationData = envelope.correlation_data
        if envelope.payload_is_utf8:
            props.PayloadFormatIndicator = 1
        return props

    def _publish_now(
        self, topic: str, envelope: MqttEnvelope, *, qos: int = 1, retain: bool = False
    ) -> int:
        """Hand one PUBLISH to paho; returns its mid (-1 when nothing awaits a PUBACK).

        QoS 1 messages stay queued in paho across a reconnect and are re-sent.
        """
        info = self._raw.publish(topic, envelope.payload, qos, retain, self._properties(envelope))
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            logger.error(
                "publish to %s refused by the client: %s", topic, paho.error_string(info.rc)
            )
            return -1
        if qos == 0 or info.is_published():
            return -1
        return int(info.mid)

    async def publish(
        self, topic: str, envelope: MqttEnvelope, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish and wait until the broker acknowledged it (QoS 1)."""
        mid = self._publish_now(topic, envelope, qos=qos, retain=retain)
        if mid < 0:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def acknowledged() -> None:
            if not done.done():
                done.set_result(None)

        self._after_puback.setdefault(mid, []).append(acknowledged)
        await done

    async def publish_retained(
        self,
        topic: str,
        payload: bytes,
        *,
        expiry: int | None = RETAINED_EXPIRY_DEFAULT,
        content_type: str = "application/json",
    ) -> None:
        """Publish retained state (QoS 1) with a Message Expiry Interval."""
        envelope = MqttEnvelope(
            payload=payload,
            content_type=content_type,
            message_expiry=expiry,
            payload_is_utf8=content_type.startswith("application/json"),
        )
        await self.publish(topic, envelope, retain=True)

    async def delete_retained(self, topic: str) -> None:
        """Remove a retained message (zero-byte retained publish)."""
        await self.publish(topic, MqttEnvelope(payload=b""), retain=True)

    # -- lifecycle ------------------------------------------------------------------
    def _subscriptions(self) -> list[tuple[str, SubscribeOptions]]:
        group = self.config.mqtt.shared_subscription
        filters: list[str] = []
        if self.config.is_processor_instance:
            for binding in self.bindings:
                filters += binding.layout.filters(binding.processor.direction.subscribes, group)
        filters.append(self.response_topic)
        return [(f, SubscribeOptions(qos=1)) for f in dict.fromkeys(filters)]

    async def run(self, shutdown: asyncio.Event) -> None:
        """Connect, serve and reconnect until ``shutdown`` is set, then drain and leave."""
        async with asyncio.TaskGroup() as tasks:
            workers = [
                tasks.create_task(self._worker(), name=f"mqtt-worker-{n}")
                for n in range(self.config.workers)
            ]
            expiry = tasks.create_task(self.tracker.run(), name="mqtt-expiry")
            try:
                await self._connection_loop(shutdown)
            finally:
                for task in (*workers, expiry):
                    task.cancel()

    async def _connection_loop(self, shutdown: asyncio.Event) -> None:
        delay = 0.2
        while not shutdown.is_set():
            try:
                async with self._client as client:
                    self._epoch += 1
                    await self._subscribe(client)
                    self.connected.set()
                    delay = 0.2
                    logger.info(
                        "connected to %s:%s as %s",
                        self.config.mqtt.hostname,
                        self.config.mqtt.port,
                        self.instance_id,
                    )
                    if await self._serve_until_down(client, shutdown):
                        await self._drain()
                        self.connected.clear()
                        return
            except aiomqtt.MqttError as exc:
                logger.warning("MQTT connection lost or refused: %s", exc)
            self.connected.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), delay)
            delay = min(delay * 2, self.config.mqtt.reconnect_max_seconds)

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        subscriptions = self._subscriptions()
        granted = await client.subscribe(subscriptions)
        refused = [
            s[0]
            for s, code in zip(subscriptions, granted or [], strict=False)
            if getattr(code, "value", 0) >= 0x80
        ]
        if refused:
            raise aiomqtt.MqttError(f"subscriptions refused by the broker: {refused}")

    async def _serve_until_down(self, client: aiomqtt.Client, shutdown: asyncio.Event) -> bool:
        """Wait for a disconnect (False) or for shutdown (True)."""

        async def disconnected() -> None:
            async for _ in client.messages:  # never yields: our on_message bypasses it
                pass

        down = asyncio.ensure_future(disconnected())
        stop = asyncio.ensure_future(shutdown.wait())
        try:
            done, _ = await asyncio.wait({down, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (down, stop):
                task.cancel()
            await asyncio.gather(down, stop, return_exceptions=True)
        if down in done and down.exception() is not None:
            raise aiomqtt.MqttError(str(down.exception()))
        return stop in done

    async def _drain(self) -> None:
        """Stop taking messages; let queued ones finish within the grace period."""
        self._accepting = False
        grace = self.config.shutdown_grace
        try:
            async with asyncio.timeout(grace):
                await self._queue.join()
                while self._after_puback:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            logger.warning(
                "shutdown grace of %.1fs over: %d messages left unacknowledged for redelivery",
                grace,
                self._queue.qsize(),
            )
