"""Test helpers for processor projects: a real Mosquitto and Redis, a runtime, an MES client.

A processor is tested against the broker and Redis it will meet in production, not a mock:
:func:`local_stack` starts both on free loopback ports (``mosquitto`` and ``redis-server``
must be installed), :meth:`LocalStack.config` gives each test its own topics and keys,
:func:`running` serves the runtime with the project's processor factories in the test's
event loop, and :class:`MesClient` plays the MES over plain MQTT v5.

A ``conftest.py`` of a project (``microdcs init`` writes one)::

    @pytest.fixture(scope="session")
    def stack(tmp_path_factory):
        with local_stack(tmp_path_factory.mktemp("stack")) as services:
            yield services
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microdcs.app.assembly import open_runtime
from microdcs.app.binder import ProcessorFactory
from microdcs.app.config import AppConfig, MqttConfig, RedisConfig
from microdcs.app.devstack import LocalMosquitto, LocalRedis
from microdcs.app.runtime import Runtime

__all__ = ["LocalStack", "MesClient", "Received", "local_stack", "running"]


@dataclass(frozen=True, slots=True)
class LocalStack:
    """A running Mosquitto and Redis (see :func:`local_stack`)."""

    mosquitto: LocalMosquitto
    redis: LocalRedis

    def config(self, **overrides: Any) -> AppConfig:
        """A replica's settings on this stack, isolated from other tests: its own instance
        id, Redis key prefix, response topics and shared-subscription group. ``overrides``
        replace :class:`AppConfig` fields (``greeting_enabled=True``, ...)."""
        tag = uuid.uuid4().hex[:8]
        config = AppConfig(
            instance_id=f"test-{tag}",
            shutdown_grace=5.0,
            http_port=0,
            mqtt=MqttConfig(
                hostname="127.0.0.1",
                port=self.mosquitto.port,
                shared_subscription=f"g{tag}",
                response_topic_base=f"test{tag}/responses",
            ),
            redis=RedisConfig(hostname="127.0.0.1", port=self.redis.port, key_prefix=f"t{tag}"),
        )
        return replace(config, **overrides) if overrides else config


@contextlib.contextmanager
def local_stack(workdir: Path) -> Iterator[LocalStack]:
    """Start Mosquitto and Redis under ``workdir`` on free ports; stop both at the end."""
    with (
        LocalMosquitto(workdir / "mosquitto") as broker,
        LocalRedis(workdir / "redis", appendonly=False) as redis,
    ):
        yield LocalStack(broker, redis)


@contextlib.asynccontextmanager
async def running(
    config: AppConfig, factories: Sequence[ProcessorFactory] = (), *, connect_seconds: float = 10.0
) -> AsyncIterator[Runtime]:
    """A runtime with ``factories`` bound, serving in this event loop until the block ends
    (entered once it is connected and subscribed)."""
    async with open_runtime(config, factories) as runtime:
        task = asyncio.create_task(runtime.app.run(install_signal_handlers=False))
        try:
            async with asyncio.timeout(connect_seconds):
                await runtime.mqtt.connected.wait()
            yield runtime
        finally:
            runtime.app.request_shutdown()
            await asyncio.wait_for(task, config.shutdown_grace + connect_seconds)


@dataclass(slots=True)
class Received:
    """A message the :class:`MesClient` received: topic, CloudEvent attributes, data."""

    topic: str
    attributes: dict[str, str]
    payload: bytes
    correlation_data: bytes | None = None

    @property
    def type(self) -> str | None:
        return self.attributes.get("type")

    def json(self) -> Any:
        return orjson.loads(self.payload)


@dataclass
class MesClient:
    """A plain MQTT v5 client that sends binary-mode CloudEvents as an MES would.

    It uses no runtime code, so a test through it checks the wire, not the framework's view
    of itself. Use as ``async with MesClient(stack.mosquitto.port) as mes``.
    """

    port: int
    host: str = "127.0.0.1"
    source: str = "test/mes"
    _client: aiomqtt.Client | None = field(default=None, init=False)
    _queues: dict[str, asyncio.Queue[Received]] = field(default_factory=dict, init=False)
    _reader: asyncio.Task[None] | None = field(default=None, init=False)
    _inbox: str = field(default_factory=lambda: f"mes-{uuid.uuid4().hex[:8]}/inbox", init=False)

    async def __aenter__(self) -> MesClient:
        self._client = aiomqtt.Client(self.host, self.port, protocol=aiomqtt.ProtocolVersion.V5)
        await self._client.__aenter__()
        self._reader = asyncio.create_task(self._read(self._client))
        await self.subscribe(self._inbox)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._client is not None:
            await self._client.__aexit__(None, None, None)

    async def subscribe(self, topic_filter: str) -> None:
        """Collect the messages of ``topic_filter``; read them with :meth:`next`."""
        self._queues.setdefault(topic_filter, asyncio.Queue())
        await self._connected().subscribe(topic_filter, qos=1)

    async def next(self, topic_filter: str, seconds: float = 5.0) -> Received:
        """The next message received on ``topic_filter`` (subscribed before)."""
        return await asyncio.wait_for(self._queues[topic_filter].get(), seconds)

    async def publish(
        self,
        topic: str,
        event_type: str,
        data: Any,
        *,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        **attributes: str,
    ) -> None:
        """Send ``data`` as the JSON data of a binary-mode CloudEvent of ``event_type``."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = "application/json"
        props.PayloadFormatIndicator = 1
        props.UserProperty = [
            ("specversion", "1.0"),
            ("id", attributes.pop("id", str(uuid.uuid4()))),
            ("source", self.source),
            ("type", event_type),
            *attributes.items(),
        ]
        if response_topic is not None:
            props.ResponseTopic = response_topic
        if correlation_data is not None:
            props.CorrelationData = correlation_data
        await self._connected().publish(topic, orjson.dumps(data), qos=1, properties=props)

    async def request(
        self, topic: str, event_type: str, data: Any, *, seconds: float = 5.0, **attributes: str
    ) -> Received:
        """Send a request with a Response Topic and wait for its answer."""
        correlation = uuid.uuid4().bytes
        await self.publish(
            topic,
            event_type,
            data,
            response_topic=self._inbox,
            correlation_data=correlation,
            **attributes,
        )
        async with asyncio.timeout(seconds):
            while True:
                reply = await self.next(self._inbox, seconds)
                if reply.correlation_data == correlation:
                    return reply

    def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            raise RuntimeError("MesClient is used outside its 'async with' block")
        return self._client

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            props = message.properties
            received = Received(
                topic=str(message.topic),
                attributes=dict(getattr(props, "UserProperty", None) or ()),
                payload=bytes(message.payload),
                correlation_data=getattr(props, "CorrelationData", None),
            )
            for topic_filter, queue in self._queues.items():
                if message.topic.matches(topic_filter):
                    queue.put_nowait(received)
