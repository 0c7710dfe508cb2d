"""A lean, fully pipelined Redis connection for the hot path.

Commands issued during one event-loop iteration leave in one ``write``; replies are
matched to their futures in order as they arrive, and the next batch never waits for the
previous one's replies. Parsing is hiredis (C). redis-py stays in use for everything that
is not per-message (blocking stream reads, administration).
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Awaitable
from typing import Any

import hiredis
from redis.exceptions import NoScriptError, ResponseError

from microdcs.core.errors import StorageUnavailableError

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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._connection._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection._connection_lost(exc)


class RespConnection:
    """One pipelined connection; reconnects lazily on the next command after a loss."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        password: str | None = None,
        db: int = 0,
        connect_timeout: float = 2.0,
    ) -> None:
        self._host = host
        self._port = port
        self._password = password
        self._db = db
        self._connect_timeout = connect_timeout
        self._transport: asyncio.Transport | None = None
        self._reader = hiredis.Reader()
        self._pending: collections.deque[asyncio.Future[Any]] = collections.deque()
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
            loop = self._loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self._connect_timeout):
                    transport, _ = await loop.create_connection(
                        lambda: _Protocol(self), self._host, self._port
                    )
            except (OSError, TimeoutError) as exc:
                raise StorageUnavailableError(
                    f"Redis at {self._host}:{self._port} unavailable: {exc}"
                ) from None
            self._transport = transport
            self._reader = hiredis.Reader()
            setup: list[tuple[Any, ...]] = []
            if self._password:
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
                        raise StorageUnavailableError(f"Redis refused set-up: {reply}")

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
        self._out.append(encode_command(args))
        self._pending.append(future)
        if not self._flush_scheduled:
            self._schedule_flush(loop)
        return future

    async def _execute_connecting(self, args: tuple[Any, ...]) -> Any:
        await self._ensure_connected()
        (future,) = self._submit([args])
        return await future

    def _submit(self, commands: list[tuple[Any, ...]]) -> list[asyncio.Future[Any]]:
        loop = self._loop
        assert loop is not None  # set by _ensure_connected
        futures = [loop.create_future() for _ in commands]
        self._out.extend(encode_command(args) for args in commands)
        self._pending.extend(futures)
        if not self._flush_scheduled:
            self._schedule_flush(loop)
        return futures

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Everything queued in this loop iteration leaves in one write, at its end."""
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        if self._transport is None:
            self._fail_pending(StorageUnavailableError("Redis connection lost"))
            return
        self._transport.write(data)

    def _data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        pending = self._pending
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                assert self._transport is not None
                self._transport.abort()
                self._fail_pending(StorageUnavailableError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not pending:
                continue
            future = pending.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_reply_error(str(reply)))
            else:
                future.set_result(reply)

    def _connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail_pending(StorageUnavailableError(f"Redis connection lost: {exc}"))

    def _fail_pending(self, error: Exception) -> None:
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(error)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
