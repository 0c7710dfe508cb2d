"""MQTT-4.6.0-2: PUBACKs leave in the order the PUBLISHes were received.

The broker is a script (the harness of ``test_mqtt_conformance``): it hands the whole
MQTT transport three requests whose processing takes 0.6 s, 0 s and 0.3 s, so they finish
in the order 2, 3, 1, and records the packet identifiers of the PUBACKs on the wire.
"""

from __future__ import annotations

import asyncio
import json
import weakref

from microdcs.core.limits import LimitsConfig
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.options import MqttConfig
from microdcs.transports.replica import ReplicaOptions
from tests.integration.slow_processor import SLOW_TYPE, SlowProcessor
from tests.integration.test_mqtt_conformance import (
    Conversation,
    connack,
    packet,
    publish,
    scripted_broker,
    section,
    utf8,
)

_U16 = codec._U16


def request(n: int, seconds: float, packet_id: int) -> bytes:
    """A binary-mode CloudEvent PUBLISH (QoS 1) for the slow processor."""
    pairs = (("specversion", "1.0"), ("id", f"r{n}"), ("source", "mes"), ("type", SLOW_TYPE))
    props = [bytes((codec.CONTENT_TYPE,)) + utf8("application/json")]
    props += [bytes((codec.USER_PROPERTY,)) + utf8(k) + utf8(v) for k, v in pairs]
    body = json.dumps({"n": n, "seconds": seconds}).encode()
    return publish("test/slow/commands", body, *props, packet_id=packet_id)


def suback(subscribe_body: bytes) -> bytes:
    """Grant every filter of a SUBSCRIBE at QoS 1."""
    packet_id = subscribe_body[:2]
    pos = 2
    _, pos = codec.decode_properties(subscribe_body, pos, len(subscribe_body))
    count = 0
    while pos < len(subscribe_body):
        length = _U16.unpack_from(subscribe_body, pos)[0]
        pos += 2 + length + 1
        count += 1
    return packet(0x90, packet_id + section() + bytes([1] * count))


async def serve(conversation: Conversation, pubacks: list[int], want: int) -> None:
    """Answer the client's publishes (the responses) and record its PUBACKs."""
    while len(pubacks) < want:
        got = await conversation.next(timeout=10)
        assert got is not None, "the client closed the connection"
        if got.kind == codec.PUBLISH:
            sent = codec.decode_publish(got.flags, got.body, got.size)
            if sent.qos:
                await conversation.send(packet(0x40, _U16.pack(sent.packet_id) + b"\x00"))
        elif got.kind == codec.PUBACK:
            pubacks.append(codec.decode_ack(got.body)[0])


async def test_pubacks_leave_in_receipt_order_MQTT_4_6_0_2() -> None:
    async with scripted_broker() as broker:
        mqtt = MqttConfig(hostname="127.0.0.1", port=broker.port, keepalive=0)
        replica = ReplicaOptions(
            instance_id="ack-order",
            source="test",
            workers=4,
            shutdown_grace=0.5,
            limits=LimitsConfig(),
        )
        handler = MqttHandler(mqtt, replica)
        handler.bind(SlowProcessor(source="test"))
        shutdown = asyncio.Event()
        task = asyncio.create_task(handler.run(shutdown))
        try:
            conversation = await broker.accept()
            await conversation.expect(codec.CONNECT)
            await conversation.send(connack())
            subscribe = await conversation.expect(codec.SUBSCRIBE)
            await conversation.send(suback(subscribe.body))
            async with asyncio.timeout(5):
                await handler.connected.wait()
            await conversation.send(
                request(1, 0.6, 101) + request(2, 0.0, 102) + request(3, 0.3, 103)
            )
            pubacks: list[int] = []
            await serve(conversation, pubacks, 3)
            assert pubacks == [101, 102, 103]
            assert handler.inbox.unacknowledged == 0
        finally:
            shutdown.set()
            await asyncio.wait_for(task, 10)


class _Wire:
    """Records what would go out as PUBACKs (the order logic is pure)."""

    epoch = 2

    def __init__(self) -> None:
        self.acks: list[int] = []

    def ack(self, packet_id: int, epoch: int) -> None:
        if epoch == self.epoch:
            self.acks.append(packet_id)


def test_a_new_connection_starts_the_order_over() -> None:
    """What the old connection left unfinished holds back nothing on the new one."""
    from microdcs.transports.mqtt.inbox import _AckOrder, _Received

    def received(packet_id: int, epoch: int) -> _Received:
        message = codec.Publish("t", b"", 1, False, False, packet_id, 0)
        return _Received(message, epoch, 0.0)

    order = _AckOrder()
    wire = _Wire()
    stuck = received(7, 1)
    order.enter(stuck)
    fresh = [received(1, 2), received(2, 2)]
    for item in fresh:
        order.enter(item)
    order.finish(fresh[1], wire)  # type: ignore[arg-type]
    assert wire.acks == []
    order.finish(stuck, wire)  # type: ignore[arg-type]
    order.finish(fresh[0], wire)  # type: ignore[arg-type]
    assert wire.acks == [1, 2]
    assert len(order) == 0


async def test_a_message_right_behind_the_connack_is_acknowledged_on_that_connection() -> None:
    """A resumed session's messages may share the CONNACK's read; their PUBACK must go."""
    from tests.integration.test_mqtt_conformance import make_client

    async with scripted_broker() as broker:
        seen: list[tuple[int, int]] = []
        client = make_client(broker)
        client._on_message = lambda m: seen.append((m.packet_id, client.epoch))
        connecting = asyncio.ensure_future(client.connect())
        conversation = await broker.accept()
        await conversation.expect(codec.CONNECT)
        resumed = packet(0x20, bytes((1, 0)) + section())  # Session Present
        await conversation.send(resumed + publish("t/r", b"again", packet_id=9))
        await connecting
        assert seen == [(9, client.epoch)]
        client.ack(*seen[0])
        acked = await conversation.expect(codec.PUBACK)
        assert codec.decode_ack(acked.body)[0] == 9


def test_a_finished_message_waiting_for_an_earlier_one_is_not_kept() -> None:
    """Under overload thousands of finished messages wait behind a slow one: the PUBACK
    order keeps their packet ids, not the messages with their decoded events."""
    import gc

    from microdcs.transports.mqtt.inbox import _AckOrder, _Received

    class Event:  # stands in for the decoded CloudEvent; a weak reference tells if kept
        pass

    order = _AckOrder()
    wire = _Wire()
    slow = _Received(codec.Publish("t", b"", 1, False, False, 1, 0), 2, 0.0)
    order.enter(slow)
    event = Event()
    done = _Received(codec.Publish("t", b"x" * 1000, 1, False, False, 2, 0), 2, 0.0)
    done.event = event  # type: ignore[assignment]
    order.enter(done)
    order.finish(done, wire)  # type: ignore[arg-type]
    kept = weakref.ref(event)
    del done, event
    gc.collect()
    assert kept() is None
    assert len(order) == 2 and wire.acks == []
    order.finish(slow, wire)  # type: ignore[arg-type]
    assert wire.acks == [1, 2]


def test_workers_pause_at_twice_the_brokers_receive_maximum_of_unacknowledged_publishes() -> None:
    """Beyond the broker's window our publishes only wait in memory: the pause comes at
    twice it (Mosquitto's 1,000 -> 2,000), not at the configured 8,192."""
    from microdcs.transports.mqtt.inbox import unacked_limit

    assert unacked_limit(8192, 1000) == 2000
    assert unacked_limit(8192, 65535) == 8192  # a broker without a limit: the setting
    assert unacked_limit(100, 1000) == 100  # a lower setting wins
    assert unacked_limit(8192, 1) == 64  # a one-message window still lets a batch go
