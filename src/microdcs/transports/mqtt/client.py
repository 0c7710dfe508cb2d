"""An MQTT v5 client session on asyncio, built for the runtime's hot path.

One :class:`MqttClient` lives as long as the replica: each :meth:`connect` opens a new
network connection for the same session. Unacknowledged QoS 1 publishes survive a
reconnect and are re-sent with DUP set (MQTT-4.4.0-1); when the broker did not keep the
session (Session Present 0) they go out as new messages instead, with new packet
identifiers and DUP clear. Received messages are acknowledged only when the application
calls :meth:`ack`: PUBACK for QoS 1, PUBREC for QoS 2 (the PUBREL/PUBCOMP half and the
exactly-once guard against a re-sent QoS 2 PUBLISH are the client's own). Writes made
during one event-loop iteration leave in a single ``transport.write``.

The broker's limits of the CONNACK are honoured per connection: Maximum QoS 0 turns our
QoS 1 publishes into QoS 0 ones (no PUBACK, so no delivery guarantee: ``on_ack`` runs
once the message is written) and caps subscriptions; Retain Available 0 refuses every
retained publish with :class:`RetainUnavailableError`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from microdcs.core.boundedlog import RateLimitedLog, clip
from microdcs.core.errors import BrokerUnavailableError, OutgoingEventError
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.auth import AuthenticationError, Authenticator, AuthExchange

logger = logging.getLogger(__name__)

AckCallback = Callable[[], None]
#: Told why a publish was not sent (:class:`PacketTooLargeError`).
ErrorCallback = Callable[[Exception], None]

CONNACK_REASONS = {
    0x80: "unspecified error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8C: "bad authentication method",
    0x90: "topic name invalid",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
}
#: Entry of a QoS 2 message in ``_qos2`` once the application acknowledged it (PUBREC
#: sent); before that the entry is the epoch of the connection it arrived on (>= 1).
_ACCEPTED = 0
#: While someone waits for PUBACKs, received PUBLISHes are held up to this many times
#: ``max_held_bytes`` (the PUBACKs may sit behind them in the socket). A held packet is
#: its raw bytes and little more. Reading is not stopped short of this bound: that would
#: leave the workers waiting out their PUBACK timeout (measured: the backlog of a 10x
#: overload then took 76 s to work off instead of 18).
HELD_FACTOR_FOR_ACKS = 16
#: A PUBACK waits up to this long for other bytes to the broker to leave with (the next
#: response, as a rule): at one request in flight that is one write (a loopback write
#: costs about 13 µs of CPU, the broker's wake-up more) less per request. The broker only
#: keeps the acknowledged message in flight that much longer.
ACK_COALESCE_SECONDS = 0.002


class MqttConnectionError(BrokerUnavailableError):
    """The broker cannot be reached, refused the connection, or dropped it."""


class PacketTooLargeError(OutgoingEventError):
    """A PUBLISH larger than the broker's Maximum Packet Size (MQTT-3.2.2-15): not sent.

    The broker would disconnect on it, and a QoS 1 one would go out again on every
    reconnect; refusing it here keeps the connection up for everything else.
    """

    kind = "publish_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"PUBLISH of {size} bytes exceeds the broker's Maximum Packet Size of {limit} bytes"
        )
        self.kind = "publish_too_large"  # compiled by mypyc: the class attribute is lost
        self.size = size
        self.limit = limit


class RetainUnavailableError(BrokerUnavailableError):
    """The broker announced Retain Available 0 (MQTT-3.2.2-14): no retained publish.

    Nothing retained can be kept on such a broker; retrying helps only once it is
    reconfigured (or the replica connects to another one), so callers wait and retry.
    """

    kind = "retain_unavailable"

    def __init__(self) -> None:
        super().__init__("the broker does not support retained messages (Retain Available 0)")
        self.kind = "retain_unavailable"  # compiled by mypyc: the class attribute is lost


@dataclass(frozen=True, slots=True)
class ClientOptions:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    ssl_context: ssl.SSLContext | None = None
    keepalive: int = 30
    session_expiry: int = 3600
    receive_maximum: int = 256
    clean_start: bool = False
    max_packet_bytes: int = 1_114_112
    connect_timeout: float = 10.0
    #: Connections one QoS 1 publish may be sent on unacknowledged before it is dropped.
    publish_attempts: int = 5
    #: Received PUBLISH bytes held while delivery is paused before the socket is paused.
    max_held_bytes: int = 1024 * 1024
    #: The socket's receive buffer (SO_RCVBUF); 0 leaves the system's autotuning.
    receive_buffer_bytes: int = 256 * 1024
    #: Topic aliases the broker may set on this connection (0: the broker sends none).
    topic_alias_maximum: int = 16
    #: Published by the broker when the connection ends without a DISCONNECT.
    will: codec.WillMessage | None = None
    #: Enhanced authentication (AUTH packets); ``None``: user name and password only.
    authenticator: Authenticator | None = None


@dataclass(slots=True)
class _Outgoing:
    packet: bytes
    on_ack: AckCallback | None
    on_error: ErrorCallback | None = None
    sent: bool = False  # sent at least once: a re-send carries DUP
    attempts: int = 0  # connections it was sent on


class _Protocol(asyncio.Protocol):
    """Feeds bytes to the client; the client does everything else."""

    def __init__(self, client: MqttClient) -> None:
        self._client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            size = self._client.options.receive_buffer_bytes
            if size:
                # While delivery is paused the broker's messages wait in this buffer, and
                # their Message Expiry runs on unseen: a small one keeps that wait short
                # (Linux autotunes it to megabytes, seconds of messages under overload).
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def data_received(self, data: bytes) -> None:
        self._client._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._connection_lost(exc)

    def pause_writing(self) -> None:
        self._client._writable.clear()

    def resume_writing(self) -> None:
        self._client._writable.set()


class MqttClient:
    """An MQTT v5 session; ``on_message`` is called in the event loop for each PUBLISH."""

    def __init__(self, options: ClientOptions, on_message: Callable[[codec.Publish], None]):
        self.options = options
        self.epoch = 0
        self._on_message = on_message
        self._transport: asyncio.Transport | None = None
        self._reader = codec.PacketReader(options.max_packet_bytes)
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._ack_flush: asyncio.TimerHandle | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._all_acked = asyncio.Event()
        self._connack: asyncio.Future[codec.ConnAck] | None = None
        #: The loop the client lives on, looked up once: ``asyncio.get_running_loop()``
        #: costs a ``getpid()`` system call on every call (CPython 3.11).
        self.loop = asyncio.get_running_loop()
        self._closed: asyncio.Future[None] = self.loop.create_future()
        self._closed.set_result(None)
        self._subacks: dict[int, asyncio.Future[list[int]]] = {}
        self._inflight: dict[int, _Outgoing] = {}
        self._unsent: collections.deque[int] = collections.deque()
        self._send_quota = 65535
        self._next_id = 0
        self._last_received = 0.0
        self._ping_handle: asyncio.TimerHandle | None = None
        self._delivery_paused = False
        self._socket_paused = False
        #: Received PUBLISH packets not delivered yet because delivery is paused.
        self._held: collections.deque[tuple[float, codec.Packet]] = collections.deque()
        self._held_bytes = 0
        self._below = asyncio.Event()
        self._below_mark = 0
        self._ack_waiters = 0
        #: Loop time at which the PUBLISH being delivered was read from the socket (a held
        #: one waited before delivery: its Message Expiry ran on meanwhile).
        self.read_at = 0.0
        #: Publishes the broker refused with a PUBACK reason code >= 0x80.
        self.rejected_publishes = 0
        #: Publishes dropped after ``publish_attempts`` connections without a PUBACK.
        self.abandoned_publishes = 0
        #: Publishes refused before sending: over the broker's Maximum Packet Size.
        self.too_large_publishes = 0
        #: Told ``"publish_rejected"``, ``"publish_abandoned"`` or ``"publish_too_large"``
        #: for each (for metrics).
        self.on_publish_failure: Callable[[str], None] | None = None
        #: Keep Alive of this connection: the broker's Server Keep Alive if it sent one.
        self.keepalive = options.keepalive
        #: The broker's Maximum Packet Size for what we send (0: no limit announced).
        self.max_send_bytes = 0
        #: Topic aliases the broker set on this connection (MQTT-3.3.2-7: not carried on).
        self._aliases: dict[int, str] = {}
        #: The broker's Maximum QoS (MQTT-3.2.2-9) and Retain Available (MQTT-3.2.2-14).
        self.max_qos = 2
        self.retain_available = True
        #: Either limit is in force: the publish path tests this one attribute.
        self._restricted = False
        self._warned_qos = False
        #: Publishes sent at QoS 0 because of the broker's Maximum QoS 0.
        self.downgraded_publishes = 0
        #: Retained publishes refused because the broker announced Retain Available 0.
        self.retain_refused_publishes = 0
        #: Received QoS 2 messages not released yet (PUBREL): packet id -> the epoch they
        #: arrived on, or ``_ACCEPTED`` once PUBREC went out. Guards exactly-once delivery.
        self._qos2: dict[int, int] = {}
        #: Publishes of an unkept session sent again as new messages (Session Present 0).
        self.renumbered_publishes = 0
        #: Enhanced authentication, if configured, and its re-authentication timer.
        auth = options.authenticator
        self._auth = AuthExchange(auth) if auth is not None else None
        self._auth_handle: asyncio.TimerHandle | None = None
        #: Reason Strings come from the broker: bounded, whatever it sends.
        self._log = RateLimitedLog(logger)

    # -- state --------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._closed.done()

    @property
    def pending_acks(self) -> int:
        """Our QoS 1 publishes the broker has not acknowledged yet (sent or waiting)."""
        return len(self._inflight)

    @property
    def send_quota(self) -> int:
        """The broker's Receive Maximum: how many of our QoS 1 publishes may be in flight.

        Publishes beyond it only wait in our memory for a PUBACK to free a place.
        """
        return self._send_quota

    async def wait_closed(self) -> None:
        """Return when the current connection has ended."""
        await asyncio.shield(self._closed)

    async def wait_acknowledged(self) -> None:
        """Until the broker has acknowledged every publish of ours (or we disconnect)."""
        while self._inflight and self.connected:
            self._all_acked.clear()
            await self._all_acked.wait()

    @property
    def writable(self) -> bool:
        """False while the socket's send buffer is full (see :meth:`wait_writable`)."""
        return self._writable.is_set()

    async def wait_writable(self) -> None:
        """Back-pressure: wait while the socket's send buffer is full."""
        await self._writable.wait()

    @property
    def delivery_paused(self) -> bool:
        return self._delivery_paused

    def pause_delivery(self) -> None:
        """Hand the application no more received messages: its own bound is reached.

        The broker may send more than our Receive Maximum allows (Mosquitto counts it
        loosely), so received PUBLISH packets are held raw meanwhile, and the socket
        stops being read once ``max_held_bytes`` are held: TCP flow control then keeps
        the rest at the broker. Everything else (the PUBACKs of our own publishes above
        all) is still handled as it arrives, so our responses keep being acknowledged.
        """
        self._delivery_paused = True

    def resume_delivery(self) -> None:
        """Deliver the held messages and read on (unless paused again meanwhile)."""
        if not self._delivery_paused:
            return
        self._delivery_paused = False
        held = self._held
        try:
            while held and not self._delivery_paused:
                self.read_at, packet = held.popleft()
                self._held_bytes -= packet.size
                self._handle(packet)
        except codec.MalformedPacketError as exc:
            self._malformed(exc)
            return
        if self._held_bytes < self.options.max_held_bytes:
            self._read_socket()

    def _read_socket(self) -> None:
        if self._socket_paused:
            self._socket_paused = False
            self._last_received = self.loop.time()
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()

    async def wait_unacknowledged_below(self, count: int) -> None:
        """Until fewer than ``count`` of our QoS 1 publishes await their PUBACK.

        Bounds what the application keeps sending when the broker acknowledges slowly.
        The PUBACKs may sit in the socket behind received messages held at their bound,
        so the socket is read meanwhile up to ``HELD_FACTOR_FOR_ACKS`` times that bound;
        beyond it callers wait out a timeout of their own and then go on, which lets the
        held ones drain.
        """
        while len(self._inflight) >= count:
            self._ack_waiters += 1
            self._read_socket()
            self._below.clear()
            self._below_mark = count
            try:
                await self._below.wait()
            finally:
                self._ack_waiters -= 1

    # -- connection -----------------------------------------------------------------------
    async def connect(self) -> codec.ConnAck:
        """Open a connection for this session; raises :class:`MqttConnectionError`."""
        loop = asyncio.get_running_loop()
        opts = self.options
        self._reader = codec.PacketReader(opts.max_packet_bytes)
        self._out.clear()
        self._closed = loop.create_future()
        self._connack = loop.create_future()
        self._socket_paused = False
        self._held.clear()  # of a closed connection: the broker redelivers what matters
        self._held_bytes = 0
        self._aliases = {}
        self.keepalive = opts.keepalive
        self.max_send_bytes = 0
        auth = self._auth
        auth_method: str | None = None
        auth_data: bytes | None = None
        if auth is not None:
            auth_method = auth.method
            try:
                auth_data = auth.start()  # read anew: the token may have rotated
            except AuthenticationError as exc:
                raise MqttConnectionError(f"no {auth_method} credentials: {exc}") from None
        try:
            async with asyncio.timeout(opts.connect_timeout):
                transport, _ = await loop.create_connection(
                    lambda: _Protocol(self),
                    opts.host,
                    opts.port,
                    ssl=opts.ssl_context,
                    server_hostname=opts.host if opts.ssl_context else None,
                )
                self._transport = transport
                self._write(
                    codec.encode_connect(
                        opts.client_id,
                        clean_start=opts.clean_start,
                        keepalive=opts.keepalive,
                        session_expiry=opts.session_expiry,
                        receive_maximum=opts.receive_maximum,
                        username=opts.username,
                        password=opts.password,
                        topic_alias_maximum=opts.topic_alias_maximum,
                        will=opts.will,
                        auth_method=auth_method,
                        auth_data=auth_data,
                    )
                )
                connack = await self._connack
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self._abort()
            raise MqttConnectionError(f"cannot connect to {opts.host}:{opts.port}: {exc}") from None
        if connack.reason_code >= 0x80:
            self._abort()
            reason = CONNACK_REASONS.get(connack.reason_code, hex(connack.reason_code))
            text = connack.properties.get(codec.REASON_STRING)
            if isinstance(text, str):
                self._log.log(
                    logging.WARNING,
                    "connack_reason",
                    "broker refused the connection (reason 0x%02x): %s",
                    connack.reason_code,
                    text,
                )
                reason = f"{reason} ({clip(text)})"
            elif auth_method is not None and connack.reason_code in (0x86, 0x87, 0x8C):
                self._log.log(
                    logging.WARNING,
                    "connack_reason",
                    "broker refused the %s authentication (reason 0x%02x: %s)",
                    auth_method,
                    connack.reason_code,
                    reason,
                )
            raise MqttConnectionError(f"broker refused the connection: {reason}")
        props = connack.properties
        quota = props.get(codec.RECEIVE_MAXIMUM, 65535)
        self._send_quota = quota if isinstance(quota, int) else 65535
        server_keepalive = props.get(codec.SERVER_KEEP_ALIVE)
        if isinstance(server_keepalive, int):  # MQTT-3.2.2-21: the broker's value rules
            self.keepalive = server_keepalive
        max_size = props.get(codec.MAXIMUM_PACKET_SIZE)
        if isinstance(max_size, int):  # MQTT-3.2.2-15
            self.max_send_bytes = max_size
        max_qos = props.get(codec.MAXIMUM_QOS, 2)
        self.max_qos = max_qos if isinstance(max_qos, int) else 2
        self.retain_available = props.get(codec.RETAIN_AVAILABLE, 1) != 0
        self._restricted = self.max_qos == 0 or not self.retain_available
        self._warned_qos = False
        self._last_received = loop.time()
        self._schedule_ping()
        if auth is not None:
            self._schedule_reauth()
        self._requeue_inflight()
        if self._restricted:
            self._restrict_queued()
        self._pump()
        return connack

    def _new_session(self) -> None:
        """Session Present 0: the broker holds nothing of ours (MQTT-3.2.2-4, 4.4.0).

        What the old session received but did not release is forgotten, and our
        unacknowledged publishes are new messages on the new session: new packet
        identifiers, DUP clear (a DUP is a re-delivery within one session, MQTT-3.3.1-1).
        They are sent again rather than dropped: the broker may have lost them with the
        session, and QoS 1 promises at least once.
        """
        self._qos2.clear()
        if not self._inflight:
            return
        items = list(self._inflight.values())
        resent = sum(1 for item in items if item.sent)
        self._inflight = {}
        for item in items:
            packet_id = self._allocate_id()
            item.packet = codec.with_packet_id(item.packet, packet_id)
            item.sent = False
            self._inflight[packet_id] = item
        if resent:
            self.renumbered_publishes += resent
            logger.warning(
                "the broker kept no session of ours: %d unacknowledged publishes sent again "
                "as new messages",
                resent,
            )

    async def disconnect(self, *, end_session: bool = False) -> None:
        """Send DISCONNECT and close; the broker keeps the session unless ``end_session``."""
        if self.connected:
            self._write(codec.encode_disconnect(session_expiry=0 if end_session else None))
            self._flush()
            assert self._transport is not None
            self._transport.close()
            await self.wait_closed()

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
            self._transport = None

    def _connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._ping_handle is not None:
            self._ping_handle.cancel()
        if self._auth_handle is not None:
            self._auth_handle.cancel()
            self._auth_handle = None
        error = MqttConnectionError(f"connection lost: {exc}" if exc else "connection closed")
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(error)
        for future in self._subacks.values():
            if not future.done():
                future.set_exception(error)
        self._subacks.clear()
        self._writable.set()
        self._all_acked.set()
        if not self._closed.done():
            self._closed.set_result(None)

    # -- keepalive --------------------------------------------------------------------------
    def _schedule_ping(self) -> None:
        if self.keepalive <= 0:  # Keep Alive 0: no PINGREQ, no silence detection
            return
        loop = asyncio.get_running_loop()
        self._ping_handle = loop.call_later(self.keepalive / 2, self._ping)

    def _ping(self) -> None:
        if not self.connected:
            return
        loop = asyncio.get_running_loop()
        if not self._socket_paused and loop.time() - self._last_received > self.keepalive * 1.5:
            logger.warning("broker silent for %.0fs; dropping the connection", self.keepalive * 1.5)
            self._abort()
            return
        self._write(codec.PINGREQ_PACKET)
        self._schedule_ping()

    # -- writing ----------------------------------------------------------------------------
    def _write(self, packet: bytes) -> None:
        self._out.append(packet)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _write_soon(self, packet: bytes) -> None:
        """:meth:`_write` for a packet that may wait :data:`ACK_COALESCE_SECONDS` for
        company (an acknowledgement)."""
        self._out.append(packet)
        if not self._flush_scheduled and self._ack_flush is None:
            self._ack_flush = self.loop.call_later(ACK_COALESCE_SECONDS, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._ack_flush is not None:
            self._ack_flush.cancel()
            self._ack_flush = None
        if not self._out:
            return
        if self._transport is None or self._transport.is_closing():
            self._out.clear()
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        self._transport.write(data)

    def _allocate_id(self) -> int:
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._inflight and self._next_id not in self._subacks:
                return self._next_id
        raise MqttConnectionError("no free packet identifier: 65535 messages unacknowledged")

    def publish(
        self,
        topic: str,
        payload: bytes,
        properties: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        on_ack: AckCallback | None = None,
        on_error: ErrorCallback | None = None,
    ) -> int:
        """Queue a PUBLISH; QoS 1 is kept until acknowledged, across reconnects.

        Returns the packet identifier (0 for QoS 0 and for one not sent). ``on_ack`` runs
        on the PUBACK. A QoS 0 message while disconnected is dropped, as QoS 0 allows.

        One larger than the broker's Maximum Packet Size (MQTT-3.2.2-15) is not sent: it
        is counted (``on_publish_failure("publish_too_large")``) and logged here, and
        ``on_error`` is told a :class:`PacketTooLargeError` (without ``on_error``,
        ``on_ack`` runs instead, as for an abandoned publish, so whatever waits for it is
        released). Nothing is raised: the caller may be in the middle of a batch.
        """
        if self._restricted:
            if retain and not self.retain_available:
                self._fail(self.refuse_retain(), on_ack, on_error)
                return 0
            if qos and not self.max_qos and self.connected:  # while down: next CONNACK rules
                self._downgrade()
                packet = codec.encode_publish(topic, payload, properties, qos=0, retain=retain)
                if self.max_send_bytes and len(packet) > self.max_send_bytes:
                    self._refuse(len(packet), on_ack, on_error)
                    return 0
                self._write(packet)
                if on_ack is not None:
                    on_ack()  # written, and that is all QoS 0 can promise
                return 0
        limit = self.max_send_bytes
        if qos == 0:
            if self.connected:
                packet = codec.encode_publish(topic, payload, properties, qos=0, retain=retain)
                if limit and len(packet) > limit:
                    self._refuse(len(packet), on_ack, on_error)
                    return 0
                self._write(packet)
            return 0
        packet_id = self._allocate_id()
        packet = codec.encode_publish(
            topic, payload, properties, qos=1, retain=retain, packet_id=packet_id
        )
        if limit and len(packet) > limit:
            self._refuse(len(packet), on_ack, on_error)
            return 0
        item = _Outgoing(packet, on_ack, on_error)
        self._inflight[packet_id] = item
        self._unsent.append(packet_id)
        self._pump()
        return packet_id

    def _refuse(
        self, size: int, on_ack: AckCallback | None, on_error: ErrorCallback | None
    ) -> None:
        """Count and log a publish over the broker's limit, and tell its caller."""
        error = PacketTooLargeError(size, self.max_send_bytes)
        self.too_large_publishes += 1
        if self.on_publish_failure is not None:
            self.on_publish_failure(error.kind)
        self._log.log(logging.ERROR, error.kind, "not sending: %s", error.message)
        self._fail(error, on_ack, on_error)

    @staticmethod
    def _fail(error: Exception, on_ack: AckCallback | None, on_error: ErrorCallback | None) -> None:
        if on_error is not None:
            on_error(error)
        elif on_ack is not None:
            on_ack()

    def refuse_retain(self) -> RetainUnavailableError:
        """Count and log a retained publish the broker cannot take; the error to report.

        Public so the outbox can refuse before queueing anything.
        """
        error = RetainUnavailableError()
        self.retain_refused_publishes += 1
        if self.on_publish_failure is not None:
            self.on_publish_failure(error.kind)
        self._log.log(logging.ERROR, error.kind, "not sending a retained publish: %s", error)
        return error

    def _downgrade(self) -> None:
        """Count a publish sent at QoS 0 for the broker's Maximum QoS 0; warn once."""
        self.downgraded_publishes += 1
        if self.on_publish_failure is not None:
            self.on_publish_failure("publish_qos_downgraded")
        if not self._warned_qos:
            self._warned_qos = True
            logger.warning(
                "the broker's Maximum QoS is 0 (MQTT-3.2.2-11): publishing at QoS 0, "
                "without acknowledgement or delivery guarantee"
            )

    def _restrict_queued(self) -> None:
        """Apply this connection's Maximum QoS 0 / Retain Available 0 to queued publishes."""
        for packet_id, item in list(self._inflight.items()):
            if not self.retain_available and item.packet[0] & 0x01:
                del self._inflight[packet_id]
                self._fail(self.refuse_retain(), item.on_ack, item.on_error)
            elif self.max_qos == 0:
                del self._inflight[packet_id]
                packet = codec.as_qos0(item.packet)
                if self.max_send_bytes and len(packet) > self.max_send_bytes:
                    self._refuse(len(packet), item.on_ack, item.on_error)
                    continue
                self._downgrade()
                self._write(packet)
                if item.on_ack is not None:
                    item.on_ack()
        self._unsent = collections.deque(self._inflight)
        if not self._inflight:
            self._all_acked.set()

    def _pump(self) -> None:
        """Send waiting publishes while the broker's Receive Maximum allows."""
        if not self.connected:
            return
        limit = self.max_send_bytes
        while self._unsent and len(self._inflight) - len(self._unsent) < self._send_quota:
            packet_id = self._unsent.popleft()
            item = self._inflight.get(packet_id)
            if item is None:
                continue
            if limit and len(item.packet) > limit:
                # Queued before a reconnect to a broker with a smaller limit: dropped like
                # an abandoned one, its caller told.
                del self._inflight[packet_id]
                self._refuse(len(item.packet), item.on_ack, item.on_error)
                continue
            self._write(codec.set_dup(item.packet) if item.sent else item.packet)
            item.sent = True
            item.attempts += 1

    def _requeue_inflight(self) -> None:
        """After a reconnect everything unacknowledged goes out again, in order.

        A publish already sent on ``publish_attempts`` connections, none of which
        acknowledged it, is dropped: a broker that disconnects on a message it refuses
        would otherwise get it again on every reconnect. Its ``on_ack`` still runs, so
        whatever waits for it (a request's acknowledgement) is released.

        Only the oldest such publish is dropped per reconnect: the broker closed on one
        packet, and the publishes sent after it on the same connections were never
        looked at. They get another connection (and are dropped in turn if the broker
        refuses them too).
        """
        limit = self.options.publish_attempts
        dropped = False
        for packet_id, item in list(self._inflight.items()):
            if item.attempts >= limit:
                if dropped:
                    item.attempts = limit - 1
                    continue
                dropped = True
                del self._inflight[packet_id]
                self.abandoned_publishes += 1
                if self.on_publish_failure is not None:
                    self.on_publish_failure("publish_abandoned")
                self._log.log(
                    logging.ERROR,
                    "publish_abandoned",
                    "dropping publish %d on %s: sent on %d connections without an acknowledgement",
                    packet_id,
                    codec.publish_topic(item.packet),
                    item.attempts,
                )
                if item.on_ack is not None:
                    item.on_ack()
        self._unsent = collections.deque(self._inflight)

    def ack(self, packet_id: int, epoch: int) -> None:
        """Acknowledge a received message of connection ``epoch``.

        QoS 1: PUBACK, only on the connection it arrived on (an ack of an earlier one is
        dropped: its message comes again, or the session that sent it is gone). QoS 2:
        PUBREC, also on a later connection of the same session; sent again whenever the
        broker re-sends the PUBLISH until it releases it (PUBREL).
        """
        if self._qos2:
            state = self._qos2.get(packet_id)
            if state is not None and state == epoch:
                self._qos2[packet_id] = _ACCEPTED
                if self.connected:
                    self._write(codec.encode_pubrec(packet_id))
                return
        if epoch == self.epoch and self.connected:
            self._write_soon(codec.encode_puback(packet_id))

    async def subscribe(self, filters: list[tuple[str, int]]) -> list[int]:
        """Subscribe and return the broker's reason codes (>= 0x80 means refused).

        No filter asks for more than the broker's Maximum QoS: it would grant no more
        anyway (MQTT-3.2.2-10), and asking for it would hide why messages come at QoS 0.
        """
        if any(qos > self.max_qos for _, qos in filters):
            logger.warning(
                "the broker's Maximum QoS is %d: subscribing at QoS %d", self.max_qos, self.max_qos
            )
            filters = [(topic, min(qos, self.max_qos)) for topic, qos in filters]
        packet_id = self._allocate_id()
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._subacks[packet_id] = future
        self._write(codec.encode_subscribe(packet_id, filters))
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                return await future
        finally:
            self._subacks.pop(packet_id, None)

    async def unsubscribe(self, filters: list[str]) -> list[int]:
        """Unsubscribe and return the broker's reason codes."""
        packet_id = self._allocate_id()
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._subacks[packet_id] = future
        self._write(codec.encode_unsubscribe(packet_id, filters))
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                return await future
        finally:
            self._subacks.pop(packet_id, None)

    # -- reading ----------------------------------------------------------------------------
    def _data_received(self, data: bytes) -> None:
        now = self._last_received = self.loop.time()
        try:
            for packet in self._reader.feed(data):
                self.read_at = now
                if self._delivery_paused and packet.kind == codec.PUBLISH:
                    self._held.append((now, packet))
                    self._held_bytes += packet.size
                else:
                    self._handle(packet)
            # Someone waits for PUBACKs that may sit behind the held messages: read on, to
            # a bound a few times higher (beyond it they wait out their timeout).
            limit = self.options.max_held_bytes * (HELD_FACTOR_FOR_ACKS if self._ack_waiters else 1)
            if self._held_bytes >= limit and not self._socket_paused:
                self._socket_paused = True
                if self._transport is not None:
                    self._transport.pause_reading()
        except codec.MalformedPacketError as exc:
            self._malformed(exc)

    def _malformed(self, exc: codec.MalformedPacketError) -> None:
        if isinstance(exc, codec.ProtocolError):
            logger.error(
                "protocol error by the broker (%s); disconnecting (reason 0x%02x), reconnecting",
                exc,
                exc.reason_code,
            )
            transport = self._transport
            if transport is not None and not transport.is_closing():
                self._write(codec.encode_disconnect(exc.reason_code))
                self._flush()
                transport.close()  # after the DISCONNECT has left
            return
        logger.error("malformed packet from the broker (%s); reconnecting", exc)
        self._abort()

    def _resolve_alias(self, message: codec.Publish, alias: int) -> None:
        """Set or apply a Topic Alias of the broker (section 3.3.2.3.4); else 0x94."""
        if not 0 < alias <= self.options.topic_alias_maximum:  # MQTT-3.1.2-26, MQTT-3.3.2-8
            raise codec.ProtocolError(f"topic alias {alias} outside 1..maximum", 0x94)
        if message.topic:
            self._aliases[alias] = message.topic
            return
        topic = self._aliases.get(alias)
        if topic is None:
            raise codec.ProtocolError(f"topic alias {alias} was never set", 0x94)
        message.topic = topic

    def _failure_reason(self, key: str, what: str, reason: int, body: bytes, pos: int) -> bool:
        """Log the Reason String of a failure ``reason`` once; False if there is none."""
        text = codec.reason_string(body, pos)
        if text is None:
            return False
        self._log.log(logging.WARNING, key, "%s (reason 0x%02x): %s", what, reason, text)
        return True

    def _handle(self, packet: codec.Packet) -> None:
        kind = packet.kind
        if kind == codec.PUBLISH:
            message = codec.decode_publish(packet.flags, packet.body, packet.size)
            alias = message.topic_alias
            if alias is not None:
                self._resolve_alias(message, alias)
            if message.qos == 2 and not self._first_qos2(message.packet_id):
                return
            self._on_message(message)
        elif kind == codec.PUBACK:
            packet_id, reason = codec.decode_ack(packet.body)
            item = self._inflight.pop(packet_id, None)
            if reason >= 0x80:
                self.rejected_publishes += 1
                if self.on_publish_failure is not None:
                    self.on_publish_failure("publish_rejected")
                explained = len(packet.body) > 3 and self._failure_reason(
                    "puback_reason", f"broker rejected publish {packet_id}", reason, packet.body, 3
                )
                if not explained and (
                    self.rejected_publishes <= 10 or self.rejected_publishes % 1000 == 0
                ):
                    logger.warning(
                        "broker rejected publish %d: reason 0x%02x (%d so far)",
                        packet_id,
                        reason,
                        self.rejected_publishes,
                    )
            if item is not None and item.on_ack is not None:
                item.on_ack()
            if not self._inflight:
                self._all_acked.set()
            if len(self._inflight) < self._below_mark:
                self._below.set()
            self._pump()
        elif kind == codec.CONNACK:
            if self._connack is not None and not self._connack.done():
                connack = codec.decode_connack(packet.body)
                if connack.reason_code < 0x80:
                    # The new connection starts here, not when connect() resumes: messages
                    # of a resumed session may follow in the same read, and their PUBACKs
                    # belong to this connection, and a lost session is forgotten before
                    # them (a QoS 2 one must not meet the old session's state).
                    self.epoch += 1
                    if not connack.session_present:
                        self._new_session()
                self._connack.set_result(connack)
        elif kind in (codec.SUBACK, codec.UNSUBACK):
            packet_id, codes = codec.decode_suback(packet.body)
            failed = [code for code in codes if code >= 0x80]
            if failed:
                what = "subscription" if kind == codec.SUBACK else "unsubscription"
                what = f"broker refused a filter's {what}"
                self._failure_reason("suback_reason", what, failed[0], packet.body, 2)
            future = self._subacks.get(packet_id)
            if future is not None and not future.done():
                future.set_result(codes)
        elif kind == codec.PINGRESP:
            pass
        elif kind == codec.DISCONNECT:
            reason = packet.body[0] if packet.body else 0
            if reason < 0x80 or not self._failure_reason(
                "disconnect_reason", "broker sent DISCONNECT", reason, packet.body, 1
            ):
                logger.warning("broker sent DISCONNECT (reason 0x%02x)", reason)
            self._abort()
        elif kind == codec.PUBREL:
            packet_id, _ = codec.decode_ack(packet.body)
            state = self._qos2.get(packet_id)
            if state is not None and state != _ACCEPTED:
                raise codec.ProtocolError(f"PUBREL {packet_id} before our PUBREC", 0x82)
            # MQTT-4.3.3-11; an unknown id (a session state we lost) gets 0x92 (3.7.2.1).
            self._write(codec.encode_pubcomp(packet_id, 0 if state is not None else 0x92))
            self._qos2.pop(packet_id, None)  # MQTT-4.3.3-12: the id is free again
        elif kind == codec.AUTH:
            self._handle_auth(packet.body)
        else:
            logger.debug("ignoring MQTT packet type %d", kind)

    def _first_qos2(self, packet_id: int) -> bool:
        """Whether a QoS 2 PUBLISH is new; a re-sent one is not delivered again.

        MQTT-4.3.3-9: until PUBREL, a PUBLISH with the same id is the same message. If
        the application already acknowledged it, the PUBREC is sent again; if not, its
        acknowledgement will send it.
        """
        state = self._qos2.get(packet_id)
        if state is None:
            self._qos2[packet_id] = self.epoch
            return True
        if state == _ACCEPTED:
            self._write(codec.encode_pubrec(packet_id))
        return False

    # -- enhanced authentication ------------------------------------------------------------
    @property
    def reauthentications(self) -> int:
        """Re-authentications the broker accepted on any connection of this client."""
        return self._auth.reauthentications if self._auth is not None else 0

    def _handle_auth(self, body: bytes) -> None:
        """An AUTH of the broker (section 4.12): answer a challenge, or end a re-auth."""
        if self._auth is None:  # MQTT-4.12.0-6: no AUTH without an Authentication Method
            raise codec.ProtocolError("AUTH without enhanced authentication", 0x82)
        try:
            answer = self._auth.on_auth(body)
        except AuthenticationError as exc:
            logger.error("cannot answer the broker's %s challenge: %s", self._auth.method, exc)
            self._close_with(0x80)
            return
        if answer is not None:
            self._write(answer)

    def _close_with(self, reason_code: int) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            self._write(codec.encode_disconnect(reason_code))
            self._flush()
            transport.close()

    def _schedule_reauth(self) -> None:
        assert self._auth is not None
        poll = self._auth.authenticator.poll_seconds
        if poll > 0:
            self._auth_handle = asyncio.get_running_loop().call_later(poll, self._check_credentials)

    def _check_credentials(self) -> None:
        """Re-authenticate on the open connection when the credentials were renewed."""
        self._auth_handle = None
        if not self.connected or self._auth is None:
            return
        packet = self._auth.renewal()
        if packet is not None:
            self._write(packet)
        self._schedule_reauth()
