"""The MessagePack-RPC protocol handler: sidecars publish events and receive ours.

Bound like the MQTT handler: ``publish`` routes an incoming CloudEvent by its ``type``
to the one bound processor that handles it (never to all), through the shared
:class:`EventPipeline` (dedupe, dispatch, error mapping). Events the processors emit are
pushed to every connected, authenticated client whose grant covers the event's subject
as ``cloudevent`` notifications; a sidecar publishing outside its scopes gets
``forbidden``.

RPC errors versus error events: an event that never reached a processor (bad params,
invalid envelope, unknown type) gets an RPC *error*. Once a processor took it, whatever
the pipeline returns is the *result*, error CloudEvents (``mdcserrorkind``) included,
exactly as MQTT returns them on the Response Topic; a processor may also map invalid
input to a typed response (e.g. a ReturnStatus), which must arrive as a result.

At most ``APP_RPC_MAX_CONNECTIONS`` connections are served; one beyond it is closed as
soon as it is accepted, so its file descriptor is returned at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import InputError, UnknownEventTypeError
from microdcs.core.eventformat import to_dict
from microdcs.core.tracing import Tracing
from microdcs.processing.dedupe import EventDedupe
from microdcs.processing.expiry import default_seconds, remaining_seconds, with_expiry
from microdcs.processing.pipeline import EventPipeline, LatencyRecorder, TransportStats
from microdcs.processing.processor import CloudEventProcessor, MessageContext
from microdcs.processing.routing import Intent
from microdcs.processing.tracker import ResponseTracker
from microdcs.transports.msgpack_rpc.auth import server_ssl_context
from microdcs.transports.msgpack_rpc.connection import (
    ConnectionPolicy,
    ConnectionStats,
    RpcConnection,
)
from microdcs.transports.msgpack_rpc.errors import FORBIDDEN, UNKNOWN_METHOD, RpcError
from microdcs.transports.msgpack_rpc.limits import AuthBackoff, BurstLog
from microdcs.transports.msgpack_rpc.listener import accept_forever, bind
from microdcs.transports.msgpack_rpc.methods import (
    CLOUDEVENT,
    PUBLISH,
    decode_event,
    parse_publish,
)
from microdcs.transports.msgpack_rpc.options import RpcConfig
from microdcs.transports.msgpack_rpc.protocol import FrameEncoder
from microdcs.transports.msgpack_rpc.tokens import TokenCheck
from microdcs.transports.replica import ReplicaOptions

logger = logging.getLogger(__name__)

TRANSPORT = "rpc"
#: A method the app adds beside ``publish``: gets the calling connection and the params.
ExtraMethod = Callable[[RpcConnection, list[Any]], Awaitable[Any]]
#: Buffer limit of each connection's StreamReader (what ``asyncio.start_server`` uses).
READ_LIMIT = 2**16


class RpcBinding:
    """A processor bound to the RPC handler; the processor's :class:`EventSink` there."""

    def __init__(self, handler: MessagePackRpcHandler, processor: CloudEventProcessor) -> None:
        self.handler = handler
        self.processor = processor

    async def emit(self, event: CloudEvent, intent: Intent, *, expect_response: bool) -> None:
        if expect_response:
            ttl = float(event.expiryinterval or 60)
            self.handler.tracker.add(event.id.encode(), self.processor, event, ttl)
        self.handler.broadcast(event, intent)


class MessagePackRpcHandler:
    """The MessagePack-RPC server of one replica; run it with :meth:`run` in a task group."""

    name = TRANSPORT

    def __init__(
        self,
        rpc: RpcConfig,
        replica: ReplicaOptions,
        *,
        dedupe: EventDedupe | None = None,
        tls_handshake_timeout: float = 10.0,
        latency: LatencyRecorder | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.rpc = rpc
        self._limits = replica.limits
        self._shutdown_grace = replica.shutdown_grace
        self._response_expiry = replica.response_expiry_seconds
        self.tls_handshake_timeout = tls_handshake_timeout
        self.stats = TransportStats()
        self.connection_stats = ConnectionStats()
        self.tracker = ResponseTracker()
        self.pipeline = EventPipeline(
            source=replica.source,
            stats=self.stats,
            dedupe=dedupe,
            storage_retry_seconds=replica.storage_retry_seconds,
            latency=latency,
            tracing=tracing,
            log_value_chars=replica.limits.log_value_chars,
        )
        self.bindings: list[RpcBinding] = []
        self._routes: dict[str, RpcBinding] = {}
        self._methods: dict[str, ExtraMethod] = {}
        self._policy = ConnectionPolicy(
            token=TokenCheck.from_config(rpc.token, rpc.tokens_file),
            backoff=AuthBackoff(initial=rpc.auth_backoff, maximum=rpc.auth_backoff_max),
            auth_timeout=rpc.auth_timeout,
            idle_timeout=rpc.idle_timeout,
            auth_log=BurstLog(logger),
            throttle_log=BurstLog(logger),
        )
        self._refusal_log = BurstLog(logger)
        self._forbidden_log = BurstLog(logger)
        self._encoder = FrameEncoder()
        self._connections: dict[RpcConnection, asyncio.Task[Any]] = {}
        #: Sockets accepted and not yet closed: in the TLS handshake or served.
        self._sockets = 0
        self._handshakes: set[asyncio.Task[Any]] = set()
        self._ssl: ssl.SSLContext | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._listening = asyncio.Event()
        self._accepting = False
        self._port: int | None = None

    # -- wiring -----------------------------------------------------------------
    def bind(self, processor: CloudEventProcessor) -> RpcBinding:
        """Route the event types ``processor`` handles to it and push its events."""
        binding = RpcBinding(self, processor)
        self.bindings.append(binding)
        for event_type in sorted(processor.event_types):
            if event_type in self._routes:
                logger.warning(
                    "%s also handles %s; RPC routes it to %s",
                    processor.name,
                    event_type,
                    self._routes[event_type].processor.name,
                )
            else:
                self._routes[event_type] = binding
        processor.attach_sink(binding)
        return binding

    def add_method(self, name: str, method: ExtraMethod) -> None:
        """Serve ``name`` (as a request or a notification) with ``method``; for channels
        that are not an event to route by type, such as equipment answers of a sidecar."""
        if name == PUBLISH or name in self._methods:
            raise ValueError(f"RPC method {name!r} is already served")
        self._methods[name] = method

    @property
    def ready(self) -> bool:
        """Listening for connections."""
        return self._listening.is_set()

    async def wait_ready(self) -> None:
        await self._listening.wait()

    @property
    def port(self) -> int:
        """The bound TCP port (useful with ``APP_RPC_PORT=0``); valid once ready."""
        if self._port is None:
            raise RuntimeError("the RPC server is not listening yet")
        return self._port

    @property
    def connections(self) -> list[RpcConnection]:
        return list(self._connections)

    # -- outgoing events --------------------------------------------------------------
    def broadcast(self, event: CloudEvent, intent: Intent) -> None:
        """Push ``event`` to every authenticated client granted its subject (packed once)."""
        receivers = [c for c in self._connections if c.receives(event.subject)]
        if not receivers:
            return
        frame = self._encoder.notification(
            CLOUDEVENT, [to_dict(event, native_bytes=True), str(intent)]
        )
        for connection in receivers:
            connection.push(frame)

    # -- methods (the connections' Dispatcher) ---------------------------------------
    async def call(self, connection: RpcConnection, method: str, params: list[Any]) -> Any:
        if method == PUBLISH:
            responses = await self._publish(connection, params)
            return [to_dict(response, native_bytes=True) for response in responses]
        extra = self._methods.get(method)
        if extra is not None:
            return await extra(connection, params)
        raise RpcError(UNKNOWN_METHOD, f"unknown method {method!r}")

    async def notify(self, connection: RpcConnection, method: str, params: list[Any]) -> None:
        """A ``publish`` notification is processed; its responses are not sent anywhere."""
        if method == PUBLISH:
            await self._publish(connection, params)
            return
        extra = self._methods.get(method)
        if extra is not None:
            await extra(connection, params)
            return
        raise RpcError(UNKNOWN_METHOD, f"unknown method {method!r}")

    async def _publish(self, connection: RpcConnection, params: list[Any]) -> list[CloudEvent]:
        publish = parse_publish(params)
        self.stats.received += 1
        arrived = asyncio.get_running_loop().time()
        try:
            event = decode_event(publish.event, self._limits.attribute_length)
        except RpcError as rejected:
            self.stats.fail(rejected.kind)
            raise
        grant = connection.grant
        if grant is None or not grant.covers(event.subject):
            self.stats.fail(FORBIDDEN)
            self.connection_stats.forbidden += 1
            name = grant.name if grant else "?"
            self._forbidden_log.warning("sidecar %s published outside its scopes", name)
            raise RpcError(FORBIDDEN, f"subject {event.subject!r} is outside this token's scopes")
        if event.causationid is not None and len(self.tracker):
            awaited = self.tracker.pop(event.causationid.encode())
            if awaited is not None:
                await self._dispatch_response(event, awaited.processor, awaited.request)
                return []
        binding = self._routes.get(event.type)
        if binding is None:
            unknown = UnknownEventTypeError(f"no processor handles CloudEvent type {event.type!r}")
            self.pipeline.reject(event, unknown)
            raise RpcError(unknown.kind, unknown.message)
        processor = binding.processor
        context = MessageContext(
            event=event,
            transport=TRANSPORT,
            intent=publish.intent or processor.subscribes[0],
            metadata=publish.metadata,
            max_depth=self._limits.nesting_depth,
        )
        responses = await self.pipeline.process(event, processor, context)
        return self._expiring(responses, event, processor, arrived)

    def _expiring(
        self,
        responses: list[CloudEvent],
        request: CloudEvent,
        processor: CloudEventProcessor,
        arrived: float,
    ) -> list[CloudEvent]:
        """The responses with their ``expiryinterval`` (as over MQTT): what is left of the
        request's, else the processor's default; one that has its own keeps it."""
        if not responses:
            return responses
        request_expiry = request.expiryinterval
        if request_expiry is not None and request_expiry > 0:
            elapsed = asyncio.get_running_loop().time() - arrived
            expiry: int | None = remaining_seconds(request_expiry, elapsed)
        else:
            expiry = default_seconds(processor, self._response_expiry)
        return [with_expiry(response, expiry) for response in responses]

    async def _dispatch_response(
        self, event: CloudEvent, processor: CloudEventProcessor, request: CloudEvent
    ) -> None:
        """An event caused by a request we emitted with ``expect_response`` is its response."""
        try:
            await processor.dispatch_response(event, request, max_depth=self._limits.nesting_depth)
        except InputError as error:
            self.pipeline.reject(event, error)
            raise RpcError(error.kind, error.message) from None
        self.stats.processed += 1

    # -- lifecycle --------------------------------------------------------------------
    async def run(self, shutdown: asyncio.Event) -> None:
        """Serve until ``shutdown`` is set; then drain in-flight requests and close."""
        rpc = self.rpc
        self._ssl = server_ssl_context(rpc)
        # Bind before the task group: a port in use is raised as itself, not as a group.
        listeners = await bind(rpc.host, rpc.port, backlog=1024)
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                expiry = tasks.create_task(self.tracker.run(), name="rpc-expiry")
                accepting = [
                    tasks.create_task(accept_forever(sock, self._accepted), name="rpc-accept")
                    for sock in listeners
                ]
                self._port = int(listeners[0].getsockname()[1])
                self._accepting = True
                self._listening.set()
                logger.info(
                    "MessagePack-RPC listening on %s:%s%s",
                    rpc.host,
                    self._port,
                    " (TLS)" if self._ssl else "",
                )
                try:
                    await shutdown.wait()
                finally:
                    self._accepting = False
                    self._listening.clear()
                    for task in accepting:
                        task.cancel()
                    for sock in listeners:
                        sock.close()
                    await self._drain()
                    expiry.cancel()
        finally:
            for sock in listeners:
                sock.close()

    def _accepted(self, sock: socket.socket) -> None:
        """Count a new socket against the limit before anything (TLS included) is spent."""
        if not self._accepting or self._tasks is None:
            sock.close()
            return
        limit = self.rpc.max_connections
        if self._sockets >= limit:
            self.connection_stats.refused_connections += 1
            self._refusal_log.warning("%d RPC connections open: refusing new ones", limit)
            sock.close()
            return
        self._sockets += 1
        self._handshakes.add(self._tasks.create_task(self._open(sock)))

    async def _open(self, sock: socket.socket) -> None:
        """Set up the stream (TLS handshake first, if on), then serve it to the end."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        try:
            reader = asyncio.StreamReader(limit=READ_LIMIT, loop=loop)
            protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
            try:
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol,
                    sock,
                    ssl=self._ssl,
                    ssl_handshake_timeout=self.tls_handshake_timeout if self._ssl else None,
                )
            except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
                logger.debug("RPC connection failed before it was set up: %s", exc)
                return
            finally:
                self._handshakes.discard(task)
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            if not self._accepting:
                transport.abort()
                return
            connection = RpcConnection(
                reader,
                writer,
                dispatcher=self,
                policy=self._policy,
                encoder=self._encoder,
                max_buffer_bytes=self.rpc.max_buffer_bytes,
                max_concurrent_requests=self.rpc.max_concurrent_requests,
                stats=self.connection_stats,
            )
            self._connections[connection] = task
            await self._serve(connection)
        finally:
            self._sockets -= 1

    async def _serve(self, connection: RpcConnection) -> None:
        try:
            await connection.serve()
        except Exception:  # outermost frame of the connection's task
            self.stats.fail("internal_error")
            logger.exception("connection %s failed", connection.peer)
        finally:
            self._connections.pop(connection, None)

    async def _drain(self) -> None:
        """Stop reading everywhere; give in-flight requests the grace period, then close."""
        for handshake in list(self._handshakes):
            handshake.cancel()
        for connection in list(self._connections):
            connection.stop_reading()
        pending = set(self._connections.values())
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=self._shutdown_grace)
        if late:
            logger.warning(
                "shutdown grace of %.1fs over: closing %d connections with requests in progress",
                self._shutdown_grace,
                len(late),
            )
            for task in late:
                task.cancel()
