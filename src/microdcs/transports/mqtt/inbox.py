"""Received PUBLISHes: the receive callback, the work queue, the workers, the ack gate.

Received messages go into a queue served by a pool of workers, so requests are processed
concurrently; responses are queued for sending without awaiting each PUBACK, and the
request is acknowledged (PUBACK) only once the broker acknowledged its responses.
Back-pressure comes from the MQTT v5 Receive Maximum: the broker never has more
unacknowledged messages in flight to us than the queue is sized for, and reading pauses
at the queue's bound. Requests the runtime may not answer normally (a refused Response
Topic, an expired Message Expiry) are answered here, before any processing.

Requests finish in any order, but their PUBACKs leave in the order the PUBLISHes
arrived (MQTT-4.6.0-2): see :class:`_AckOrder`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from microdcs.core.boundedlog import RateLimitedLog
from microdcs.core.cloudevent import EXPIRY_INTERVAL, CloudEvent
from microdcs.core.contenttypes import is_structured
from microdcs.core.errors import (
    ExpiredRequestError,
    InputError,
    InvalidResponseTopicError,
    OutgoingEventError,
    PayloadTooLargeError,
)
from microdcs.processing.expiry import (
    DEFAULT_RESPONSE_EXPIRY_SECONDS,
    default_seconds,
    remaining_seconds,
    with_expiry,
)
from microdcs.processing.metadata import METADATA_TYPE
from microdcs.processing.pipeline import EventPipeline, Prefetched, TransportStats
from microdcs.processing.processor import MessageContext, error_event
from microdcs.processing.routing import Intent
from microdcs.processing.tracker import ResponseTracker
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.binding import MqttBinding, metadata_topics
from microdcs.transports.mqtt.client import MqttClient
from microdcs.transports.mqtt.mapping import MqttEnvelope, from_mqtt, to_binary, to_structured
from microdcs.transports.mqtt.outbox import Outbox
from microdcs.transports.mqtt.responsetopics import ResponseTopicPolicy
from microdcs.transports.mqtt.routing import Router
from microdcs.transports.mqtt.wirecheck import check_envelope
from microdcs.transports.workqueue import WorkQueue

logger = logging.getLogger("microdcs.transports.mqtt.handler")

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
    and intent, and then its dedupe claim, made together with the rest of its batch.
    """

    message: codec.Publish
    epoch: int
    arrived: float  # loop time of receipt: the Message Expiry runs on while it waits
    event: CloudEvent | None = None
    binding: MqttBinding | None = None
    intent: Intent | None = None
    prefetched: Prefetched | None = None
    #: Its place in the PUBACK order (QoS 1 and 2 only, see _AckOrder).
    place: _Place | None = None


@dataclass(slots=True)
class _Place:
    """What the PUBACK order keeps of a received message: not the message itself.

    A finished message may wait long for an earlier one (and Mosquitto sends beyond our
    Receive Maximum), so tens of thousands can wait under overload; a place is some 70
    bytes where the message with its decoded event was some 2 KB.
    """

    packet_id: int
    epoch: int
    #: Finished: its PUBACK may go once every earlier message's has.
    finished: bool = False


def unacked_limit(configured: int, send_quota: int) -> int:
    """Our unacknowledged publishes at which workers pause.

    ``APP_MQTT_MAX_UNACKED_PUBLISHES`` (``configured``), but no more than twice the
    broker's Receive Maximum (``send_quota``; at least 64): beyond its window a publish
    only waits in our memory with the request it answers, which under overload is what
    filled it.
    """
    return min(configured, max(2 * send_quota, 64))


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


class _AckOrder:
    """PUBACKs in the order the PUBLISHes were received (MQTT-4.6.0-2).

    Each received QoS 1 message takes a place at the tail; a finished one is marked, and
    the finished prefix is acknowledged: O(1) amortised per message. A slow request thus
    holds back the PUBACKs of later ones that finished first. That is bounded: the broker
    sends at most Receive Maximum unacknowledged messages (``APP_MQTT_RECEIVE_MAXIMUM``),
    so at most that many wait behind it, and then the broker just waits for the slow one
    to finish (as long as its processing and its responses' PUBACKs take, no longer).
    The places belong to one connection: the first message of a new one starts over
    (the broker redelivers what the old one left unacknowledged).
    """

    __slots__ = ("_epoch", "_places")

    def __init__(self) -> None:
        self._epoch = -1
        self._places: deque[_Place] = deque()

    def __len__(self) -> int:
        return len(self._places)

    def enter(self, item: _Received) -> None:
        if item.epoch != self._epoch:
            self._places.clear()
            self._epoch = item.epoch
        place = item.place = _Place(item.message.packet_id, item.epoch)
        self._places.append(place)

    def finish(self, item: _Received, client: MqttClient) -> None:
        """Mark ``item`` finished and acknowledge every finished one at the head."""
        place = item.place
        assert place is not None, "finish() of a message that never entered"
        place.finished = True
        if place.epoch != self._epoch:
            return  # of a closed connection: its PUBACK cannot go any more
        places = self._places
        while places and places[0].finished:
            done = places.popleft()
            client.ack(done.packet_id, done.epoch)


class Inbox:
    """What the handler received and has not finished yet, and the workers serving it."""

    def __init__(
        self,
        *,
        router: Router,
        outbox: Outbox,
        pipeline: EventPipeline,
        stats: TransportStats,
        tracker: ResponseTracker,
        response_topic: str,
        response_topics: ResponseTopicPolicy,
        queue_size: int,
        max_payload_bytes: int,
        max_unacked_publishes: int,
        attribute_length: int,
        nesting_depth: int,
        log_value_chars: int,
        response_expiry_seconds: int = DEFAULT_RESPONSE_EXPIRY_SECONDS,
    ) -> None:
        self._router = router
        self._outbox = outbox
        self._pipeline = pipeline
        self._stats = stats
        self._tracker = tracker
        self._response_topic = response_topic
        self._response_topics = response_topics
        self._queue_size = queue_size
        self._max_payload = max_payload_bytes
        self._attribute_length = attribute_length
        self._nesting_depth = nesting_depth
        self._response_expiry = response_expiry_seconds
        #: Set by the session once the client exists.
        self.client: MqttClient | None = None
        #: False once shutting down: what arrives then is left for redelivery.
        self.accepting = True
        self.queue: WorkQueue[_Received] = WorkQueue()
        #: Reading stops at this many received messages held (queued or being looked up)
        #: and resumes at half of it: memory stays bounded whatever the broker sends.
        self._high_water = queue_size
        self._low_water = max(1, queue_size // 2)
        #: Received messages no worker has taken yet (queued, or in a dedupe lookup).
        self._waiting = 0
        #: Our publishes awaiting a PUBACK at which workers stop taking new work.
        self._unacked_high = max_unacked_publishes
        self._rejections = RateLimitedLog(logger, value_chars=log_value_chars)
        self._prefetch = pipeline.prefetcher(self._looked_up)
        self._order = _AckOrder()
        #: The southbound bindings' ``{prefix}/metadata`` topics, for so many bindings.
        self._metadata_topics: tuple[int, frozenset[str]] = (0, frozenset())

    @property
    def unacknowledged(self) -> int:
        """Received QoS 1 messages whose PUBACK has not gone yet (finished or not)."""
        return len(self._order)

    # -- receiving (client callback, in the event loop) -------------------------------------
    def on_message(self, message: codec.Publish) -> None:
        """The client's receive callback: queue the message (its dedupe lookup batched)."""
        if not self.accepting:
            return  # shutting down: leave it unacknowledged for redelivery
        if message.qos == 0 and self.queue.qsize() >= self._queue_size:
            self._stats.dropped += 1  # QoS 0 is at-most-once; QoS 1 is bounded by Receive Maximum
            return
        client = self.client
        assert client is not None
        item = _Received(message, client.epoch, client.read_at)
        if message.qos > 0:
            self._order.enter(item)
        if self._is_own_metadata(message):
            self._ack(item)  # the replicas' own description: not input, not counted
            return
        self._stats.received += 1
        self._waiting += 1
        if self._waiting >= self._high_water:
            client.pause_delivery()
        prefetch = self._prefetch
        if prefetch is None or message.topic == self._response_topic or not self._decode(item):
            self.queue.put(item)
            return
        # Claim the whole batch in one write at the end of this loop iteration; the
        # workers get the items with their claims' replies (one wake-up less per message).
        assert item.event is not None and item.binding is not None
        if not item.binding.processor.deduplicates(item.event.type):
            self.queue.put(item)  # idempotent by declaration: no claim to make
            return
        self.queue.reserve()
        prefetch.add(item, item.event)

    def _is_own_metadata(self, message: codec.Publish) -> bool:
        """A processor metadata CloudEvent on a southbound binding's ``{prefix}/metadata``."""
        bindings = self._router.bindings
        count, topics = self._metadata_topics
        if count != len(bindings):  # bindings are added before messages flow: once
            topics = metadata_topics(bindings)
            self._metadata_topics = (len(bindings), topics)
        return message.topic in topics and ("type", METADATA_TYPE) in message.user_properties

    def _event_of(self, message: codec.Publish, payload: bytes) -> CloudEvent:
        """The CloudEvent a PUBLISH carries (raises the public input errors)."""
        return from_mqtt(
            payload,
            message.content_type,
            message.user_properties,
            message.message_expiry,
            self._attribute_length,
        )

    def _decode(self, item: _Received) -> bool:
        """Decode and route a request early; False leaves it to the worker (and its errors)."""
        message = item.message
        if message.payload is None or message.payload_size > self._max_payload:
            return False
        try:
            event = self._event_of(message, message.payload)
            item.binding, item.intent = self._router.route(message.topic, event)
        except Exception:  # InputError or worse: the worker decodes again and answers it
            return False
        item.event = event
        return True

    def _looked_up(self, batch: list[_Received], error: BaseException | None) -> None:
        # A claim that failed (Redis unavailable) is left unanswered: the pipeline claims
        # it again, waiting the outage out.
        for item in batch:
            self.queue.put(item, reserved=True)

    def _ack(self, item: _Received) -> None:
        """``item`` is finished; its PUBACK goes once every earlier message's has."""
        if item.message.qos > 0:
            assert self.client is not None
            self._order.finish(item, self.client)

    # -- processing -----------------------------------------------------------------
    async def worker(self) -> None:
        """Serve the queue until cancelled."""
        while True:
            item = await self.queue.get()
            self._waiting -= 1
            client = self.client
            limit = 0 if client is None else unacked_limit(self._unacked_high, client.send_quota)
            if client is not None and client.pending_acks >= limit:
                # The broker acknowledges our publishes slower than we produce them:
                # take no new work until it caught up (responses stay bounded). Bounded
                # wait: the PUBACKs may sit behind messages held at their own bound.
                low = max(1, limit // 2)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(UNACKED_WAIT_SECONDS):
                        await client.wait_unacknowledged_below(low)
            try:
                await self._handle(item)
            except Exception:
                self._stats.fail("internal_error")
                logger.exception("unexpected failure handling a message on %s", item.message.topic)
                self._ack(item)
            finally:
                self.queue.done()
                if self._waiting <= self._low_water and self.client is not None:
                    self.client.resume_delivery()

    async def _handle(self, item: _Received) -> None:
        message = item.message
        if message.topic == self._response_topic:
            await self._handle_response(item)
            return
        if message.response_topic is not None and self._refuse_response_topic(item):
            return
        if message.message_expiry is not None and self._expired(item):
            return
        if item.event is not None and item.binding is not None and item.intent is not None:
            if item.binding.echoes(item.event, message.topic, self._pipeline.source):
                self._drop_echo(item)
                return
            await self._process(item, item.event, item.binding, item.intent)
            return
        event: CloudEvent | None = None
        binding: MqttBinding | None = None
        try:
            if message.payload is None or message.payload_size > self._max_payload:
                raise PayloadTooLargeError(
                    f"payload of {message.payload_size} bytes exceeds {self._max_payload}"
                )
            event = self._event_of(message, message.payload)
            echoed = self._router.binding_for_topic(message.topic)
            if echoed is not None and echoed.echoes(event, message.topic, self._pipeline.source):
                self._drop_echo(item)
                return
            binding, intent = self._router.route(message.topic, event)
        except InputError as error:
            rejection = self._pipeline.reject(event, error)
            binding = binding or self._router.binding_for_topic(message.topic)
            gate = _AckGate(partial(self._ack, item))
            self._send_responses([rejection], item, binding, gate, cause=event)
            gate.done()
            return
        await self._process(item, event, binding, intent)

    def _drop_echo(self, item: _Received) -> None:
        """Our own error event back on a southbound events topic (``MqttBinding.echoes``):
        acknowledged and counted as dropped, never handled or answered."""
        self._stats.dropped += 1
        logger.debug("own error event on %s dropped", item.message.topic)
        self._ack(item)

    async def _process(
        self, item: _Received, event: CloudEvent, binding: MqttBinding, intent: Intent
    ) -> None:
        message = item.message
        context = MessageContext(
            event=event,
            transport="mqtt",
            intent=intent,
            destination=message.topic,
            max_depth=self._nesting_depth,
        )
        gate = _AckGate(partial(self._ack, item))
        await self._pipeline.process(
            event,
            binding.processor,
            context,
            lambda responses: self._send_responses(responses, item, binding, gate, cause=event),
            item.prefetched,
        )
        gate.done()  # processing finished, dedupe recorded

    def _refuse_response_topic(self, item: _Received) -> bool:
        """A request naming a Response Topic it may not have: no reply, an error event."""
        message = item.message
        assert message.response_topic is not None
        problem = self._response_topics.problem(message.response_topic)
        if problem is None:
            return False
        self._stats.fail("invalid_response_topic")
        self._rejections.log(
            logging.WARNING,
            "invalid_response_topic",
            "refused Response Topic %s on %s: %s",
            message.response_topic,
            message.topic,
            problem,
        )
        binding = item.binding or self._router.binding_for_topic(message.topic)
        gate = _AckGate(partial(self._ack, item))
        if binding is not None:
            error = InvalidResponseTopicError(f"Response Topic refused: {problem}")
            event = error_event(item.event, error, source=self._pipeline.source)
            try:
                topic = binding.answer_topic(event, message.topic, item.event)
                envelope = to_binary(event)
                check_envelope(envelope, topic)
            except (InputError, OutgoingEventError):
                pass  # nowhere valid to report it: counted and logged above
            else:
                if topic is not None:  # None: an error not to answer (see answer_topic)
                    gate.expect(1)
                    self._outbox.send(topic, envelope, on_ack=gate.done)
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
        self._stats.fail("expired")
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
        response = error_event(item.event, error, source=self._pipeline.source)
        response.extensions[EXPIRY_INTERVAL] = EXPIRED_ANSWER_SECONDS
        binding = item.binding or self._router.binding_for_topic(message.topic)
        # At QoS 0: under overload these answers are the many, and they must not compete
        # for packet identifiers and PUBACKs with the answers of processed requests.
        gate = _AckGate(partial(self._ack, item))
        self._send_responses([response], item, binding, gate, cause=item.event, qos=0)
        gate.done()
        return True

    async def _handle_response(self, item: _Received) -> None:
        message = item.message
        key = message.correlation_data
        awaited = self._tracker.pop(key) if key is not None else None
        if awaited is None or message.payload is None:
            logger.info("response without an awaiting request (late or unknown); dropped")
            self._stats.dropped += 1
            self._ack(item)
            return
        try:
            event = self._event_of(message, message.payload)
            await awaited.processor.dispatch_response(
                event, awaited.request, max_depth=self._nesting_depth
            )
            self._stats.processed += 1
        except InputError as error:
            self._pipeline.reject(None, error)
        self._ack(item)

    # -- answering ------------------------------------------------------------------
    def _send_responses(
        self,
        responses: list[CloudEvent],
        item: _Received,
        binding: MqttBinding | None,
        gate: _AckGate,
        *,
        cause: CloudEvent | None,
        qos: int = 1,
    ) -> None:
        """Publish responses; ``gate`` acknowledges the request once the broker has them.

        ``cause`` is the request's CloudEvent (``None``: it did not decode). Each response
        gets the Message Expiry of :mod:`~microdcs.processing.expiry` (computed once for
        all of them) unless it carries its own, and travels in the request's mode.
        """
        request = item.message
        # The event's expiryinterval is the Message Expiry when there is one (from_mqtt),
        # else what the request's attributes say.
        request_expiry = request.message_expiry if cause is None else cause.expiryinterval
        if request_expiry is not None and request_expiry > 0:
            elapsed = asyncio.get_running_loop().time() - item.arrived
            expiry: int | None = remaining_seconds(request_expiry, elapsed)
        else:
            processor = binding.processor if binding is not None else None
            expiry = default_seconds(processor, self._response_expiry)
        structured = is_structured(request.content_type)
        topics: list[tuple[str, MqttEnvelope]] = []
        for response in responses:
            try:
                topic, envelope = self._response_envelope(
                    response, request, binding, cause, expiry, structured
                )
            except (InputError, OutgoingEventError) as error:
                # Refused at the boundary: the processor's answer holds something the
                # broker would disconnect us for. Answer with an error that can travel.
                self._refused_response(response, error)
                try:
                    replacement = error_event(None, error, source=self._pipeline.source)
                    replacement.subject = None
                    topic, envelope = self._response_envelope(
                        replacement, request, binding, cause, expiry, structured
                    )
                except (InputError, OutgoingEventError):
                    continue
            if topic is None:
                logger.info("nowhere to answer %s; response dropped", response.type)
                continue
            topics.append((topic, envelope))
        gate.expect(len(topics))
        send = self._outbox.send
        for topic, envelope in topics:
            send(topic, envelope, qos=qos, on_ack=gate.done)

    def _response_envelope(
        self,
        response: CloudEvent,
        request: codec.Publish,
        binding: MqttBinding | None,
        cause: CloudEvent | None,
        expiry: int | None,
        structured: bool,
    ) -> tuple[str | None, MqttEnvelope]:
        """Where a response goes (the Response Topic, else the binding's answer topic:
        errors never to ``commands``) and what it carries, checked for the wire.

        A structured-mode request gets a structured-mode response (what a CloudEvents
        SDK that sent it parses), a binary one a binary one; ``expiry`` applies unless
        the response has its own.
        """
        if structured:
            envelope = to_structured(with_expiry(response, expiry))
        else:
            envelope = to_binary(response)
            if envelope.message_expiry is None:
                envelope.message_expiry = expiry
        topic: str | None = None
        if request.response_topic:
            envelope.correlation_data = request.correlation_data
            topic = request.response_topic
        elif binding is not None:
            topic = binding.answer_topic(response, request.topic, cause)
        check_envelope(envelope, topic)
        return topic, envelope

    def _refused_response(self, response: CloudEvent, error: Exception) -> None:
        self._stats.fail("invalid_outgoing")
        self._rejections.log(
            logging.ERROR,
            "invalid_outgoing",
            "refused to send %s %s: %s",
            response.type,
            response.id,
            getattr(error, "message", error),
        )
