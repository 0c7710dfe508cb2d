"""Issue 14: MQTT v5 conformance of our client, one scripted broker conversation each.

Like Mosquitto's own test suite, the broker here is a script: an asyncio server on a free
loopback port that reads what our client sends, answers with hand-crafted bytes and
asserts on the client's next packets. Each test is named after the normative statement
(or the specification section, where the statement is not numbered) it checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator

import pytest

from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import (
    ClientOptions,
    MqttClient,
    MqttConnectionError,
    PacketTooLargeError,
)

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def utf8(text: str) -> bytes:
    raw = text.encode()
    return _U16.pack(len(raw)) + raw


def packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + codec.encode_varint(len(body)) + body


def section(*props: bytes) -> bytes:
    """A property section: its length, then the properties."""
    body = b"".join(props)
    return codec.encode_varint(len(body)) + body


def connack(reason: int = 0, *props: bytes) -> bytes:
    return packet(0x20, bytes((0, reason)) + section(*props))


def publish(topic: str, payload: bytes, *props: bytes, packet_id: int = 0) -> bytes:
    qos = 1 if packet_id else 0
    head = utf8(topic) + (_U16.pack(packet_id) if qos else b"")
    return packet(0x30 | (qos << 1), head + section(*props) + payload)


def alias(value: int) -> bytes:
    return bytes((codec.TOPIC_ALIAS,)) + _U16.pack(value)


def reason_string(text: str) -> bytes:
    return bytes((codec.REASON_STRING,)) + utf8(text)


class Conversation:
    """One network connection of the client, seen from the scripted broker."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._framer = codec.PacketReader(1 << 20)
        self._packets: list[codec.Packet] = []

    async def next(self, timeout: float = 5.0) -> codec.Packet | None:
        """The client's next packet; ``None`` once the client has closed the connection."""
        async with asyncio.timeout(timeout):
            while not self._packets:
                data = await self.reader.read(65536)
                if not data:
                    return None
                self._packets.extend(self._framer.feed(data))
        return self._packets.pop(0)

    async def expect(self, kind: int, timeout: float = 5.0) -> codec.Packet:
        got = await self.next(timeout)
        assert got is not None, f"connection closed, expected packet type {kind}"
        assert got.kind == kind, f"expected packet type {kind}, got {got.kind}"
        return got

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


class ScriptedBroker:
    """Hands each new connection of the client to the test as a :class:`Conversation`."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[Conversation] = asyncio.Queue()
        self.port = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.connections.put(Conversation(reader, writer))

    async def accept(self, timeout: float = 5.0) -> Conversation:
        async with asyncio.timeout(timeout):
            return await self.connections.get()


@contextlib.asynccontextmanager
async def scripted_broker() -> AsyncIterator[ScriptedBroker]:
    broker = ScriptedBroker()
    server = await asyncio.start_server(broker._accept, "127.0.0.1", 0)
    broker.port = server.sockets[0].getsockname()[1]
    try:
        yield broker
    finally:
        server.close()
        while not broker.connections.empty():
            broker.connections.get_nowait().writer.close()


def make_client(
    broker: ScriptedBroker, received: list[codec.Publish] | None = None, **options: object
) -> MqttClient:
    sink = received if received is not None else []
    return MqttClient(
        ClientOptions(host="127.0.0.1", port=broker.port, client_id="conformance", **options),  # type: ignore[arg-type]
        sink.append,
    )


async def connect(
    broker: ScriptedBroker, client: MqttClient, answer: bytes
) -> tuple[Conversation, codec.Packet]:
    """Let ``client`` connect; the broker answers its CONNECT with ``answer``."""
    connecting = asyncio.ensure_future(client.connect())
    conversation = await broker.accept()
    connect_packet = await conversation.expect(codec.CONNECT)
    await conversation.send(answer)
    await connecting
    return conversation, connect_packet


def connect_properties(connect_packet: codec.Packet) -> dict[int, object]:
    body = connect_packet.body
    pos = 2 + ((body[0] << 8) | body[1]) + 4  # protocol name, version, flags, keep alive
    props, _ = codec.decode_properties(body, pos, len(body))
    return props


async def wait_for(condition: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


# -- Server Keep Alive ------------------------------------------------------------------------
async def test_server_keep_alive_replaces_the_client_keep_alive_MQTT_3_2_2_21() -> None:
    """With Keep Alive 30 of its own, the client pings and detects silence on the 1 s the
    broker asked for: a PINGREQ within the second, a drop once the broker stays silent."""
    async with scripted_broker() as broker:
        client = make_client(broker, keepalive=30)
        keep_alive = bytes((codec.SERVER_KEEP_ALIVE,)) + _U16.pack(1)
        conversation, _ = await connect(broker, client, connack(0, keep_alive))
        await conversation.expect(codec.PINGREQ, timeout=1.5)  # Keep Alive 30: after 15 s
        # The broker answers nothing: silent for 1.5 x Keep Alive, the client drops it.
        async with asyncio.timeout(4):
            await client.wait_closed()
        assert not client.connected
        assert client.keepalive == 1


# -- Maximum Packet Size ----------------------------------------------------------------------
async def test_publish_larger_than_the_maximum_packet_size_is_not_sent_MQTT_3_2_2_15() -> None:
    """A PUBLISH over the broker's Maximum Packet Size fails with a clear error, is counted,
    never reaches the broker, and the connection carries the next one."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        failures: list[str] = []
        client.on_publish_failure = failures.append
        limit = bytes((codec.MAXIMUM_PACKET_SIZE,)) + _U32.pack(100)
        conversation, _ = await connect(broker, client, connack(0, limit))
        errors: list[Exception] = []
        acked: list[int] = []
        for qos in (1, 0):
            client.publish("t/big", b"x" * 200, b"\x00", qos=qos, on_error=errors.append)
        # Without ``on_error`` the caller is released through ``on_ack``, as for a publish
        # abandoned after too many connections.
        client.publish("t/big", b"x" * 200, b"\x00", qos=1, on_ack=lambda: acked.append(1))
        assert len(errors) == 2 and acked == [1]
        for error in errors:
            assert isinstance(error, PacketTooLargeError)
            assert error.limit == 100 and error.size > 200
            assert "100 bytes" in str(error) and f"{error.size} bytes" in str(error)
        assert failures == ["publish_too_large"] * 3
        assert client.too_large_publishes == 3
        assert client.pending_acks == 0
        client.publish("t/small", b"ok", b"\x00", qos=1)
        sent = await conversation.expect(codec.PUBLISH)
        assert codec.decode_publish(sent.flags, sent.body, sent.size).topic == "t/small"
        assert sent.size + 2 <= 100
        assert client.connected


async def test_queued_publish_over_a_new_connections_limit_is_dropped_MQTT_3_2_2_15() -> None:
    """A publish queued while disconnected is checked against the limit of the connection
    it would go out on: over it, it is dropped and its caller told, not sent."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        errors: list[Exception] = []
        client.publish("t/big", b"x" * 200, b"\x00", qos=1, on_error=errors.append)
        client.publish("t/small", b"ok", b"\x00", qos=1)
        assert client.pending_acks == 2
        limit = bytes((codec.MAXIMUM_PACKET_SIZE,)) + _U32.pack(100)
        conversation, _ = await connect(broker, client, connack(0, limit))
        sent = await conversation.expect(codec.PUBLISH)
        assert codec.decode_publish(sent.flags, sent.body, sent.size).topic == "t/small"
        assert [type(e) for e in errors] == [PacketTooLargeError]
        assert client.pending_acks == 1 and client.connected


# -- Reason Strings ---------------------------------------------------------------------------
async def test_reason_string_of_a_refused_connection_is_logged_section_3_2_2_3_9(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with scripted_broker() as broker:
        client = make_client(broker)
        with caplog.at_level(logging.WARNING), pytest.raises(MqttConnectionError) as refused:
            await connect(broker, client, connack(0x87, reason_string("tenant over quota")))
        assert "tenant over quota" in str(refused.value)
        lines = [r.getMessage() for r in caplog.records if "tenant over quota" in r.getMessage()]
        assert len(lines) == 1 and "0x87" in lines[0]


async def test_reason_strings_of_failed_acks_and_disconnect_are_logged_section_3_4_2_2_2(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PUBACK (3.4.2.2.2), SUBACK (3.9.2.1.2) and DISCONNECT (3.14.2.2.3) with a failure
    reason code: each Reason String is logged once, with the code."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        conversation, _ = await connect(broker, client, connack())
        with caplog.at_level(logging.WARNING):
            subscribing = asyncio.ensure_future(client.subscribe([("t/#", 1)]))
            sub = await conversation.expect(codec.SUBSCRIBE)
            suback = sub.body[:2] + section(reason_string("acl: no t/#")) + b"\x87"
            await conversation.send(packet(0x90, suback))
            assert await subscribing == [0x87]

            client.publish("t/x", b"1", b"\x00", qos=1)
            pub = await conversation.expect(codec.PUBLISH)
            packet_id = codec.decode_publish(pub.flags, pub.body, pub.size).packet_id
            puback = _U16.pack(packet_id) + b"\x97" + section(reason_string("quota for t/x"))
            await conversation.send(packet(0x40, puback))
            await wait_for(lambda: client.rejected_publishes == 1)

            disconnect = b"\x98" + section(reason_string("administrative action"))
            await conversation.send(packet(0xE0, disconnect))
            await client.wait_closed()
        messages = [r.getMessage() for r in caplog.records]
        for text, code in (
            ("acl: no t/#", "0x87"),
            ("quota for t/x", "0x97"),
            ("administrative action", "0x98"),
        ):
            lines = [m for m in messages if text in m]
            assert len(lines) == 1, (text, messages)
            assert code in lines[0]


# -- Topic aliases ----------------------------------------------------------------------------
async def test_topic_alias_set_by_the_broker_names_later_publishes_section_3_3_2_3_4() -> None:
    """The client announces its Topic Alias Maximum (3.1.2.11.5); a PUBLISH with a topic and
    an alias sets it, one with an empty topic and that alias is delivered on that topic."""
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received, topic_alias_maximum=16)
        conversation, connect_packet = await connect(broker, client, connack())
        assert connect_properties(connect_packet)[codec.TOPIC_ALIAS_MAXIMUM] == 16
        await conversation.send(publish("plant/line1/state", b"a", alias(3)))
        await conversation.send(publish("", b"b", alias(3)))
        await conversation.send(publish("plant/line2/state", b"c", alias(3)))  # re-set
        await conversation.send(publish("", b"d", alias(3)))
        await wait_for(lambda: len(received) == 4)
        assert [(m.topic, m.payload) for m in received] == [
            ("plant/line1/state", b"a"),
            ("plant/line1/state", b"b"),
            ("plant/line2/state", b"c"),
            ("plant/line2/state", b"d"),
        ]
        assert client.connected


async def _assert_refused_with_0x94(conversation: Conversation, client: MqttClient) -> None:
    refusal = await conversation.expect(codec.DISCONNECT)
    assert refusal.body[:1] == b"\x94"  # Topic Alias invalid
    assert await conversation.next() is None  # and the client closed the connection
    async with asyncio.timeout(5):
        await client.wait_closed()


@pytest.mark.parametrize("value", [0, 17])
async def test_topic_alias_zero_or_above_the_maximum_is_refused_MQTT_3_3_2_8_MQTT_3_1_2_26(
    value: int,
) -> None:
    """Alias 0 (MQTT-3.3.2-8) or above the announced maximum (MQTT-3.1.2-26) is a Protocol
    Error: DISCONNECT with 0x94, and the message is not delivered."""
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received, topic_alias_maximum=16)
        conversation, _ = await connect(broker, client, connack())
        await conversation.send(publish("t/a", b"a", alias(value)))
        await _assert_refused_with_0x94(conversation, client)
        assert received == []


async def test_topic_alias_with_no_maximum_announced_is_refused_MQTT_3_1_2_27() -> None:
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received, topic_alias_maximum=0)
        conversation, connect_packet = await connect(broker, client, connack())
        assert codec.TOPIC_ALIAS_MAXIMUM not in connect_properties(connect_packet)
        await conversation.send(publish("t/a", b"a", alias(1)))
        await _assert_refused_with_0x94(conversation, client)
        assert received == []


async def test_topic_aliases_are_not_carried_to_a_new_connection_MQTT_3_3_2_7() -> None:
    """An alias set on one connection is unknown on the next: using it there is a Protocol
    Error (DISCONNECT 0x94), not a delivery on the old connection's topic."""
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received)
        first, _ = await connect(broker, client, connack())
        await first.send(publish("t/old", b"a", alias(1)))
        await wait_for(lambda: len(received) == 1)
        first.writer.close()  # the broker drops the connection
        await client.wait_closed()

        second, _ = await connect(broker, client, connack())
        await second.send(publish("", b"b", alias(1)))
        await _assert_refused_with_0x94(second, client)
        assert [m.topic for m in received] == ["t/old"]
