"""One accepted MessagePack-RPC connection: reading, concurrency limit, error replies.

The read loop decodes frames and starts one task per request in the connection's task
group. When ``max_concurrent_requests`` are in progress, or the peer does not read what
we send, the loop stops reading from the socket: TCP flow control then slows the client
down (back-pressure) instead of a queue growing in our memory.

Two deadlines keep a connection from holding a socket for nothing: one to authenticate
(when a token is required) and one for silence (nothing received, nothing in progress).
Either sends an ``error`` notification saying why, then closes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from microdcs.transports.msgpack_rpc.auth import AUTHENTICATE
from microdcs.transports.msgpack_rpc.errors import (
    AUTH_THROTTLED,
    AUTH_TIMEOUT,
    IDLE_TIMEOUT,
    INTERNAL_ERROR,
    INVALID_FRAME,
    UNAUTHENTICATED,
    RpcError,
)
from microdcs.transports.msgpack_rpc.limits import AuthBackoff, BurstLog, peer_address
from microdcs.transports.msgpack_rpc.methods import ERROR, HEARTBEAT, heartbeat_result
from microdcs.transports.msgpack_rpc.protocol import (
    FrameDecoder,
    FrameEncoder,
    FrameError,
    Message,
    Notification,
    Request,
)
from microdcs.transports.msgpack_rpc.tokens import UNRESTRICTED, SidecarGrant, TokenCheck
from microdcs.transports.msgpack_rpc.writer import FrameWriter

logger = logging.getLogger(__name__)

READ_SIZE = 65536
#: After the goodbye notification of a timeout, how long the peer gets to take it.
CLOSE_GRACE = 1.0


class Dispatcher(Protocol):
    """What runs the application methods (``publish``) of a connection."""

    async def call(self, connection: RpcConnection, method: str, params: list[Any]) -> Any:
        """The result of a request; raises :class:`RpcError` to answer with an error."""
        ...

    async def notify(self, connection: RpcConnection, method: str, params: list[Any]) -> None:
        """Handle a notification; an :class:`RpcError` becomes an ``error`` notification."""
        ...


@dataclass(slots=True)
class ConnectionStats:
    """Counters over all connections of a server."""

    accepted: int = 0
    open: int = 0
    frame_errors: int = 0
    streams_closed_on_error: int = 0
    auth_failures: int = 0
    slow_consumers: int = 0
    #: ``authenticate`` refused because the peer address was in its back-off.
    auth_throttled: int = 0
    auth_timeouts: int = 0
    idle_timeouts: int = 0
    #: Connections closed at accept because ``APP_RPC_MAX_CONNECTIONS`` were open.
    refused_connections: int = 0
    #: Events a sidecar published outside its scopes.
    forbidden: int = 0


@dataclass(slots=True)
class ConnectionPolicy:
    """What every connection of a server shares: token check, limits, bounded logs."""

    token: TokenCheck
    backoff: AuthBackoff
    auth_timeout: float
    idle_timeout: float
    auth_log: BurstLog
    throttle_log: BurstLog


class RpcConnection:
    """Serves one client until EOF, a fatal stream error, or :meth:`stop_reading`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        dispatcher: Dispatcher,
        policy: ConnectionPolicy,
        encoder: FrameEncoder,
        max_buffer_bytes: int,
        max_concurrent_requests: int,
        stats: ConnectionStats,
    ) -> None:
        self.peer = writer.get_extra_info("peername")
        #: Which sidecar this is and what it may act on; ``None`` until authenticated.
        self.grant: SidecarGrant | None = None if policy.token.required else UNRESTRICTED
        self.last_heartbeat: float | None = None
        self._reader = reader
        self._transport = writer.transport
        self._dispatcher = dispatcher
        self._policy = policy
        self._loop = asyncio.get_running_loop()
        self._last_received = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._stats = stats
        self._decoder = FrameDecoder(max_buffer_bytes)
        self._encoder = encoder
        self._out = FrameWriter(writer, high_water=max_buffer_bytes)
        self._push_limit = max_buffer_bytes
        self._max_active = max_concurrent_requests
        self._active = 0
        self._slot_free = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._read_task: asyncio.Task[None] | None = None
        self._tasks: asyncio.TaskGroup | None = None
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def authenticated(self) -> bool:
        return self.grant is not None

    def receives(self, subject: str | None) -> bool:
        """Whether an event with ``subject`` may be pushed to this connection."""
        return self.grant is not None and self.grant.covers(subject)

    @property
    def in_flight(self) -> int:
        """Requests of this connection in progress."""
        return self._active

    # -- lifecycle --------------------------------------------------------------------
    async def serve(self) -> None:
        """Read until the stream ends, let in-flight requests finish, flush, close."""
        self._stats.accepted += 1
        self._stats.open += 1
        self._arm()
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self._out.run())
                self._read_task = tasks.create_task(self._read_loop())
                await asyncio.wait({self._read_task})
                await self._idle.wait()
                self._out.close()
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self._stats.open -= 1
            self._transport.close()

    def stop_reading(self) -> None:
        """Take no more requests; the ones in progress still get their responses."""
        if self._read_task is not None:
            self._read_task.cancel()

    def abort(self) -> None:
        """Drop the connection now, discarding unsent output."""
        self._out.broken = True
        self.stop_reading()
        self._transport.abort()

    # -- deadlines --------------------------------------------------------------------
    def _arm(self) -> None:
        """Schedule the next deadline check: authentication first, then silence."""
        if not self.authenticated:
            delay = self._policy.auth_timeout
        elif self._policy.idle_timeout > 0:
            delay = self._last_received + self._policy.idle_timeout - self._loop.time()
        else:
            return
        self._timer = self._loop.call_later(max(delay, 0.0), self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._closing:
            return
        if not self.authenticated:
            self._stats.auth_timeouts += 1
            logger.info("client %s did not authenticate in time; closing", self.peer)
            self._close_with(AUTH_TIMEOUT, "authenticate(token) did not come in time")
            return
        silent = self._loop.time() - self._last_received
        if silent >= self._policy.idle_timeout and self._active == 0:
            self._stats.idle_timeouts += 1
            logger.info("client %s sent nothing for %.0fs; closing", self.peer, silent)
            self._close_with(IDLE_TIMEOUT, "nothing received; send heartbeats more often")
            return
        if self._active:  # a request in progress is not silence
            self._last_received = self._loop.time()
        self._arm()

    def _close_with(self, kind: str, message: str) -> None:
        """Say why, stop reading, close; abort if the peer does not take the goodbye."""
        self._closing = True
        self._out.send(self._encoder.notification(ERROR, [{"kind": kind, "message": message}]))
        self.stop_reading()
        self._timer = self._loop.call_later(CLOSE_GRACE, self.abort)

    def push(self, frame: bytes) -> None:
        """Send a server-initiated notification; a client too slow to take it is dropped.

        Dropping the client (rather than the oldest notification) makes the loss visible
        to it: it reconnects and can re-read state, instead of silently missing an event.
        """
        if not self.authenticated or self._out.broken:
            return
        if self._out.backlog + len(frame) > self._push_limit:
            self._stats.slow_consumers += 1
            logger.warning("client %s does not read its events; disconnecting it", self.peer)
            self.abort()
            return
        self._out.send(frame)

    # -- reading ----------------------------------------------------------------------
    async def _read_loop(self) -> None:
        while True:
            if self._out.over_high_water:
                await self._out.wait_writable()
            try:
                data = await self._reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                return
            if not data or self._out.broken:
                return
            self._last_received = self._loop.time()
            for item in self._decoder.feed(data):
                if not await self._handle(item):
                    return

    async def _handle(self, item: Message | FrameError) -> bool:
        """Act on one decoded item; False means stop reading (the stream is done)."""
        if isinstance(item, FrameError):
            self._reject(item)
            if item.fatal:
                self._stats.streams_closed_on_error += 1
            return not item.fatal
        if isinstance(item, Request):
            return await self._request(item)
        if isinstance(item, Notification):
            if item.method == HEARTBEAT:
                self.last_heartbeat = time.monotonic()
            elif self.authenticated:
                await self._acquire_slot()
                self._spawn(self._run_notification(item))
            return True
        self._reject(FrameError(INVALID_FRAME, "the server does not expect responses"))
        return True

    async def _request(self, request: Request) -> bool:
        if request.method == AUTHENTICATE:
            return self._authenticate(request)
        if not self.authenticated:
            error = RpcError(UNAUTHENTICATED, "call authenticate(token) first")
            self._respond(request.msgid, error.to_wire())
            return True
        if request.method == HEARTBEAT:
            self.last_heartbeat = time.monotonic()
            self._respond(request.msgid, None, heartbeat_result(request.params))
            return True
        await self._acquire_slot()
        self._spawn(self._run_request(request))
        return True

    def _authenticate(self, request: Request) -> bool:
        """Check the token unless the peer is in its back-off; False closes the stream."""
        address = peer_address(self.peer)
        backoff = self._policy.backoff
        wait = backoff.retry_in(address)
        if wait > 0:
            self._stats.auth_throttled += 1
            self._policy.throttle_log.warning("authenticate from %s refused: back-off", address)
            message = f"too many wrong tokens from {address}; retry in {wait:.1f}s"
            self._respond(request.msgid, RpcError(AUTH_THROTTLED, message).to_wire())
            return False
        grant = self._policy.token.grant_for(request.params)
        if grant is None:
            self._stats.auth_failures += 1
            delay = backoff.failed(address)
            self._policy.auth_log.warning(
                "client %s presented a wrong token; closing, back-off %.1fs", address, delay
            )
            self._respond(request.msgid, RpcError(UNAUTHENTICATED, "invalid token").to_wire())
            return False
        backoff.succeeded(address)
        first = self.grant is None
        self.grant = grant
        if first and self._timer is not None:  # the authentication deadline is met
            self._timer.cancel()
            self._arm()
        self._respond(request.msgid, None, True)
        return True

    async def _acquire_slot(self) -> None:
        """Wait for a free request slot; while waiting nothing is read (back-pressure)."""
        while self._active >= self._max_active:
            self._slot_free.clear()
            await self._slot_free.wait()
        self._active += 1
        self._idle.clear()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._tasks is not None
        self._tasks.create_task(work)

    def _finished(self) -> None:
        self._active -= 1
        self._slot_free.set()
        if self._active == 0:
            self._idle.set()

    # -- running ----------------------------------------------------------------------
    async def _run_request(self, request: Request) -> None:
        try:
            result = await self._dispatcher.call(self, request.method, request.params)
            self._respond(request.msgid, None, result)
        except RpcError as error:
            self._respond(request.msgid, error.to_wire())
        except Exception as exc:  # outermost frame of the request's task
            logger.exception("request %s (%s) failed", request.msgid, request.method)
            self._respond(request.msgid, RpcError(INTERNAL_ERROR, str(exc)).to_wire())
        finally:
            self._finished()

    async def _run_notification(self, notification: Notification) -> None:
        try:
            await self._dispatcher.notify(self, notification.method, notification.params)
        except RpcError as error:
            self._out.send(self._encoder.notification(ERROR, [error.to_wire()]))
        except Exception:  # outermost frame of the notification's task
            logger.exception("notification %s failed", notification.method)
        finally:
            self._finished()

    # -- answering --------------------------------------------------------------------
    def _respond(self, msgid: int, error: Any, result: Any = None) -> None:
        try:
            frame = self._encoder.response(msgid, error, result)
        except (TypeError, ValueError, OverflowError) as exc:
            logger.error("result of request %s cannot be packed: %s", msgid, exc)
            error = RpcError(INTERNAL_ERROR, "the result cannot be encoded").to_wire()
            frame = self._encoder.response(msgid, error, None)
        self._out.send(frame)

    def _reject(self, error: FrameError) -> None:
        """Answer a bad frame: a response when its msgid is known, else a notification."""
        self._stats.frame_errors += 1
        logger.info("bad frame from %s: %s (%s)", self.peer, error.message, error.kind)
        wire = {"kind": error.kind, "message": error.message}
        if error.msgid is not None:
            self._respond(error.msgid, wire)
        else:
            self._out.send(self._encoder.notification(ERROR, [wire]))
