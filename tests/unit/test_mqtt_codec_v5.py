"""Codec parts of issue 14's second step: AUTH, Will, QoS 2 acks, re-framed publishes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microdcs.transports.mqtt import codec


def _publish(qos: int, packet_id: int, *, dup: bool = False, retain: bool = False) -> bytes:
    props = codec.encode_publish_properties(content_type="application/json")
    return codec.encode_publish(
        "plant/a/b", b"payload", props, qos=qos, packet_id=packet_id, dup=dup, retain=retain
    )


def _frame(packet: bytes) -> codec.Packet:
    (framed,) = codec.PacketReader(1 << 20).feed(packet)
    return framed


def _decode(packet: bytes) -> codec.Publish:
    framed = _frame(packet)
    return codec.decode_publish(framed.flags, framed.body, framed.size)


@given(st.integers(1, 0xFFFF), st.integers(1, 0xFFFF), st.booleans())
def test_with_packet_id_replaces_the_id_and_clears_dup(old: int, new: int, retain: bool) -> None:
    message = _decode(codec.with_packet_id(_publish(1, old, dup=True, retain=retain), new))
    assert (message.packet_id, message.dup, message.retain, message.qos) == (new, False, retain, 1)
    assert (message.topic, message.payload, message.content_type) == (
        "plant/a/b",
        b"payload",
        "application/json",
    )


@pytest.mark.parametrize("size", [10, 200, 20_000])
def test_as_qos0_drops_the_packet_id_and_keeps_the_rest(size: int) -> None:
    props = codec.encode_publish_properties(content_type="text/plain")
    packet = codec.encode_publish("t", b"x" * size, props, qos=1, packet_id=513, retain=True)
    downgraded = codec.as_qos0(codec.set_dup(packet))
    assert downgraded == codec.encode_publish("t", b"x" * size, props, qos=0, retain=True)
    message = _decode(downgraded)
    assert (message.qos, message.packet_id, message.dup, message.retain) == (0, 0, False, True)


def test_qos_3_publish_is_a_protocol_error_with_malformed_packet_reason() -> None:
    with pytest.raises(codec.ProtocolError) as error:
        codec.decode_publish(0x06, b"\x00\x01t\x00\x01\x00", 7)
    assert error.value.reason_code == 0x81


def test_pubrec_and_pubcomp_bytes() -> None:
    assert codec.encode_pubrec(0x0102) == b"\x50\x02\x01\x02"
    assert codec.encode_pubcomp(0x0102) == b"\x70\x02\x01\x02"
    assert codec.encode_pubcomp(0x0102, 0x92) == b"\x70\x03\x01\x02\x92"


def test_auth_round_trip() -> None:
    framed = _frame(codec.encode_auth(0x19, "K8S-SAT", b"token"))
    assert framed.kind == codec.AUTH and framed.flags == 0
    reason, props = codec.decode_auth(framed.body)
    assert reason == 0x19
    assert props == {codec.AUTHENTICATION_METHOD: "K8S-SAT", codec.AUTHENTICATION_DATA: b"token"}


def test_auth_without_a_body_is_success_section_3_15_2_1() -> None:
    assert codec.decode_auth(b"") == (0, {})
    assert codec.decode_auth(b"\x00") == (0, {})


def _connect_parts(packet: bytes) -> tuple[int, dict[int, object], bytes]:
    body = _frame(packet).body
    pos = 2 + ((body[0] << 8) | body[1]) + 1
    flags = body[pos]
    props, end = codec.decode_properties(body, pos + 3, len(body))
    return flags, props, body[end:]


def test_connect_carries_authentication_method_and_data_section_3_1_2_11_9() -> None:
    packet = codec.encode_connect(
        "c",
        clean_start=False,
        keepalive=30,
        session_expiry=10,
        receive_maximum=16,
        auth_method="K8S-SAT",
        auth_data=b"eyJhbGciOi",
    )
    _, props, _ = _connect_parts(packet)
    assert props[codec.AUTHENTICATION_METHOD] == "K8S-SAT"
    assert props[codec.AUTHENTICATION_DATA] == b"eyJhbGciOi"


def test_connect_with_a_will_and_no_delay_has_empty_will_properties() -> None:
    will = codec.WillMessage("s/r1", b"", qos=2)
    flags, _, payload = _connect_parts(
        codec.encode_connect(
            "c", clean_start=True, keepalive=30, session_expiry=0, receive_maximum=1, will=will
        )
    )
    assert flags == 0x02 | 0x04 | (2 << 3)
    assert payload == b"\x00\x01c" + b"\x00" + b"\x00\x04s/r1" + b"\x00\x00"


def test_will_qos_3_is_refused_MQTT_3_1_2_12() -> None:
    with pytest.raises(ValueError):
        codec.encode_connect(
            "c",
            clean_start=True,
            keepalive=30,
            session_expiry=0,
            receive_maximum=1,
            will=codec.WillMessage("s", qos=3),
        )
