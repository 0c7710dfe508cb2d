"""Shared pieces of the MessagePack-RPC tests: an in-process server and a raw client.

The raw client speaks the protocol with plain ``msgpack`` over ``asyncio`` streams, so
the server is checked against an independent implementation, not only against ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import msgpack

from microdcs.app.assembly import replica_options
from microdcs.app.config import AppConfig, RpcConfig
from microdcs.examples.greeting import GREETING_TYPE, GreetingProcessor
from microdcs.models import Model
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.storage.dedupe import Deduplicator
from microdcs.transports.msgpack_rpc import MessagePackRpcHandler

_ids = itertools.count()
SLOW_TYPE = "com.example.test.slow.v1"


def rpc_config(*, shutdown_grace: float = 2.0, **rpc: Any) -> AppConfig:
    """A configuration with the RPC server on a free loopback port."""
    tag = uuid.uuid4().hex[:8]
    return AppConfig(
        instance_id=f"rpc-test-{tag}",
        shutdown_grace=shutdown_grace,
        storage_retry_seconds=1.0,
        rpc=replace(RpcConfig(enabled=True, host="127.0.0.1", port=0), **rpc),
    )


def rpc_handler(config: AppConfig, **options: Any) -> MessagePackRpcHandler:
    """The RPC handler of ``config``, built as the runner builds it."""
    return MessagePackRpcHandler(config.rpc, replica_options(config), **options)


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``condition()`` holds (state changed by the server's own tasks)."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.005)


def greeting_event(name: str = "Ada", **attributes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"evt-{next(_ids)}-{uuid.uuid4().hex[:6]}",
        "source": "sidecar/test",
        "type": GREETING_TYPE,
        "datacontenttype": "application/json",
        "data": {"name": name},
    }
    event.update(attributes)
    return event


@dataclass
class Slow(Model):
    """Request of :class:`SlowProcessor`."""

    __ce_type__: ClassVar[str] = SLOW_TYPE


class SlowProcessor(CloudEventProcessor):
    """Holds every request until the test opens the gate; counts how many wait at once."""

    def __init__(self) -> None:
        super().__init__(source="test/slow")
        self.gate = asyncio.Event()
        self.waiting = 0
        self.max_waiting = 0
        self.done = 0

    @handles(Slow)
    async def hold(self, message: Slow, context: MessageContext) -> None:
        self.waiting += 1
        self.max_waiting = max(self.max_waiting, self.waiting)
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        self.done += 1


def slow_event() -> dict[str, Any]:
    return greeting_event(type=SLOW_TYPE, data={})


@contextlib.asynccontextmanager
async def serving(
    config: AppConfig | None = None,
    processors: Sequence[CloudEventProcessor] | None = None,
    *,
    dedupe: Deduplicator | None = None,
    tls_handshake_timeout: float = 10.0,
) -> AsyncIterator[MessagePackRpcHandler]:
    """The RPC handler serving in this event loop until the block ends."""
    config = config or rpc_config()
    handler = rpc_handler(config, dedupe=dedupe, tls_handshake_timeout=tls_handshake_timeout)
    for processor in processors or [GreetingProcessor(source="microdcs/test")]:
        handler.bind(processor)
    shutdown = asyncio.Event()
    task = asyncio.create_task(handler.run(shutdown))
    try:
        async with asyncio.timeout(5):
            while not handler.ready:
                if task.done():
                    task.result()
                await asyncio.sleep(0.005)
        yield handler
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 10)


class RawClient:
    """MessagePack-RPC by hand: msgpack frames over a plain stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)

    @classmethod
    async def connect(cls, port: int, **kwargs: Any) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, **kwargs)
        return cls(reader, writer)

    async def send(self, *frames: Any) -> None:
        self.writer.write(b"".join(msgpack.packb(frame, use_bin_type=True) for frame in frames))
        await self.writer.drain()

    async def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, within: float = 5.0) -> Any:
        """The next frame; raises ``EOFError`` when the server closed the connection."""
        async with asyncio.timeout(within):
            while True:
                for frame in self.unpacker:
                    return frame
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("connection closed by the server")
                self.unpacker.feed(data)

    async def call(self, msgid: int, method: str, *params: Any) -> Any:
        await self.send([0, msgid, method, list(params)])
        return await self.recv()

    async def closed(self, within: float = 5.0) -> bool:
        """True once the server closed the connection (frames before that are skipped)."""
        try:
            while True:
                await self.recv(within)
        except (EOFError, ConnectionError):
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def raw_client(port: int, **kwargs: Any) -> AsyncIterator[RawClient]:
    client = await RawClient.connect(port, **kwargs)
    try:
        yield client
    finally:
        await client.close()
