"""Issue 14, second part: CONNACK limits, sessions, QoS 2 and the Will, byte by byte.

Scripted broker conversations (the harness of ``test_mqtt_conformance``): each test is
named after the normative statement of MQTT v5 it checks.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from functools import partial
from pathlib import Path

import pytest

from microdcs.app.config import load_config
from microdcs.app.devstack import LocalMosquitto
from microdcs.core.errors import ConfigurationError
from microdcs.examples.greeting import GREETING_TYPE
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient, RetainUnavailableError
from microdcs.transports.mqtt.options import client_options
from microdcs.transports.mqtt.outbox import Outbox
from microdcs.transports.mqtt.outlets import retained_value
from tests import brokers
from tests.conftest import make_config, running
from tests.integration.test_mqtt_conformance import (
    _U16,
    _U32,
    Conversation,
    ScriptedBroker,
    connack,
    connect,
    make_client,
    packet,
    scripted_broker,
    section,
    utf8,
    wait_for,
)
from tests.mesclient import MesClient


def max_qos(value: int) -> bytes:
    return bytes((codec.MAXIMUM_QOS, value))


def retain_available(value: int) -> bytes:
    return bytes((codec.RETAIN_AVAILABLE, value))


def session_present(*props: bytes) -> bytes:
    """A successful CONNACK with Session Present 1."""
    return packet(0x20, b"\x01\x00" + section(*props))


def publish_qos2(topic: str, payload: bytes, packet_id: int, *, dup: bool = False) -> bytes:
    head = utf8(topic) + _U16.pack(packet_id)
    return packet(0x34 | (0x08 if dup else 0), head + section() + payload)


def publish_qos1(topic: str, payload: bytes, packet_id: int) -> bytes:
    return packet(0x32, utf8(topic) + _U16.pack(packet_id) + section() + payload)


def pubrel(packet_id: int) -> bytes:
    return packet(0x62, _U16.pack(packet_id))


def decoded(sent: codec.Packet) -> codec.Publish:
    return codec.decode_publish(sent.flags, sent.body, sent.size)


async def no_packet(conversation: Conversation, seconds: float = 0.3) -> None:
    """Nothing more from the client for a while."""
    with pytest.raises(TimeoutError):
        await conversation.next(timeout=seconds)


async def reconnect(
    broker: ScriptedBroker, client: MqttClient, old: Conversation, answer: bytes
) -> Conversation:
    old.writer.close()  # the broker drops the connection
    await client.wait_closed()
    conversation, _ = await connect(broker, client, answer)
    return conversation


# -- Maximum QoS -----------------------------------------------------------------------------
async def test_maximum_qos_0_turns_qos_1_publishes_into_qos_0_MQTT_3_2_2_11() -> None:
    """With Maximum QoS 0 no QoS 1 PUBLISH leaves: it goes out at QoS 0, its caller is
    released at once (no PUBACK will come), and the downgrade is counted and warned once."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        failures: list[str] = []
        client.on_publish_failure = failures.append
        conversation, _ = await connect(broker, client, connack(0, max_qos(0)))
        acked: list[int] = []
        for n in range(2):
            client.publish(f"t/{n}", b"x", b"\x00", qos=1, on_ack=partial(acked.append, n))
        for n in range(2):
            sent = await conversation.expect(codec.PUBLISH)
            assert (sent.flags >> 1) & 0x03 == 0
            assert decoded(sent).topic == f"t/{n}" and decoded(sent).payload == b"x"
        assert acked == [0, 1] and client.pending_acks == 0
        assert client.downgraded_publishes == 2
        assert failures == ["publish_qos_downgraded"] * 2
        assert client.connected


async def test_maximum_qos_0_is_warned_once_per_connection_MQTT_3_2_2_11(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with scripted_broker() as broker:
        client = make_client(broker)
        conversation, _ = await connect(broker, client, connack(0, max_qos(0)))
        with caplog.at_level(logging.WARNING):
            for _ in range(5):
                client.publish("t/x", b"x", b"\x00", qos=1)
            await conversation.expect(codec.PUBLISH)
        lines = [r for r in caplog.records if "Maximum QoS is 0" in r.getMessage()]
        assert len(lines) == 1


async def test_publishes_queued_while_down_follow_the_new_maximum_qos_MQTT_3_2_2_11() -> None:
    """A QoS 1 publish queued while disconnected leaves at QoS 0 once the broker's
    CONNACK says Maximum QoS 0, without a packet identifier."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        acked: list[int] = []
        client.publish("t/queued", b"q", b"\x00", qos=1, on_ack=lambda: acked.append(1))
        assert client.pending_acks == 1
        conversation, _ = await connect(broker, client, connack(0, max_qos(0)))
        sent = await conversation.expect(codec.PUBLISH)
        assert (sent.flags >> 1) & 0x03 == 0
        message = decoded(sent)
        assert (message.topic, message.payload, message.packet_id) == ("t/queued", b"q", 0)
        assert acked == [1] and client.pending_acks == 0


async def test_subscribe_asks_no_more_than_the_maximum_qos_MQTT_3_2_2_10() -> None:
    """The broker would grant at most its Maximum QoS (MQTT-3.2.2-10); the client asks
    for no more, so the granted QoS is what it asked."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        conversation, _ = await connect(broker, client, connack(0, max_qos(0)))
        subscribing = asyncio.ensure_future(client.subscribe([("a/#", 1), ("b/#", 0)]))
        sub = await conversation.expect(codec.SUBSCRIBE)
        # packet id, property length 0, then (filter, options) pairs
        body = sub.body[3:]
        assert body == utf8("a/#") + b"\x00" + utf8("b/#") + b"\x00"
        await conversation.send(packet(0x90, sub.body[:2] + section() + b"\x00\x00"))
        assert await subscribing == [0, 0]


async def test_maximum_qos_1_keeps_qos_1_MQTT_3_2_2_9() -> None:
    async with scripted_broker() as broker:
        client = make_client(broker)
        conversation, _ = await connect(broker, client, connack(0, max_qos(1)))
        client.publish("t/x", b"x", b"\x00", qos=1)
        sent = await conversation.expect(codec.PUBLISH)
        assert (sent.flags >> 1) & 0x03 == 1 and client.pending_acks == 1


# -- Retain Available ------------------------------------------------------------------------
async def test_no_retained_publish_to_a_broker_without_retain_MQTT_3_2_2_14() -> None:
    """Retain Available 0: a retained PUBLISH is refused before sending (its caller told a
    RetainUnavailableError, counted); a plain one still goes out."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        failures: list[str] = []
        client.on_publish_failure = failures.append
        conversation, _ = await connect(broker, client, connack(0, retain_available(0)))
        assert not client.retain_available
        errors: list[Exception] = []
        client.publish("t/state", b"s", b"\x00", qos=1, retain=True, on_error=errors.append)
        client.publish("t/state", b"s", b"\x00", qos=0, retain=True, on_error=errors.append)
        assert [type(e) for e in errors] == [RetainUnavailableError] * 2
        assert "Retain Available 0" in str(errors[0])
        assert client.retain_refused_publishes == 2
        assert failures == ["retain_unavailable"] * 2
        client.publish("t/plain", b"p", b"\x00", qos=1)
        sent = await conversation.expect(codec.PUBLISH)
        assert decoded(sent).topic == "t/plain" and not sent.flags & 0x01
        assert client.pending_acks == 1


async def test_retained_state_through_the_outbox_fails_at_once_MQTT_3_2_2_14() -> None:
    """The publisher's path (Outbox.publish_retained / delete_retained) raises at once:
    the error is an unavailable one, so the publisher backs off and retries."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        conversation, _ = await connect(broker, client, connack(0, retain_available(0)))
        outbox = Outbox()
        outbox.client = client
        with pytest.raises(RetainUnavailableError) as refused:
            outbox.publish_retained("jobs/state", b"{}")
        assert refused.value.kind == "retain_unavailable"
        with pytest.raises(RetainUnavailableError):
            outbox.delete_retained("jobs/state")
        await no_packet(conversation)
        assert client.pending_acks == 0


async def test_retained_publish_queued_while_down_is_refused_on_connect_MQTT_3_2_2_14() -> None:
    async with scripted_broker() as broker:
        client = make_client(broker)
        errors: list[Exception] = []
        client.publish("t/state", b"s", b"\x00", qos=1, retain=True, on_error=errors.append)
        client.publish("t/plain", b"p", b"\x00", qos=1)
        conversation, _ = await connect(broker, client, connack(0, retain_available(0)))
        sent = await conversation.expect(codec.PUBLISH)
        assert decoded(sent).topic == "t/plain"
        assert [type(e) for e in errors] == [RetainUnavailableError]
        await no_packet(conversation)


async def test_retain_available_again_on_the_next_connection_MQTT_3_2_2_14() -> None:
    """The limit belongs to one connection: without the property retain is available."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        first, _ = await connect(broker, client, connack(0, retain_available(0)))
        assert not client.retain_available
        second = await reconnect(broker, client, first, connack())
        assert client.retain_available
        client.publish("t/state", b"s", b"\x00", qos=1, retain=True)
        sent = await second.expect(codec.PUBLISH)
        assert sent.flags & 0x01


# -- Session Present -------------------------------------------------------------------------
async def test_session_present_resends_unacknowledged_publishes_with_dup_MQTT_4_4_0_1() -> None:
    """Session kept: the unacknowledged PUBLISH goes out again with its original packet
    identifier and DUP set."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        first, _ = await connect(broker, client, connack())
        client.publish("t/a", b"1", b"\x00", qos=1)
        original = await first.expect(codec.PUBLISH)
        second = await reconnect(broker, client, first, session_present())
        again = await second.expect(codec.PUBLISH)
        assert again.flags & 0x08  # DUP
        assert decoded(again).packet_id == decoded(original).packet_id
        assert decoded(again).payload == b"1"


async def test_no_session_sends_unacknowledged_publishes_as_new_ones_MQTT_3_2_2_4() -> None:
    """Session Present 0 after a reconnect: the broker holds none of our state, so the
    unacknowledged publishes are new messages there: DUP clear (MQTT-3.3.1-1: DUP only
    marks a re-delivery) and new packet identifiers, still in their order."""
    async with scripted_broker() as broker:
        client = make_client(broker)
        first, _ = await connect(broker, client, connack())
        acked: list[str] = []
        for name in ("a", "b"):
            client.publish(
                f"t/{name}", name.encode(), b"\x00", qos=1, on_ack=partial(acked.append, name)
            )
        old_ids = [decoded(await first.expect(codec.PUBLISH)).packet_id for _ in range(2)]
        second = await reconnect(broker, client, first, connack())  # Session Present 0
        resent = [await second.expect(codec.PUBLISH) for _ in range(2)]
        assert [decoded(p).topic for p in resent] == ["t/a", "t/b"]
        assert all(not p.flags & 0x08 for p in resent)
        new_ids = [decoded(p).packet_id for p in resent]
        assert not set(new_ids) & set(old_ids) and len(set(new_ids)) == 2
        assert client.renumbered_publishes == 2
        for packet_id in new_ids:
            await second.send(packet(0x40, _U16.pack(packet_id)))
        await wait_for(lambda: acked == ["a", "b"])
        assert client.pending_acks == 0


async def test_no_puback_on_a_new_session_for_a_message_of_the_old_one_MQTT_4_4_0_2() -> None:
    """A message received on the old session and acknowledged by the application only
    after the reconnect is not acknowledged on the new session: that packet id means
    nothing (or something else) there."""
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received)
        first, _ = await connect(broker, client, connack())
        await first.send(publish_qos1("t/req", b"r", 7))
        await wait_for(lambda: len(received) == 1)
        epoch = client.epoch
        second = await reconnect(broker, client, first, connack())
        client.ack(7, epoch)
        await no_packet(second)
        # The new session's own message 7 is acknowledged normally.
        await second.send(publish_qos1("t/req2", b"s", 7))
        await wait_for(lambda: len(received) == 2)
        client.ack(7, client.epoch)
        ack = await second.expect(codec.PUBACK)
        assert ack.body == _U16.pack(7)


# -- QoS 2 inbound ---------------------------------------------------------------------------
async def test_qos2_publish_is_answered_with_pubrec_not_puback_MQTT_4_3_3_8() -> None:
    """PUBLISH QoS 2 -> (application acknowledges) PUBREC; PUBREL -> PUBCOMP."""
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received)
        conversation, _ = await connect(broker, client, connack())
        await conversation.send(publish_qos2("t/q2", b"once", 9))
        await wait_for(lambda: len(received) == 1)
        assert received[0].qos == 2 and received[0].packet_id == 9
        await no_packet(conversation, 0.2)  # nothing before the application acknowledges
        client.ack(9, client.epoch)
        rec = await conversation.expect(codec.PUBREC)
        assert rec.body == _U16.pack(9)
        await conversation.send(pubrel(9))
        comp = await conversation.expect(codec.PUBCOMP)
        assert comp.body == _U16.pack(9)  # reason Success


async def test_qos2_resent_before_pubrel_is_delivered_once_MQTT_4_3_3_9() -> None:
    """A re-sent (DUP) QoS 2 PUBLISH with the same packet id before PUBREL is not
    delivered again; after PUBREC it is answered with PUBREC again."""
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received)
        conversation, _ = await connect(broker, client, connack())
        await conversation.send(publish_qos2("t/q2", b"once", 4))
        await conversation.send(publish_qos2("t/q2", b"once", 4, dup=True))  # before PUBREC
        await wait_for(lambda: len(received) == 1)
        client.ack(4, client.epoch)
        await conversation.expect(codec.PUBREC)
        await conversation.send(publish_qos2("t/q2", b"once", 4, dup=True))  # after PUBREC
        again = await conversation.expect(codec.PUBREC)
        assert again.body == _U16.pack(4)
        await conversation.send(pubrel(4))
        await conversation.expect(codec.PUBCOMP)
        await asyncio.sleep(0.1)
        assert len(received) == 1


async def test_qos2_packet_id_after_pubcomp_is_a_new_message_MQTT_4_3_3_12() -> None:
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received)
        conversation, _ = await connect(broker, client, connack())
        for count, payload in enumerate((b"first", b"second"), start=1):
            await conversation.send(publish_qos2("t/q2", payload, 5))
            await wait_for(partial(lambda n: len(received) == n, count))
            client.ack(5, client.epoch)
            await conversation.expect(codec.PUBREC)
            await conversation.send(pubrel(5))
            await conversation.expect(codec.PUBCOMP)
        assert [m.payload for m in received] == [b"first", b"second"]


async def test_qos2_state_survives_a_reconnect_with_session_present_MQTT_4_4_0_1() -> None:
    """The broker re-sends the unreleased QoS 2 PUBLISH on the kept session: it is not
    delivered again, and the application's acknowledgement (made after the reconnect)
    sends the PUBREC on the new connection."""
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received)
        first, _ = await connect(broker, client, connack())
        await first.send(publish_qos2("t/q2", b"once", 11))
        await wait_for(lambda: len(received) == 1)
        epoch = client.epoch
        second = await reconnect(broker, client, first, session_present())
        await second.send(publish_qos2("t/q2", b"once", 11, dup=True))
        await no_packet(second, 0.2)
        client.ack(11, epoch)
        rec = await second.expect(codec.PUBREC)
        assert rec.body == _U16.pack(11)
        await second.send(pubrel(11))
        await second.expect(codec.PUBCOMP)
        assert len(received) == 1


async def test_unknown_pubrel_is_completed_with_packet_id_not_found_section_3_7_2_1() -> None:
    async with scripted_broker() as broker:
        client = make_client(broker)
        conversation, _ = await connect(broker, client, connack())
        await conversation.send(pubrel(77))
        comp = await conversation.expect(codec.PUBCOMP)
        assert comp.body == _U16.pack(77) + b"\x92"
        assert client.connected


async def test_publish_with_qos_3_is_a_malformed_packet_MQTT_3_3_1_4() -> None:
    """QoS 3 (both QoS bits set): DISCONNECT with 0x81 Malformed Packet, then close."""
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received)
        conversation, _ = await connect(broker, client, connack())
        await conversation.send(packet(0x36, utf8("t/x") + _U16.pack(1) + section() + b"x"))
        refusal = await conversation.expect(codec.DISCONNECT)
        assert refusal.body[:1] == b"\x81"
        assert await conversation.next() is None
        assert received == []


# -- Will ------------------------------------------------------------------------------------
def connect_payload(connect_packet: codec.Packet) -> tuple[int, bytes]:
    """(connect flags, the payload after the CONNECT properties)."""
    body = connect_packet.body
    pos = 2 + ((body[0] << 8) | body[1]) + 1  # protocol name, version
    flags = body[pos]
    _, end = codec.decode_properties(body, pos + 3, len(body))
    return flags, body[end:]


async def test_will_is_encoded_in_connect_MQTT_3_1_2_8_section_3_1_3_2() -> None:
    """Will Flag, Will QoS and Will Retain in the flags (MQTT-3.1.2-9, -14, -15); in the
    payload after the client id: Will Properties with the Will Delay Interval, the Will
    Topic and the Will Payload (MQTT-3.1.3-2)."""
    async with scripted_broker() as broker:
        will = codec.WillMessage("plant/r1/status", b"offline", qos=1, retain=True, delay=5)
        client = make_client(broker, will=will)
        _, connect_packet = await connect(broker, client, connack())
        flags, payload = connect_payload(connect_packet)
        assert flags & 0x04 and (flags >> 3) & 0x03 == 1 and flags & 0x20
        expected = utf8("conformance") + section(bytes((codec.WILL_DELAY,)) + _U32.pack(5))
        expected += utf8("plant/r1/status") + _U16.pack(7) + b"offline"
        assert payload == expected


async def test_no_will_unless_configured_MQTT_3_1_2_11() -> None:
    async with scripted_broker() as broker:
        client = make_client(broker)
        _, connect_packet = await connect(broker, client, connack())
        flags, payload = connect_payload(connect_packet)
        assert not flags & 0x3C  # Will Flag, Will QoS 0 (MQTT-3.1.2-11), Will Retain 0
        assert payload == utf8("conformance")


# -- Will, against Mosquitto -----------------------------------------------------------------
async def _subscriber(port: int, topic: str, received: list[codec.Publish]) -> MqttClient:
    username, password = brokers.login()
    client = MqttClient(
        ClientOptions(
            host="127.0.0.1",
            port=port,
            client_id=f"watch-{uuid.uuid4().hex[:8]}",
            username=username,
            password=password,
        ),
        received.append,
    )
    await client.connect()
    assert await client.subscribe([(topic, 1)]) == [1]
    return client


def _willing(port: int, topic: str, *, delay: int = 0, client_id: str = "") -> MqttClient:
    will = codec.WillMessage(topic, b"offline", qos=1, delay=delay)
    username, password = brokers.login()
    options = ClientOptions(
        host="127.0.0.1",
        port=port,
        username=username,
        password=password,
        client_id=client_id or f"will-{uuid.uuid4().hex[:8]}",
        will=will,
        session_expiry=30,
    )
    return MqttClient(options, lambda message: None)


async def test_will_is_published_when_the_connection_drops_MQTT_3_1_2_8(
    mosquitto: LocalMosquitto,
) -> None:
    """The replica's socket closes without DISCONNECT: the subscriber gets the Will."""
    topic = f"microdcs/status/{uuid.uuid4().hex}"
    received: list[codec.Publish] = []
    watcher = await _subscriber(mosquitto.port, topic, received)
    replica = _willing(mosquitto.port, topic)
    try:
        await replica.connect()
        replica._abort()  # the process dies: no DISCONNECT
        await wait_for(lambda: len(received) == 1)
        assert (received[0].topic, received[0].payload) == (topic, b"offline")
    finally:
        await watcher.disconnect(end_session=True)


async def test_no_will_after_a_normal_disconnect_MQTT_3_1_2_10(mosquitto: LocalMosquitto) -> None:
    topic = f"microdcs/status/{uuid.uuid4().hex}"
    received: list[codec.Publish] = []
    watcher = await _subscriber(mosquitto.port, topic, received)
    replica = _willing(mosquitto.port, topic)
    try:
        await replica.connect()
        await replica.disconnect(end_session=True)
        await asyncio.sleep(0.5)
        assert received == []
    finally:
        await watcher.disconnect(end_session=True)


async def test_reconnect_within_the_will_delay_cancels_the_will_MQTT_3_1_3_9(
    mosquitto: LocalMosquitto,
) -> None:
    topic = f"microdcs/status/{uuid.uuid4().hex}"
    received: list[codec.Publish] = []
    watcher = await _subscriber(mosquitto.port, topic, received)
    replica = _willing(mosquitto.port, topic, delay=1)
    try:
        await replica.connect()
        replica._abort()
        await replica.wait_closed()
        await replica.connect()  # same session, within the Will Delay Interval
        await asyncio.sleep(1.5)
        assert received == []
        replica._abort()  # and now it stays away: the Will comes after the delay
        await wait_for(lambda: len(received) == 1, timeout=4)
    finally:
        await watcher.disconnect(end_session=True)


# -- Will settings ---------------------------------------------------------------------------
def test_will_settings_build_the_will_of_each_client() -> None:
    config = load_config(
        {
            "APP_MQTT_WILL_TOPIC": "microdcs/status/{client_id}",
            "APP_MQTT_WILL_RETAIN": "true",
            "APP_MQTT_WILL_DELAY": "5",
        }
    )
    assert client_options(config.mqtt, "r1").will == codec.WillMessage(
        "microdcs/status/r1", b"offline", qos=1, retain=True, delay=5
    )
    assert client_options(load_config({}).mqtt, "r1").will is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("APP_MQTT_WILL_QOS", "3"),
        ("APP_MQTT_WILL_TOPIC", "status/#"),
        ("APP_MQTT_WILL_DELAY", "-1"),
    ],
)
def test_invalid_will_settings_are_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_config({"APP_MQTT_WILL_TOPIC": "status/r1", variable: value})


async def test_retained_state_probe_connects_without_the_replicas_will() -> None:
    """The publisher's read-back connection must not carry the replica's Will: its end
    would otherwise announce the replica offline (or its own drop would)."""
    async with scripted_broker() as broker:
        options = ClientOptions(
            host="127.0.0.1",
            port=broker.port,
            client_id="r1",
            will=codec.WillMessage("microdcs/status/r1", b"offline"),
        )
        probing = asyncio.ensure_future(retained_value(options, "jobs/state"))
        conversation = await broker.accept()
        connect_packet = await conversation.expect(codec.CONNECT)
        flags, _ = connect_payload(connect_packet)
        assert not flags & 0x04
        probing.cancel()
        await asyncio.gather(probing, return_exceptions=True)


# -- a broker that lost the session, end to end ----------------------------------------------
async def test_runtime_subscribes_again_when_the_broker_lost_its_session_MQTT_3_2_2_4(
    tmp_path: Path, redis_server: object, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker crashes and comes back without its persisted state: the replica's next
    CONNACK says Session Present 0, its subscriptions are made again, and requests are
    served as before."""
    with LocalMosquitto(tmp_path / "mosquitto") as broker:
        config = make_config(broker.port, redis_server)  # type: ignore[arg-type]
        topic = f"{config.greeting_prefix}/plant1/commands"
        with caplog.at_level(logging.INFO, logger="microdcs.transports.mqtt.handler"):
            async with running(config) as runtime:
                async with MesClient(broker.port) as mes:
                    reply = await mes.request(topic, GREETING_TYPE, {"name": "before"})
                    assert reply.json()["name"] == "before"
                broker.kill()
                for stored in (tmp_path / "mosquitto" / "data").glob("*"):
                    stored.unlink()
                await wait_for(lambda: not runtime.mqtt.connected.is_set())
                broker.start()
                async with asyncio.timeout(15):
                    await runtime.mqtt.connected.wait()
                async with MesClient(broker.port) as mes:
                    reply = await mes.request(topic, GREETING_TYPE, {"name": "after"})
                    assert reply.json()["name"] == "after"
        sessions = [r.getMessage() for r in caplog.records if "session present" in r.getMessage()]
        assert "session present: False" in sessions[-1] and len(sessions) >= 2


async def test_qos2_with_a_connack_without_session_is_of_the_new_session_MQTT_4_3_3_8() -> None:
    """A QoS 2 PUBLISH in the same read as a CONNACK with Session Present 0 (the old
    session's state forgotten first): acknowledged with PUBREC, not PUBACK, and a copy
    of the old session's unreleased message with the same id is a new message."""
    async with scripted_broker() as broker:
        received: list[codec.Publish] = []
        client = make_client(broker, received)
        first, _ = await connect(broker, client, connack())
        await first.send(publish_qos2("t/q2", b"old", 3))
        await wait_for(lambda: len(received) == 1)
        first.writer.close()
        await client.wait_closed()
        connecting = asyncio.ensure_future(client.connect())
        second = await broker.accept()
        await second.expect(codec.CONNECT)
        await second.send(connack() + publish_qos2("t/q2", b"new", 3))
        await connecting
        await wait_for(lambda: len(received) == 2)
        assert received[1].payload == b"new"
        client.ack(3, client.epoch)
        rec = await second.expect(codec.PUBREC)
        assert rec.body == _U16.pack(3)


# -- a publish the broker disconnects on -----------------------------------------------------
async def test_publishes_sent_after_a_refused_one_are_not_dropped_with_it() -> None:
    """The broker closes the connection on the first of two publishes, every time: after
    ``publish_attempts`` connections that one is dropped, the second (never looked at by
    the broker) goes out again on the next connection and is acknowledged."""
    async with scripted_broker() as broker:
        client = make_client(broker, publish_attempts=2)
        done: list[str] = []
        conversation, _ = await connect(broker, client, connack())
        for name in ("bad", "good"):
            client.publish(f"t/{name}", b"x", b"\x00", qos=1, on_ack=partial(done.append, name))
        for _ in range(2):
            assert [decoded(await conversation.expect(codec.PUBLISH)).topic for _ in range(2)] == [
                "t/bad",
                "t/good",
            ]
            conversation = await reconnect(broker, client, conversation, session_present())
        good = await conversation.expect(codec.PUBLISH)
        assert decoded(good).topic == "t/good"
        assert done == ["bad"] and client.abandoned_publishes == 1
        await conversation.send(packet(0x40, _U16.pack(decoded(good).packet_id)))
        await wait_for(lambda: done == ["bad", "good"])
