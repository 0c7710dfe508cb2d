"""An asyncio MessagePack-RPC client for sidecars and tests.

One object, used as ``async with``: it owns a background task that keeps the connection
up (reconnecting with back-off), a writer task that batches outgoing frames, and a
bounded queue of server notifications read with ``async for``. Calls in progress when
the connection drops fail with :class:`RpcConnectionError`; they are not re-sent,
because only the caller knows whether repeating one is safe (``publish`` is, thanks to
the server's deduplication on ``source`` + ``id``).

While connected it sends a ``heartbeat`` notification every ``heartbeat_interval``
seconds, so the server's idle timeout (``APP_RPC_IDLE_TIMEOUT_SECONDS``) never closes a
quiet but healthy sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import ssl as ssl_module
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from microdcs.transports.msgpack_rpc.auth import AUTHENTICATE
from microdcs.transports.msgpack_rpc.errors import (
    AUTH_THROTTLED,
    RpcAuthenticationError,
    RpcConnectionError,
    RpcError,
    RpcTimeoutError,
)
from microdcs.transports.msgpack_rpc.methods import HEARTBEAT, PUBLISH
from microdcs.transports.msgpack_rpc.protocol import (
    MAX_MSGID,
    FrameDecoder,
    FrameEncoder,
    FrameError,
    Notification,
    Response,
)
from microdcs.transports.msgpack_rpc.writer import FrameWriter

logger = logging.getLogger(__name__)

Notified = tuple[str, list[Any]]


class MessagePackRpcClient:
    """Calls methods of a MessagePack-RPC server and receives its notifications."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        token: str | None = None,
        reconnect: bool = True,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        reconnect_max_seconds: float = 5.0,
        max_buffer_bytes: int = 8 * 1024 * 1024,
        max_notifications: int = 10_000,
        heartbeat_interval: float | None = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.dropped_notifications = 0
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._token = token
        self._reconnect = reconnect
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._reconnect_max = reconnect_max_seconds
        self._max_buffer = max_buffer_bytes
        self._heartbeat_interval = heartbeat_interval
        self._notifications: asyncio.Queue[Notified | None] = asyncio.Queue(max_notifications)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count()
        self._encoder = FrameEncoder()
        self._out: FrameWriter | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._failure: BaseException | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._manager: asyncio.Task[None] | None = None

    # -- context --------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._manager = self._tasks.create_task(self._maintain(first), name="rpc-client")
        try:
            await first
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing = True
        if self._manager is not None:
            self._manager.cancel()
        if self._tasks is not None:
            tasks, self._tasks = self._tasks, None
            # Not the caller's exception: a TaskGroup would wrap it in an ExceptionGroup.
            await tasks.__aexit__(None, None, None)
        self._fail_pending(RpcConnectionError("the client is closed"))
        self._put_notification(None)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- calls ----------------------------------------------------------------------
    async def call(
        self,
        method: str,
        *params: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - becomes a typed RpcTimeoutError
    ) -> Any:
        """Call ``method`` and return its result; raises :class:`RpcError` on an error reply."""
        try:
            async with asyncio.timeout(self._timeout if timeout is None else timeout):
                out = await self._link()
                return await self._call_on(out, method, list(params))
        except TimeoutError:
            raise RpcTimeoutError(f"no answer to {method} in time") from None

    async def notify(self, method: str, *params: Any) -> None:
        """Send a notification (no answer); waits only if the send buffer is full."""
        out = await self._link()
        out.send(self._encoder.notification(method, list(params)))
        await out.wait_writable()

    async def publish(
        self,
        event: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - passed on to call()
    ) -> list[dict[str, Any]]:
        """``publish`` a CloudEvent dict; returns the response CloudEvent dicts."""
        params: list[Any] = [event] if metadata is None else [event, metadata]
        result: list[dict[str, Any]] = await self.call(PUBLISH, *params, timeout=timeout)
        return result

    async def notifications(self) -> AsyncIterator[Notified]:
        """``(method, params)`` of server notifications until the client is closed.

        The queue is bounded; when the reader falls behind the oldest notifications are
        dropped and counted in :attr:`dropped_notifications`.
        """
        while True:
            item = await self._notifications.get()
            if item is None:
                self._notifications.put_nowait(None)  # let other iterators end too
                return
            yield item

    async def _link(self) -> FrameWriter:
        while True:
            if self._failure is not None:
                raise self._failure
            if self._closing:
                raise RpcConnectionError("the client is closed")
            if self._out is not None and self._connected.is_set() and not self._out.broken:
                return self._out
            if not self._reconnect:
                raise RpcConnectionError(f"not connected to {self.host}:{self.port}")
            await self._connected.wait()

    async def _call_on(self, out: FrameWriter, method: str, params: list[Any]) -> Any:
        msgid = self._next_msgid()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msgid] = future
        try:
            out.send(self._encoder.request(msgid, method, params))
            await out.wait_writable()
            return await future
        finally:
            self._pending.pop(msgid, None)

    def _next_msgid(self) -> int:
        while True:
            msgid = next(self._ids) & MAX_MSGID
            if msgid not in self._pending:
                return msgid

    # -- connection -----------------------------------------------------------------
    async def _maintain(self, first: asyncio.Future[None]) -> None:
        """Connect, serve, and reconnect with back-off until the client is closed."""
        deadline = time.monotonic() + self._connect_timeout
        delay = 0.05
        while not self._closing:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        self.host,
                        self.port,
                        ssl=self._ssl,
                        server_hostname=self._server_hostname if self._ssl else None,
                        limit=2**20,
                    ),
                    self._connect_timeout,
                )
            except (OSError, TimeoutError, ssl_module.SSLError) as exc:
                error = RpcConnectionError(f"cannot connect to {self.host}:{self.port}: {exc}")
                if not first.done() and (not self._reconnect or time.monotonic() > deadline):
                    first.set_exception(error)
                    return
                logger.debug("%s; retrying in %.2fs", error, delay)
            else:
                try:
                    await self._session(reader, writer, first)
                    delay = 0.05
                except RpcAuthenticationError as exc:
                    self._failure = exc
                    if not first.done():
                        first.set_exception(exc)
                    self._fail_pending(exc)
                    return
                except Exception as exc:  # outermost loop of the client's task
                    logger.warning("MessagePack-RPC session ended: %s", exc)
                finally:
                    self._connected.clear()
                    writer.transport.abort()
                    self._fail_pending(RpcConnectionError("connection lost"))
                if not self._reconnect:
                    self._failure = RpcConnectionError("connection lost (reconnect is off)")
                    self._put_notification(None)
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)

    async def _session(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first: asyncio.Future[None],
    ) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out = FrameWriter(writer, high_water=self._max_buffer)
        refused: RpcError | RpcConnectionError | None = None
        async with asyncio.TaskGroup() as tasks:
            writing = tasks.create_task(out.run())
            reading = tasks.create_task(self._read(reader))
            try:
                if self._token is not None:
                    await self._authenticate(out)
                self._out = out
                self._connected.set()
                if not first.done():
                    first.set_result(None)
                if self._heartbeat_interval:
                    beating = tasks.create_task(self._heartbeat(out, self._heartbeat_interval))
                    reading.add_done_callback(lambda _: beating.cancel())
                await asyncio.wait({reading})
            except (RpcError, RpcConnectionError) as exc:
                refused = exc  # raised below: inside the group it would become a group
            finally:
                self._out = None
                self._connected.clear()
                reading.cancel()
                out.broken = True
                out.close()
                writing.cancel()
        if refused is not None:
            raise refused

    async def _authenticate(self, out: FrameWriter) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._call_on(out, AUTHENTICATE, [self._token])
        except RpcError as exc:
            if exc.kind == AUTH_THROTTLED:  # the address is in its back-off: retry later
                raise RpcConnectionError(exc.message) from None
            raise RpcAuthenticationError(exc.kind, exc.message) from None
        except TimeoutError:
            raise RpcConnectionError("no answer to authenticate") from None

    async def _heartbeat(self, out: FrameWriter, interval: float) -> None:
        """Tell the server we are alive, so its idle timeout keeps the connection."""
        while not out.broken:
            await asyncio.sleep(interval)
            out.send(self._encoder.notification(HEARTBEAT, [time.time()]))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        decoder = FrameDecoder(self._max_buffer)
        while True:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                return
            if not data:
                return
            for item in decoder.feed(data):
                if isinstance(item, Response):
                    self._resolve(item)
                elif isinstance(item, Notification):
                    self._put_notification((item.method, item.params))
                elif isinstance(item, FrameError):
                    logger.warning("bad frame from the server: %s", item.message)
                    if item.fatal:
                        return
                else:
                    logger.warning("ignoring a request from the server: %s", item.method)

    def _resolve(self, response: Response) -> None:
        future = self._pending.pop(response.msgid, None)
        if future is None or future.done():
            return
        if response.error is None:
            future.set_result(response.result)
        else:
            future.set_exception(RpcError.from_wire(response.error))

    def _fail_pending(self, error: Exception) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    def _put_notification(self, item: Notified | None) -> None:
        if self._notifications.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._notifications.get_nowait()
                self.dropped_notifications += 1
        self._notifications.put_nowait(item)
