"""MQTT v5 protocol handler: subscriptions, worker pool, acknowledgement, reconnect.

Received messages go into a queue served by a pool of workers, so requests are processed
concurrently; responses are queued for sending without awaiting each PUBACK, and the
request is acknowledged (PUBACK) only once the broker acknowledged its responses.
Back-pressure comes from the MQTT v5 Receive Maximum: the broker never has more
unacknowledged messages in flight to us than the queue is sized for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from microdcs.app.config import AppConfig
from microdcs.core.boundedlog import RateLimitedLog, clip
from microdcs.core.cloudevent import EXPIRY_INTERVAL, CloudEvent
from microdcs.core.errors import (
    ConfigurationError,
    ExpiredRequestError,
    InputError,
    InvalidRequestError,
    InvalidResponseTopicError,
    OutgoingEventError,
    PayloadTooLargeError,
    UnknownEventTypeError,
)
from microdcs.core.tracing import Tracing
from microdcs.processing.pipeline import (
    EventPipeline,
    LatencyRecorder,
    Prefetched,
    TransportStats,
)
from microdcs.processing.processor import CloudEventProcessor, MessageContext, error_event
from microdcs.processing.routing import Intent
from microdcs.processing.tracker import ResponseTracker
from microdcs.storage.dedupe import Deduplicator
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import (
    AckCallback,
    MqttClient,
    MqttConnectionError,
)
from microdcs.transports.mqtt.mapping import (
    REPEATING_ATTRIBUTES,
    MqttEnvelope,
    encode_properties,
    from_mqtt,
    to_binary,
)
from microdcs.transports.mqtt.options import client_options
from microdcs.transports.mqtt.responsetopics import ResponseTopicPolicy, parse_patterns
from microdcs.transports.mqtt.topics import TopicLayout
from microdcs.transports.mqtt.wirecheck import check_envelope, check_topic
from microdcs.transports.workqueue import WorkQueue

logger = logging.getLogger(__name__)

RETAINED_EXPIRY_DEFAULT = 172800
#: Distinct topics whose routing is remembered before the memory starts over.
TOPIC_CACHE_SIZE = 4096
#: A request with less Message Expiry left than this is answered ``expired`` rather than
#: processed: the time it spent in the broker's and the kernel's buffers is not seen, and
#: its answer would reach a client that has given up.
EXPIRY_MARGIN_SECONDS = 0.5
#: Longest a worker waits for the broker's PUBACKs before taking new work anyway.
UNACKED_WAIT_SECONDS = 1.0
#: Message Expiry Interval (s) of an ``expired`` answer: nobody may be waiting for it.
EXPIRED_ANSWER_SECONDS = 10


@dataclass(slots=True)
class _Received:
    """One received PUBLISH and the connection it arrived on.

    A request that decoded and routed in the receive callback carries its event, binding
    and intent, and then its dedupe record, looked up together with the rest of its batch.
    """

    message: codec.Publish
    epoch: int
    arrived: float  # loop time of receipt: the Message Expiry runs on while it waits
    event: CloudEvent | None = None
    binding: MqttBinding | None = None
    intent: Intent | None = None
    prefetched: Prefetched | None = None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _AckGate:
    """Acknowledges a received message when its last pending step completes.

    The steps: the processing itself (done once the pipeline returned, i.e. after dedupe
    recorded the event) and the broker's PUBACK of every response. Responses go out
    before the dedupe record is stored, so the request is acknowledged only after both.
    """

    __slots__ = ("_ack", "_pending")

    def __init__(self, ack: Callable[[], None]) -> None:
        self._ack = ack
        self._pending = 1  # the processing

    def expect(self, count: int) -> None:
        self._pending += count

    def done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._ack()


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
        tracing = self.handler.tracing
        if not tracing.enabled:  # the event already carries the context being handled
            self._send(event, topic, expect_response)
            return
        with tracing.produce(event, system="mqtt", destination=topic):
            self._send(event, topic, expect_response)

    def _send(self, event: CloudEvent, topic: str, expect_response: bool) -> None:
        envelope = to_binary(event)
        check_envelope(envelope)
        if expect_response:
            key = event.id.encode()
            envelope.response_topic = self.handler.response_topic
            envelope.correlation_data = key
            ttl = float(event.expiryinterval or 60)
            self.handler.tracker.add(key, self.processor, event, ttl)
        self.handler._publish_now(topic, envelope)


class MqttHandler:
    """The MQTT v5 transport of one replica; run it with :meth:`run` in a task group."""

    name = "mqtt"

    def __init__(
        self,
        config: AppConfig,
        *,
        dedupe: Deduplicator | None = None,
        latency: LatencyRecorder | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.config = config
        self.instance_id = config.resolved_instance_id
        self.response_topic = f"{config.mqtt.response_topic_base}/{self.instance_id}"
        self.stats = TransportStats()
        self.tracing = tracing or Tracing()
        self.tracker = ResponseTracker()
        self._retained_properties: dict[tuple[str, int | None], bytes] = {}
        self._repeating = codec.PairCache(REPEATING_ATTRIBUTES)
        self.pipeline = EventPipeline(
            source=config.resolved_source,
            stats=self.stats,
            dedupe=dedupe,
            storage_retry_seconds=config.storage_retry_seconds,
            latency=latency,
            tracing=tracing,
            log_value_chars=config.limits.log_value_chars,
        )
        self.bindings: list[MqttBinding] = []
        self.connected = asyncio.Event()
        self._accepting = True
        self._queue: WorkQueue[_Received] = WorkQueue()
        #: Reading stops at this many received messages held (queued or being looked up)
        #: and resumes at half of it: memory stays bounded whatever the broker sends.
        self._high_water = config.queue_size
        self._low_water = max(1, config.queue_size // 2)
        #: Received messages no worker has taken yet (queued, or in a dedupe lookup).
        self._waiting = 0
        #: Our publishes awaiting a PUBACK at which workers stop taking new work.
        self._unacked_high = config.mqtt.max_unacked_publishes
        self._unacked_low = max(1, self._unacked_high // 2)
        self.response_topics = ResponseTopicPolicy(
            [config.mqtt.response_topic_base],
            parse_patterns(config.mqtt.response_topic_allow),
            max_chars=config.limits.attribute_length,
        )
        limits = config.limits
        self._attribute_length = limits.attribute_length
        self._rejections = RateLimitedLog(logger, value_chars=limits.log_value_chars)
        self._lookups: list[_Received] = []  # requests whose dedupe lookup is being batched
        #: topic -> what each binding's layout makes of it (a topic's meaning never changes)
        self._topics: dict[str, list[tuple[MqttBinding, str | None, Intent]]] = {}
        self._client: MqttClient | None = None
        #: Called after every (re)connect and subscribe with the CONNACK's Session Present
        #: flag (False: the broker holds nothing of ours, maybe not even retained state).
        self.session_listeners: list[Callable[[bool], None]] = []

    # -- wiring -----------------------------------------------------------------
    def bind(self, processor: CloudEventProcessor, *, prefix: str | None = None) -> MqttBinding:
        """Route ``{prefix}/...`` traffic to ``processor`` and let it publish there."""
        layout = TopicLayout(prefix or processor.default_prefix, self.config.scope_levels)
        for other in self.bindings:
            a, b = other.layout.prefix, layout.prefix
            if a != b and (a.startswith(b + "/") or b.startswith(a + "/")):
                # Both subscriptions would match one topic: the broker sends two copies.
                raise ConfigurationError("prefix", f"topic prefixes {a!r} and {b!r} overlap")
        processor.max_depth = self.config.limits.nesting_depth
        binding = MqttBinding(self, processor, layout)
        self.bindings.append(binding)
        self.response_topics.deny_prefix(layout.prefix)
        self._topics.clear()
        processor.attach_sink(binding)
        return binding

    @property
    def ready(self) -> bool:
        """Connected and subscribed."""
        return self.connected.is_set()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def _make_client(self) -> MqttClient:
        mqtt = self.config.mqtt
        options = client_options(
            mqtt,
            self.instance_id,
            session_expiry=mqtt.session_expiry,
            receive_maximum=mqtt.receive_maximum,
            publish_attempts=mqtt.publish_attempts,
            # Oversized publishes are cut by the reader and answered with an error.
            max_packet_bytes=mqtt.max_payload_bytes + 65536,
        )
        client = MqttClient(options, self._on_message)
        client.on_publish_failure = self.stats.fail
        return client

    @property
    def client(self) -> MqttClient:
        if self._client is None:
            raise RuntimeError("the MQTT handler is not running")
        return self._client

    # -- receiving (client callback, in the event loop) -------------------------------------
    def _on_message(self, message: codec.Publish) -> None:
        if not self._accepting:
            return  # shutting down: leave it unacknowledged for redelivery
        if message.qos == 0 and self._queue.qsize() >= self.config.queue_size:
            self.stats.dropped += 1  # QoS 0 is at-most-once; QoS 1 is bounded by Receive Maximum
            return
        self.stats.received += 1
        client = self.client
        item = _Received(message, client.epoch, client.read_at)
        self._waiting += 1
        if self._waiting >= self._high_water:
            client.pause_delivery()
        dedupe = self.pipeline.dedupe
        if dedupe is None or message.topic == self.response_topic or not self._decode(item):
            self._queue.put(item)
            return
        # Look the whole batch up in one MGET at the end of this loop iteration; the
        # workers get the items with their records (one wake-up less per message).
        assert item.event is not None
        item.prefetched = Prefetched(dedupe.key(item.event.source, item.event.id), None)
        self._queue.reserve()
        self._lookups.append(item)
        if len(self._lookups) == 1:
            asyncio.get_running_loop().call_soon(self._look_up_batch, dedupe)

    def _decode(self, item: _Received) -> bool:
        """Decode and route a request early; False leaves it to the worker (and its errors)."""
        message = item.message
        if message.payload is None or message.payload_size > self.config.mqtt.max_payload_bytes:
            return False
        try:
            event = from_mqtt(
                message.payload,
                message.content_type,
                message.user_properties,
                message.message_expiry,
                self._attribute_length,
            )
            item.binding, item.intent = self._route(message.topic, event)
        except Exception:  # InputError or worse: the worker decodes again and answers it
            return False
        item.event = event
        return True

    def _look_up_batch(self, dedupe: Deduplicator) -> None:
        batch, self._lookups = self._lookups, []
        keys = [item.prefetched.key for item in batch if item.prefetched is not None]
        try:
            lookup = asyncio.ensure_future(dedupe.fetch_many(keys))
        except Exception:  # cannot even send: each worker looks up (and retries) alone
            self._looked_up(batch, None)
            return
        lookup.add_done_callback(partial(self._looked_up, batch))

    def _looked_up(
        self, batch: list[_Received], lookup: asyncio.Future[list[bytes | None]] | None
    ) -> None:
        records: list[bytes | None] | None = None
        if lookup is not None and not lookup.cancelled() and lookup.exception() is None:
            records = lookup.result()
        if records is None or len(records) != len(batch):
            for item in batch:
                item.prefetched = None  # Redis unavailable: the pipeline waits it out
        else:
            for item, record in zip(batch, records, strict=True):
                if item.prefetched is not None:
                    item.prefetched.record = record
        for item in batch:
            self._queue.put(item, reserved=True)

    def _ack(self, item: _Received) -> None:
        if item.message.qos > 0:
            self.client.ack(item.message.packet_id, item.epoch)

    # -- processing -----------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            item = await self._queue.get()
            self._waiting -= 1
            client = self._client
            if client is not None and client.pending_acks >= self._unacked_high:
                # The broker acknowledges our publishes slower than we produce them:
                # take no new work until it caught up (responses stay bounded). Bounded
                # wait: the PUBACKs may sit behind messages held at their own bound.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(UNACKED_WAIT_SECONDS):
                        await client.wait_unacknowledged_below(self._unacked_low)
            try:
                await self._handle(item)
            except Exception:
                self.stats.fail("internal_error")
                logger.exception("unexpected failure handling a message on %s", item.message.topic)
                self._ack(item)
            finally:
                self._queue.done()
                if self._waiting <= self._low_water and self._client is not None:
                    self._client.resume_delivery()

    async def _handle(self, item: _Received) -> None:
        message = item.message
        if message.topic == self.response_topic:
            await self._handle_response(item)
            return
        if message.response_topic is not None and self._refuse_response_topic(item):
            return
        if message.message_expiry is not None and self._expired(item):
            return
        if item.event is not None and item.binding is not None and item.intent is not None:
            await self._process(item, item.event, item.binding, item.intent)
            return
        event: CloudEvent | None = None
        binding: MqttBinding | None = None
        try:
            if message.payload is None or message.payload_size > self.config.mqtt.max_payload_bytes:
                raise PayloadTooLargeError(
                    f"payload of {message.payload_size} bytes exceeds "
                    f"{self.config.mqtt.max_payload_bytes}"
                )
            event = from_mqtt(
                message.payload,
                message.content_type,
                message.user_properties,
                message.message_expiry,
                self._attribute_length,
            )
            binding, intent = self._route(message.topic, event)
        except InputError as error:
            rejection = self.pipeline.reject(event, error)
            binding = binding or self._binding_for_topic(message.topic)
            gate = _AckGate(partial(self._ack, item))
            self._send_responses([rejection], message, binding, gate)
            gate.done()
            return
        await self._process(item, event, binding, intent)

    async def _process(
        self, item: _Received, event: CloudEvent, binding: MqttBinding, intent: Intent
    ) -> None:
        message = item.message
        context = MessageContext(
            event=event, transport=self.name, intent=intent, destination=message.topic
        )
        gate = _AckGate(partial(self._ack, item))
        await self.pipeline.process(
            event,
            binding.processor,
            context,
            lambda responses: self._send_responses(responses, message, binding, gate),
            item.prefetched,
        )
        gate.done()  # processing finished, dedupe recorded

    def _refuse_response_topic(self, item: _Received) -> bool:
        """A request naming a Response Topic it may not have: no reply, an error event."""
        message = item.message
        assert message.response_topic is not None
        problem = self.response_topics.problem(message.response_topic)
        if problem is None:
            return False
        self.stats.fail("invalid_response_topic")
        self._rejections.log(
            logging.WARNING,
            "invalid_response_topic",
            "refused Response Topic %s on %s: %s",
            message.response_topic,
            message.topic,
            problem,
        )
        binding = item.binding or self._binding_for_topic(message.topic)
        gate = _AckGate(partial(self._ack, item))
        if binding is not None:
            error = InvalidResponseTopicError(f"Response Topic refused: {problem}")
            event = error_event(item.event, error, source=self.pipeline.source)
            try:
                intent = binding.processor.direction.default_intent
                topic = binding.layout.topic(event.subject, intent)
                envelope = to_binary(event)
                check_envelope(envelope, topic)
            except (InputError, OutgoingEventError):
                pass  # nowhere valid to report it: counted and logged above
            else:
                gate.expect(1)
                self._publish_now(topic, envelope, on_ack=gate.done)
        gate.done()
        return True

    def _expired(self, item: _Received) -> bool:
        """A request whose Message Expiry ran out (or nearly) while queued is not processed.

        It is counted and answered ``expired`` (with a short expiry of its own, so the
        broker discards the answer if nobody waits for it any more).
        """
        message = item.message
        assert message.message_expiry is not None
        waited = asyncio.get_running_loop().time() - item.arrived
        if waited + EXPIRY_MARGIN_SECONDS < message.message_expiry:
            return False
        self.stats.fail("expired")
        self._rejections.log(
            logging.WARNING,
            "expired",
            "request on %s expired after %.1fs in the queue; not processed",
            message.topic,
            waited,
        )
        error = ExpiredRequestError(
            f"the request expired after waiting {waited:.1f}s for a worker; not processed"
        )
        response = error_event(item.event, error, source=self.pipeline.source)
        response.extensions[EXPIRY_INTERVAL] = EXPIRED_ANSWER_SECONDS
        binding = item.binding or self._binding_for_topic(message.topic)
        # At QoS 0: under overload these answers are the many, and they must not compete
        # for packet identifiers and PUBACKs with the answers of processed requests.
        gate = _AckGate(partial(self._ack, item))
        self._send_responses([response], message, binding, gate, qos=0)
        gate.done()
        return True

    def _parsed(self, topic: str) -> list[tuple[MqttBinding, str | None, Intent]]:
        """``(binding, subject, intent)`` for every binding whose layout the topic fits."""
        parsed = self._topics.get(topic)
        if parsed is None:
            parsed = []
            for binding in self.bindings:
                fit = binding.layout.parse(topic)
                if fit is not None:
                    parsed.append((binding, *fit))
            if len(self._topics) >= TOPIC_CACHE_SIZE:
                self._topics.clear()  # scopes come and go; stay bounded
            self._topics[topic] = parsed
        return parsed

    def _binding_for_topic(self, topic: str) -> MqttBinding | None:
        parsed = self._parsed(topic)
        return parsed[0][0] if parsed else None

    def _route(self, topic: str, event: CloudEvent) -> tuple[MqttBinding, Intent]:
        """The binding whose processor handles ``event`` on ``topic``; fills the subject."""
        parsed = self._parsed(topic)
        mismatch: str | None = None
        for binding, subject, intent in parsed:
            if not binding.processor.handles_type(event.type):
                continue
            if event.subject is not None and event.subject != subject:
                mismatch = (
                    f"subject {clip(event.subject, 100)!r} does not match topic scope "
                    f"{clip(subject or '', 100)!r}"
                )
                continue
            if subject is not None and len(subject) > self._attribute_length:
                raise InvalidRequestError(
                    f"topic scope longer than {self._attribute_length} characters"
                )
            event.subject = subject
            return binding, intent
        if mismatch is not None:
            raise InvalidRequestError(mismatch)
        if not parsed:
            raise InvalidRequestError(f"no processor is bound to topic {clip(topic, 200)!r}")
        raise UnknownEventTypeError(
            f"no handler for CloudEvent type {clip(event.type, 200)!r} on {clip(topic, 200)!r}"
        )

    async def _handle_response(self, item: _Received) -> None:
        message = item.message
        key = message.correlation_data
        awaited = self.tracker.pop(key) if key is not None else None
        if awaited is None or message.payload is None:
            logger.info("response without an awaiting request (late or unknown); dropped")
            self.stats.dropped += 1
            self._ack(item)
            return
        try:
            event = from_mqtt(
                message.payload,
                message.content_type,
                message.user_properties,
                message.message_expiry,
                self._attribute_length,
            )
            await awaited.processor.dispatch_response(event, awaited.request)
            self.stats.processed += 1
        except InputError as error:
            self.pipeline.reject(None, error)
        self._ack(item)

    def _send_responses(
        self,
        responses: list[CloudEvent],
        request: codec.Publish,
        binding: MqttBinding | None,
        gate: _AckGate,
        *,
        qos: int = 1,
    ) -> None:
        """Publish responses; ``gate`` acknowledges the request once the broker has them."""
        topics: list[tuple[str, MqttEnvelope]] = []
        for response in responses:
            try:
                topic, envelope = self._response_envelope(response, request, binding)
            except (InputError, OutgoingEventError) as error:
                # Refused at the boundary: the processor's answer holds something the
                # broker would disconnect us for. Answer with an error that can travel.
                self._refused_response(response, error)
                try:
                    replacement = error_event(None, error, source=self.pipeline.source)
                    replacement.subject = None
                    topic, envelope = self._response_envelope(replacement, request, binding)
                except (InputError, OutgoingEventError):
                    continue
            if topic is None:
                logger.info("no Response Topic for %s; response dropped", response.type)
                continue
            topics.append((topic, envelope))
        gate.expect(len(topics))
        for topic, envelope in topics:
            self._publish_now(topic, envelope, qos=qos, on_ack=gate.done)

    def _response_envelope(
        self, response: CloudEvent, request: codec.Publish, binding: MqttBinding | None
    ) -> tuple[str | None, MqttEnvelope]:
        """Where a response goes and what it carries, checked for the wire."""
        envelope = to_binary(response)
        topic: str | None = None
        if request.response_topic:
            envelope.correlation_data = request.correlation_data
            topic = request.response_topic
        elif binding is not None:
            intent = binding.processor.direction.default_intent
            topic = binding.layout.topic(response.subject, intent)
        check_envelope(envelope, topic)
        return topic, envelope

    def _refused_response(self, response: CloudEvent, error: Exception) -> None:
        self.stats.fail("invalid_outgoing")
        self._rejections.log(
            logging.ERROR,
            "invalid_outgoing",
            "refused to send %s %s: %s",
            response.type,
            response.id,
            getattr(error, "message", error),
        )

    # -- sending --------------------------------------------------------------------
    def _publish_now(
        self,
        topic: str,
        envelope: MqttEnvelope,
        *,
        qos: int = 1,
        retain: bool = False,
        on_ack: AckCallback | None = None,
    ) -> None:
        """Queue one PUBLISH (kept across reconnects until the broker acknowledges it)."""
        self.client.publish(
            topic,
            envelope.payload,
            encode_properties(envelope, self._repeating),
            qos=qos,
            retain=retain,
            on_ack=on_ack,
        )
        if qos == 0 and on_ack is not None:
            on_ack()

    def publish_nowait(
        self, topic: str, envelope: MqttEnvelope, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Queue a publish; the returned future completes on the broker's PUBACK.

        Many of these can be awaited together (``gather``) without a task per message.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._publish_now(topic, envelope, qos=qos, retain=retain, on_ack=partial(_resolve, done))
        return done

    async def publish(
        self, topic: str, envelope: MqttEnvelope, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish and wait until the broker acknowledged it (QoS 1)."""
        await self.client.wait_writable()
        await self.publish_nowait(topic, envelope, qos=qos, retain=retain)

    def publish_retained_nowait(
        self,
        topic: str,
        payload: bytes,
        *,
        expiry: int | None = RETAINED_EXPIRY_DEFAULT,
        content_type: str = "application/json",
    ) -> asyncio.Future[None]:
        """Queue retained state (QoS 1, Message Expiry Interval); future = acknowledged.

        Raises :class:`OutgoingEventError` for a topic the broker would refuse.
        """
        check_topic(topic)
        properties = self._retained_properties.get((content_type, expiry))
        if properties is None:  # the publisher uses one or two combinations: encode once
            properties = encode_properties(
                MqttEnvelope(
                    payload=b"",
                    content_type=content_type,
                    message_expiry=expiry,
                    payload_is_utf8=content_type.startswith("application/json"),
                )
            )
            self._retained_properties[(content_type, expiry)] = properties
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.client.publish(topic, payload, properties, retain=True, on_ack=partial(_resolve, done))
        return done

    def delete_retained_nowait(self, topic: str) -> asyncio.Future[None]:
        """Queue the removal of a retained message (zero-byte retained publish)."""
        check_topic(topic)
        return self.publish_nowait(topic, MqttEnvelope(payload=b""), retain=True)

    async def publish_retained(
        self,
        topic: str,
        payload: bytes,
        *,
        expiry: int | None = RETAINED_EXPIRY_DEFAULT,
        content_type: str = "application/json",
    ) -> None:
        """Publish retained state and wait for the broker's acknowledgement."""
        await self.client.wait_writable()
        await self.publish_retained_nowait(topic, payload, expiry=expiry, content_type=content_type)

    async def delete_retained(self, topic: str) -> None:
        """Remove a retained message and wait for the broker's acknowledgement."""
        await self.client.wait_writable()
        await self.delete_retained_nowait(topic)

    # -- lifecycle ------------------------------------------------------------------
    def _subscriptions(self) -> list[tuple[str, int]]:
        group = self.config.mqtt.shared_subscription
        filters: list[str] = []
        if self.config.is_processor_instance:
            for binding in self.bindings:
                filters += binding.layout.filters(binding.processor.direction.subscribes, group)
        filters.append(self.response_topic)
        return [(f, 1) for f in dict.fromkeys(filters)]

    async def run(self, shutdown: asyncio.Event) -> None:
        """Connect, serve and reconnect until ``shutdown`` is set, then drain and leave."""
        self._client = self._make_client()
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
        client = self.client
        delay = 0.1
        while not shutdown.is_set():
            try:
                connack = await client.connect()
                await self._subscribe(client)
                self.connected.set()
                delay = 0.1
                for listener in self.session_listeners:
                    listener(connack.session_present)
                logger.info(
                    "connected to %s:%s as %s (session present: %s)",
                    self.config.mqtt.hostname,
                    self.config.mqtt.port,
                    self.instance_id,
                    connack.session_present,
                )
                if await self._serve_until_down(client, shutdown):
                    drained = await self._drain(client)
                    self.connected.clear()
                    # A drained replica ends its session: a persistent session left in the
                    # shared group would keep receiving its share of messages while nobody
                    # serves it. Undrained work keeps the session for redelivery.
                    await client.disconnect(end_session=drained)
                    return
                logger.warning("MQTT connection lost; reconnecting")
            except MqttConnectionError as exc:
                logger.warning("MQTT broker unavailable: %s", exc)
            except TimeoutError:
                logger.warning("MQTT subscribe timed out; reconnecting")
            self.connected.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), delay)
            delay = min(delay * 2, self.config.mqtt.reconnect_max_seconds)

    async def _subscribe(self, client: MqttClient) -> None:
        subscriptions = self._subscriptions()
        codes = await client.subscribe(subscriptions)
        refused = [f for (f, _), code in zip(subscriptions, codes, strict=False) if code >= 0x80]
        if refused:
            raise MqttConnectionError(f"subscriptions refused by the broker: {refused}")

    async def _serve_until_down(self, client: MqttClient, shutdown: asyncio.Event) -> bool:
        """Wait for a disconnect (False) or for shutdown (True)."""
        down = asyncio.ensure_future(client.wait_closed())
        stop = asyncio.ensure_future(shutdown.wait())
        try:
            done, _ = await asyncio.wait({down, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (down, stop):
                task.cancel()
            await asyncio.gather(down, stop, return_exceptions=True)
        return stop in done

    async def _drain(self, client: MqttClient) -> bool:
        """Finish what was received (leaving the shared group first if configured).

        True when the session should end: everything drained and leaving is configured.
        """
        grace = self.config.shutdown_grace
        leave = self.config.mqtt.end_session_on_shutdown
        shared = [f for f, _ in self._subscriptions() if f != self.response_topic] if leave else []
        try:
            async with asyncio.timeout(grace):
                if shared:
                    await client.unsubscribe(shared)
                # Messages the broker had already assigned to us keep arriving for a
                # moment after the UNSUBACK; serve them until the stream is quiet.
                quiet_since = self.stats.received
                while True:
                    await self._queue.join()
                    await client.wait_acknowledged()
                    await asyncio.sleep(0.1)
                    if self.stats.received == quiet_since and self._queue.empty():
                        break
                    quiet_since = self.stats.received
        except (TimeoutError, MqttConnectionError) as exc:
            self._accepting = False
            reason = (
                f"shutdown grace of {grace:.1f}s over"
                if isinstance(exc, TimeoutError)
                else f"broker gone while draining ({exc})"
            )
            logger.warning(
                "%s: %d messages left unacknowledged for redelivery",
                reason,
                self._queue.unfinished,
            )
            return False
        self._accepting = False
        return leave
