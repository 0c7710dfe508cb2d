"""A lean, fully pipelined Redis connection for the hot path.

Commands issued during one event-loop iteration leave in one ``write``; replies are
matched to their futures in order as they arrive, and the next batch never waits for the
previous one's replies. Parsing is hiredis (C). redis-py stays in use for everything that
is not per-message (blocking stream reads, administration).

Blocking commands (``XREAD ... BLOCK``, ``BLPOP``) do not belong here: one of them would
hold up every reply queued behind it, and the command timeout would cut it.

A frozen Redis (``SIGSTOP``, a stalled VM, a black-holed network) answers nothing and
closes nothing. One watchdog timer per connection watches the oldest write still waiting
for replies; when it is older than ``command_timeout`` every outstanding command fails
with :class:`StorageUnavailableError` and the connection is dropped, because replies that
arrive later could no longer be matched to their requests. The next command reconnects.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import hiredis
from redis.exceptions import NoScriptError, ResponseError

from microdcs.core.errors import StorageUnavailableError

logger = logging.getLogger(__name__)

#: Called with a command's reply future, the command as sent and the error reply when a
#: Redis Cluster node answers ``MOVED``/``ASK``: the cluster connection sends it again
#: elsewhere and the same future gets the reply (the caller never sees the redirect).
Redirect = Callable[["asyncio.Future[Any]", bytes, str], None]

#: RESP length headers, built once: formatting them was most of the cost of encoding.
_BULK_HEADERS = tuple(b"$%d\r\n" % size for size in range(1024))
_ARRAY_HEADERS = tuple(b"*%d\r\n" % count for count in range(64))
_CRLF = b"\r\n"


def encode_command(args: tuple[Any, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    count = len(args)
    parts = [_ARRAY_HEADERS[count] if count < 64 else b"*%d\r\n" % count]
    add = parts.append
    for arg in args:
        kind = type(arg)
        if kind is str:  # the common cases first, without isinstance chains
            data = arg.encode()
        elif kind is bytes:
            data = arg
        elif kind is int:
            data = b"%d" % arg
        elif isinstance(arg, bytes | bytearray | memoryview):
            data = bytes(arg)
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int | float):
            data = repr(arg).encode("ascii")
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis")
        size = len(data)
        add(_BULK_HEADERS[size] if size < 1024 else b"$%d\r\n" % size)
        add(data)
        add(_CRLF)
    return b"".join(parts)


#: Error replies that mean "not serving right now, the same command will succeed later":
#: loading the dataset after a restart, a long script running, a failover in progress.
#: They reject the command without effect, so waiting and retrying is always safe.
TRANSIENT_REPLIES = frozenset(
    {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "UNBLOCKED"}
)


#: Replies of a server that is a replica now: a located connection moves on.
_DEMOTED = ("READONLY", "MASTERDOWN")


def is_transient_reply(message: str) -> bool:
    """Whether an error reply (``"LOADING Redis is loading..."``) is to be waited out."""
    return message.split(" ", 1)[0] in TRANSIENT_REPLIES


def _reply_error(message: str) -> Exception:
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    if is_transient_reply(message):
        return StorageUnavailableError(f"Redis not serving: {message}")
    return ResponseError(message)


class _Protocol(asyncio.Protocol):
    def __init__(self, connection: RespConnection) -> None:
        self._connection = connection
        #: Cleared when the connection drops this transport (timeout, close): late events
        #: of the old socket must not touch the state of a newer one.
        self.active = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.active:
            self._connection._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.active:
            self.active = False
            self._connection._connection_lost(exc)


class RespConnection:
    """One pipelined connection; reconnects lazily on the next command after a loss."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        password: str | None = None,
        username: str | None = None,
        db: int = 0,
        connect_timeout: float = 2.0,
        command_timeout: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
        locate: Callable[[], Awaitable[tuple[str, int]]] | None = None,
        redirect: Redirect | None = None,
    ) -> None:
        self._host = host
        self._port = port
        #: TLS for every connection (the host name is verified against ``host``).
        self._ssl = ssl_context
        #: Asked for the address before every (re)connect: Sentinel names the primary of
        #: the moment, so a failover moves the connection with it.
        self._locate = locate
        self._password = password
        self._username = username
        self._db = db
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        #: Commands written and replies matched on the current connection; with the
        #: (count written after the write, loop time of the write) of every write not yet
        #: fully answered, the watchdog knows the age of the oldest unanswered command
        #: without a timer or timestamp per command.
        self._written = 0
        self._answered = 0
        self._writes: collections.deque[tuple[int, float]] = collections.deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._reader = hiredis.Reader()
        self._pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        #: With a redirect handler: each pending command as sent, in step with _pending.
        self._redirect = redirect
        self._sent: collections.deque[bytes] | None = (
            collections.deque() if redirect is not None else None
        )
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._connecting: asyncio.Lock | None = None
        #: The loop of the current connection (set when connecting; not looked up per call).
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def _ensure_connected(self) -> None:
        if self.connected:
            return
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self.connected:
                return
            if self._protocol is not None:  # a socket still closing: forget it first
                self._drop(StorageUnavailableError("Redis connection lost"))
            loop = self._loop = asyncio.get_running_loop()
            if self._locate is not None:
                self._host, self._port = await self._locate()
            try:
                async with asyncio.timeout(self._connect_timeout):
                    transport, protocol = await loop.create_connection(
                        lambda: _Protocol(self),
                        self._host,
                        self._port,
                        ssl=self._ssl,
                        server_hostname=self._host if self._ssl is not None else None,
                    )
            except ssl.SSLError as exc:
                raise StorageUnavailableError(
                    f"TLS with Redis at {self._host}:{self._port} failed: {exc}"
                ) from None
            except (OSError, TimeoutError) as exc:
                raise StorageUnavailableError(
                    f"Redis at {self._host}:{self._port} unavailable: {exc}"
                ) from None
            self._transport = transport
            self._protocol = protocol
            self._reader = hiredis.Reader()
            self._written = self._answered = 0
            self._writes.clear()
            setup: list[tuple[Any, ...]] = []
            if self._password:
                if self._username:
                    setup.append(("AUTH", self._username, self._password))
                else:
                    setup.append(("AUTH", self._password))
            if self._db:
                setup.append(("SELECT", self._db))
            if setup:
                replies = await asyncio.gather(*self._submit(setup), return_exceptions=True)
                for reply in replies:
                    if isinstance(reply, Exception):
                        # Not usable unauthenticated or on the wrong database: the next
                        # command connects (and sets up) again.
                        self.close()
                        if isinstance(reply, StorageUnavailableError):
                            raise reply
                        raise StorageUnavailableError(
                            f"Redis refused set-up{self._as_user()}: {reply}"
                        )

    def _as_user(self) -> str:
        return f" for user {self._username!r}" if self._username else ""

    async def connect(self) -> None:
        """Connect (and authenticate) now instead of on the first command; raises
        :class:`StorageUnavailableError` naming the user when Redis refuses it."""
        await self._ensure_connected()

    async def execute_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send commands in order; each reply (or the reply's error) in the same order."""
        await self._ensure_connected()
        return list(await asyncio.gather(*self._submit(commands), return_exceptions=True))

    def execute(self, *args: Any) -> Awaitable[Any]:
        """One command; await the result. While connected, this is the reply's future
        itself (no coroutine per command on the hot path); otherwise a coroutine that
        connects first."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return self._execute_connecting(args)
        loop = self._loop
        assert loop is not None  # set by _ensure_connected
        future = loop.create_future()
        self._enqueue(encode_command(args), future, loop)
        return future

    def send_encoded(self, data: bytes, future: asyncio.Future[Any]) -> bool:
        """Queue a command as already encoded whose reply completes ``future`` (a command
        redirected here); False when not connected."""
        loop = self._loop
        if not self.connected or loop is None:
            return False
        self._enqueue(data, future, loop)
        return True

    def _enqueue(
        self, data: bytes, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        """One encoded command and its reply's future into this iteration's write."""
        self._out.append(data)
        self._pending.append(future)
        if self._sent is not None:
            self._sent.append(data)
        if not self._flush_scheduled:
            self._schedule_flush(loop)

    async def _execute_connecting(self, args: tuple[Any, ...]) -> Any:
        await self._ensure_connected()
        (future,) = self._submit([args])
        return await future

    def _submit(self, commands: list[tuple[Any, ...]]) -> list[asyncio.Future[Any]]:
        loop = self._loop
        assert loop is not None  # set by _ensure_connected
        futures = [loop.create_future() for _ in commands]
        encoded = [encode_command(args) for args in commands]
        self._out.extend(encoded)
        self._pending.extend(futures)
        if self._sent is not None:
            self._sent.extend(encoded)
        if not self._flush_scheduled:
            self._schedule_flush(loop)
        return futures

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Everything queued in this loop iteration leaves in one write, at its end."""
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        count = len(out)
        data = b"".join(out)
        out.clear()
        transport = self._transport
        if transport is None:
            self._fail_pending(StorageUnavailableError("Redis connection lost"))
            return
        transport.write(data)
        loop = self._loop
        assert loop is not None  # set by _ensure_connected
        self._written += count
        now = loop.time()
        self._writes.append((self._written, now))
        if self._watchdog is None:
            self._watchdog = loop.call_at(now + self._command_timeout, self._check_timeout)

    def _check_timeout(self) -> None:
        """The watchdog: fail everything outstanding if the oldest unanswered write is
        older than the command timeout, otherwise sleep until it would be."""
        self._watchdog = None
        writes = self._writes
        answered = self._answered
        while writes and writes[0][0] <= answered:
            writes.popleft()
        if not writes:
            return  # all answered; the next write arms the watchdog again
        loop = self._loop
        assert loop is not None
        deadline = writes[0][1] + self._command_timeout
        if loop.time() < deadline:
            self._watchdog = loop.call_at(deadline, self._check_timeout)
            return
        # Replies still in flight could never be matched to their requests again: the
        # connection is dropped with them and the next command opens a new one.
        logger.warning(
            "Redis at %s:%d answered nothing within %.1f s; reconnecting",
            self._host,
            self._port,
            self._command_timeout,
        )
        self._drop(
            StorageUnavailableError(
                f"Redis at {self._host}:{self._port} did not answer within "
                f"{self._command_timeout:g} s"
            )
        )

    def _data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        pending = self._pending
        sent = self._sent
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._drop(StorageUnavailableError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not pending:
                continue
            future = pending.popleft()
            data = sent.popleft() if sent is not None else b""
            self._answered += 1
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                message = str(reply)
                if sent is not None and message.startswith(("MOVED ", "ASK ")):
                    assert self._redirect is not None
                    self._redirect(future, data, message)
                    continue
                future.set_exception(_reply_error(message))
                if self._locate is not None and message.startswith(_DEMOTED):
                    # The server is no longer the primary (a failover demoted it): close,
                    # so that the next command locates the primary of now. Replies still
                    # in flight fail as unavailable, which callers retry.
                    self._demoted()
                    return
            else:
                future.set_result(reply)

    def _demoted(self) -> None:
        logger.warning(
            "Redis at %s:%d is no longer the primary; locating the primary again",
            self._host,
            self._port,
        )
        self._drop(StorageUnavailableError(f"Redis at {self._host}:{self._port} is a replica"))

    def _connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._protocol = None
        self._stop_watchdog()
        self._fail_pending(StorageUnavailableError(f"Redis connection lost: {exc}"))

    def _drop(self, error: Exception) -> None:
        """Abandon the current socket now: its late replies and its close are ignored."""
        transport = self._transport
        protocol = self._protocol
        self._transport = None
        self._protocol = None
        if protocol is not None:
            protocol.active = False
        if transport is not None:
            transport.abort()
        self._stop_watchdog()
        self._out.clear()
        self._fail_pending(error)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._writes.clear()

    def _fail_pending(self, error: Exception) -> None:
        if self._sent is not None:
            self._sent.clear()
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(error)

    def close(self) -> None:
        """Close the socket after what is written; outstanding commands fail."""
        transport = self._transport
        protocol = self._protocol
        self._transport = None
        self._protocol = None
        if protocol is not None:
            protocol.active = False
        if transport is not None:
            transport.close()
        self._stop_watchdog()
        self._fail_pending(StorageUnavailableError("Redis connection closed"))
