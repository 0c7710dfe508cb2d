"""A plain MQTT v5 client playing the MES in tests: it builds CloudEvent user properties
by hand and uses no microdcs code, so the tests check the wire contract itself."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from tests.brokers import login


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    content_type: str | None
    correlation_data: bytes | None
    expiry: int | None
    payload_format: int | None
    response_topic: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return orjson.loads(self.payload)

    @property
    def structured(self) -> bool:
        """A structured-mode CloudEvent (the whole event is the JSON payload)."""
        return (self.content_type or "").startswith("application/cloudevents")

    def ce_attributes(self) -> dict[str, Any]:
        """The CloudEvent attributes in either mode: the JSON event's members without the
        data (structured), else the User Properties (binary)."""
        if not self.structured:
            return dict(self.attributes)
        event = self.json()
        return {k: v for k, v in event.items() if k not in ("data", "data_base64")}


def _received(message: aiomqtt.Message) -> Received:
    props = message.properties
    return Received(
        topic=str(message.topic),
        payload=bytes(message.payload),  # type: ignore[arg-type]
        retain=message.retain,
        content_type=getattr(props, "ContentType", None),
        correlation_data=getattr(props, "CorrelationData", None),
        expiry=getattr(props, "MessageExpiryInterval", None),
        payload_format=getattr(props, "PayloadFormatIndicator", None),
        response_topic=getattr(props, "ResponseTopic", None),
        attributes=dict(getattr(props, "UserProperty", []) or []),
    )


def ce_properties(
    ce_type: str,
    *,
    subject: str | None = None,
    content_type: str | None = "application/json",
    response_topic: str | None = None,
    correlation_data: bytes | None = None,
    event_id: str | None = None,
    source: str = "mes/test",
    extra: dict[str, str] | None = None,
) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    attrs = [
        ("specversion", "1.0"),
        ("id", event_id or str(uuid.uuid4())),
        ("source", source),
        ("type", ce_type),
    ]
    if subject is not None:
        attrs.append(("subject", subject))
    attrs += list((extra or {}).items())
    props.UserProperty = attrs
    if content_type:
        props.ContentType = content_type
    if response_topic:
        props.ResponseTopic = response_topic
    if correlation_data is not None:
        props.CorrelationData = correlation_data
    return props


class MesClient:
    """``async with MesClient(port) as mes``: request/response and event collection."""

    def __init__(
        self,
        port: int,
        *,
        client_id: str | None = None,
        credentials: tuple[str | None, str | None] | None = None,
    ) -> None:
        self.response_topic = f"mes/{uuid.uuid4().hex}/responses"
        username, password = credentials or login()
        self._client = aiomqtt.Client(
            "127.0.0.1",
            port,
            identifier=client_id or f"mes-{uuid.uuid4().hex[:8]}",
            protocol=aiomqtt.ProtocolVersion.V5,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            username=username,
            password=password,
        )
        self._waiting: dict[bytes, asyncio.Future[Received]] = {}
        self._streams: list[tuple[str, asyncio.Queue[Received]]] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        await self._stack.enter_async_context(self._client)
        group = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._reader = group.create_task(self._read())
        await self._client.subscribe(self.response_topic, qos=1)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._reader.cancel()
        await self._stack.__aexit__(et, e, tb)

    async def _read(self) -> None:
        async for message in self._client.messages:
            item = _received(message)
            if item.topic == self.response_topic and item.correlation_data in self._waiting:
                future = self._waiting.pop(item.correlation_data)  # type: ignore[arg-type]
                if not future.done():
                    future.set_result(item)
                continue
            for pattern, queue in self._streams:
                if aiomqtt.Topic(item.topic).matches(pattern):
                    queue.put_nowait(item)

    async def watch(self, pattern: str) -> asyncio.Queue[Received]:
        """Subscribe and return a queue of messages matching ``pattern``."""
        queue: asyncio.Queue[Received] = asyncio.Queue()
        self._streams.append((pattern, queue))
        await self._client.subscribe(pattern, options=SubscribeOptions(qos=1))
        return queue

    async def publish(
        self, topic: str, payload: bytes, properties: Properties | None = None, *, qos: int = 1
    ) -> None:
        await self._client.publish(topic, payload, qos=qos, properties=properties)

    async def request(
        self,
        topic: str,
        ce_type: str,
        data: Any = None,
        *,
        payload: bytes | None = None,
        correlation_data: bytes | None = None,
        timeout: float = 5.0,
        **ce: Any,
    ) -> Received:
        """Publish a binary-mode CloudEvent request and await its response."""
        correlation = correlation_data if correlation_data is not None else uuid.uuid4().bytes
        body = payload if payload is not None else orjson.dumps(data)
        props = ce_properties(
            ce_type, response_topic=self.response_topic, correlation_data=correlation, **ce
        )
        future: asyncio.Future[Received] = asyncio.get_running_loop().create_future()
        self._waiting[correlation] = future
        await self._client.publish(topic, body, qos=1, properties=props)
        return await asyncio.wait_for(future, timeout)


async def next_message(queue: asyncio.Queue[Received], timeout: float = 5.0) -> Received:
    return await asyncio.wait_for(queue.get(), timeout)
