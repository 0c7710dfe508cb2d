"""The MQTT v5 packet codec: round trips, paho interoperability, framing, malformed input.

Everything here is pure: bytes in, values out. paho-mqtt serves as the reference encoder
and decoder for property sections, so a disagreement points at one side or the other.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.codec import (
    CONNACK,
    CONTENT_TYPE,
    CORRELATION_DATA,
    MESSAGE_EXPIRY,
    PAYLOAD_FORMAT,
    PINGRESP,
    PUBACK,
    PUBLISH,
    RESPONSE_TOPIC,
    SUBACK,
    USER_PROPERTY,
    MalformedPacketError,
    Packet,
    PacketReader,
    Publish,
    decode_ack,
    decode_connack,
    decode_properties,
    decode_publish,
    decode_suback,
    encode_disconnect,
    encode_puback,
    encode_publish,
    encode_publish_properties,
    encode_subscribe,
    encode_unsubscribe,
    encode_varint,
    set_dup,
)

VARINT_MAX = 268_435_455

# Text that MQTT (and paho's strict reader) accept: no U+0000, no BOM, no surrogates.
mqtt_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00\ufeff"), max_size=24
)
user_properties = st.lists(st.tuples(mqtt_text, mqtt_text), max_size=12)

USER_PROPERTIES = [
    ("specversion", "1.0"),
    ("type", "com.example.order.created"),
    ("", ""),
    ("empty-value", ""),
    ("", "empty-name"),
    ("ключ", "значение"),
    ("emoji", "🚀 ✓ Grüße 日本語"),
    ("type", "duplicate names keep their order"),
]


def frame(packet: bytes) -> Packet:
    """The single packet a fresh reader makes of ``packet``."""
    packets = PacketReader(max_packet=1 << 20).feed(packet)
    assert len(packets) == 1
    return packets[0]


def round_trip(packet: bytes) -> Publish:
    framed = frame(packet)
    assert framed.kind == PUBLISH
    assert not framed.truncated
    return decode_publish(framed.flags, framed.body, framed.size)


def publish_body(topic: bytes, section: bytes, tail: bytes = b"", *, qos: int = 0) -> bytes:
    """A hand-made PUBLISH body: raw topic bytes, a raw property section, then ``tail``."""
    packet_id = b"\x00\x01" if qos else b""
    return len(topic).to_bytes(2, "big") + topic + packet_id + section + tail


def decode_body(body: bytes, flags: int = 0) -> Publish:
    return decode_publish(flags, body, len(body))


def paho_publish_properties(**values: Any) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return props


# -- variable byte integers -------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (VARINT_MAX, b"\xff\xff\xff\x7f"),
    ],
)
def test_varint_encodes_boundaries_as_in_the_spec_and_decodes_back(
    value: int, encoded: bytes
) -> None:
    assert encode_varint(value) == encoded
    assert codec._varint(encoded, 0, len(encoded)) == (value, len(encoded))


def test_varint_decodes_at_an_offset_and_ignores_what_follows() -> None:
    buf = b"\xaa\x80\x01\xff"
    assert codec._varint(buf, 1, len(buf)) == (128, 3)


@given(st.integers(min_value=0, max_value=VARINT_MAX))
def test_varint_round_trips_any_value_in_range(value: int) -> None:
    encoded = encode_varint(value)
    assert codec._varint(encoded, 0, len(encoded)) == (value, len(encoded))


@pytest.mark.parametrize("incomplete", [b"", b"\x80", b"\xff\xff", b"\xff\xff\xff"])
def test_varint_cut_off_is_reported_as_incomplete(incomplete: bytes) -> None:
    assert codec._varint(incomplete, 0, len(incomplete)) is None


def test_varint_longer_than_four_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPacketError):
        codec._varint(b"\x80\x80\x80\x80\x01", 0, 5)


def test_varint_encoder_refuses_values_over_the_mqtt_maximum() -> None:
    with pytest.raises(ValueError):
        encode_varint(VARINT_MAX + 1)
    with pytest.raises(ValueError):
        encode_varint(-1)


# -- PUBLISH encoding: byte layout --------------------------------------------------------
def test_empty_property_section_is_a_single_zero_length() -> None:
    assert encode_publish_properties() == b"\x00"
    assert encode_publish_properties(user_properties=[]) == b"\x00"


def test_property_section_layout_follows_the_spec() -> None:
    section = encode_publish_properties(
        payload_format=1,
        message_expiry=60,
        content_type="a",
        response_topic="r",
        correlation_data=b"\x01",
        user_properties=[("k", "v")],
    )
    assert section == (
        b"\x1a"  # 26 bytes of properties
        b"\x01\x01"
        b"\x02\x00\x00\x00\x3c"
        b"\x03\x00\x01a"
        b"\x08\x00\x01r"
        b"\x09\x00\x01\x01"
        b"\x26\x00\x01k\x00\x01v"
    )


def test_qos0_publish_layout_has_no_packet_identifier() -> None:
    packet = encode_publish("a/b", b"x", b"\x00", qos=0, packet_id=0x1234)
    assert packet == b"\x30\x07\x00\x03a/b\x00x"


def test_qos1_publish_layout_carries_the_packet_identifier() -> None:
    packet = encode_publish("a/b", b"x", b"\x00", qos=1, packet_id=0x1234)
    assert packet == b"\x32\x09\x00\x03a/b\x12\x34\x00x"


def test_retain_and_dup_are_the_low_and_fourth_bits_of_the_first_byte() -> None:
    assert encode_publish("t", b"", b"\x00", qos=0, retain=True)[0] == 0x31
    assert encode_publish("t", b"", b"\x00", qos=1, packet_id=1, dup=True)[0] == 0x3A


def test_publish_remaining_length_uses_a_multi_byte_varint_when_needed() -> None:
    packet = encode_publish("t", b"p" * 200, b"\x00", qos=0)
    assert packet[1:3] == encode_varint(3 + 1 + 200)
    assert len(packet) == 1 + 2 + 204


def test_set_dup_only_changes_the_dup_flag() -> None:
    packet = encode_publish("t", b"body", encode_publish_properties(), qos=1, packet_id=9)
    marked = set_dup(packet)
    assert marked[0] == packet[0] | 0x08
    assert marked[1:] == packet[1:]
    assert marked == encode_publish(
        "t", b"body", encode_publish_properties(), qos=1, packet_id=9, dup=True
    )


def test_set_dup_is_idempotent() -> None:
    packet = encode_publish("t", b"", b"\x00", qos=1, packet_id=1)
    assert set_dup(set_dup(packet)) == set_dup(packet)


# -- PUBLISH encoding: limits -------------------------------------------------------------
@pytest.mark.parametrize("topic", ["a" * 65_536, "é" * 32_768])  # bytes count, not chars
def test_topic_over_65535_bytes_is_refused(topic: str) -> None:
    with pytest.raises(ValueError):
        encode_publish(topic, b"", b"\x00")


def test_topic_of_exactly_65535_bytes_round_trips() -> None:
    topic = "t" * 65_535
    assert round_trip(encode_publish(topic, b"p", b"\x00", qos=0)).topic == topic


@pytest.mark.parametrize(
    "properties",
    [
        {"content_type": "c" * 65_536},
        {"response_topic": "ü" * 32_768},
        {"correlation_data": b"\x00" * 65_536},
        {"user_properties": [("n" * 65_536, "v")]},
        {"user_properties": [("n", "v" * 65_536)]},
        {"user_properties": [("ok", "ok"), ("n", "€" * 21_846)]},
    ],
)
def test_property_string_or_binary_over_65535_bytes_is_refused(
    properties: dict[str, Any],
) -> None:
    with pytest.raises(ValueError):
        encode_publish_properties(**properties)


def test_user_property_of_exactly_65535_bytes_round_trips() -> None:
    pair = ("n" * 65_535, "v" * 65_535)
    section = encode_publish_properties(user_properties=[pair])
    assert round_trip(encode_publish("t", b"", section, qos=0)).user_properties == [pair]


# -- PUBLISH round trips ------------------------------------------------------------------
@pytest.mark.parametrize(("qos", "packet_id"), [(0, 0), (1, 1), (1, 0xBEEF), (1, 0xFFFF)])
@pytest.mark.parametrize("retain", [False, True])
def test_publish_round_trips_with_every_property(qos: int, packet_id: int, retain: bool) -> None:
    section = encode_publish_properties(
        payload_format=1,
        message_expiry=0xFFFF_FFFF,
        content_type="application/cloudevents+json; charset=utf-8",
        response_topic="app/jobs/plant1/replies/ä",
        correlation_data=b"\x00\xff\x01corr",
        user_properties=USER_PROPERTIES,
    )
    payload = b'{"data": "\xe2\x9c\x93"}\x00\xff'
    packet = encode_publish(
        "app/jobs/plant1/línea/commands",
        payload,
        section,
        qos=qos,
        retain=retain,
        packet_id=packet_id,
    )
    message = round_trip(packet)
    assert message == Publish(
        topic="app/jobs/plant1/línea/commands",
        payload=payload,
        qos=qos,
        retain=retain,
        dup=False,
        packet_id=packet_id,
        payload_size=len(payload),
        content_type="application/cloudevents+json; charset=utf-8",
        user_properties=USER_PROPERTIES,
        message_expiry=0xFFFF_FFFF,
        response_topic="app/jobs/plant1/replies/ä",
        correlation_data=b"\x00\xff\x01corr",
        payload_format=1,
    )


def test_publish_without_properties_decodes_to_defaults() -> None:
    message = round_trip(encode_publish("t", b"", encode_publish_properties(), qos=0))
    assert message == Publish("t", b"", 0, False, False, 0, 0)
    assert message.user_properties == []


def test_payload_format_zero_and_expiry_zero_are_kept_not_dropped() -> None:
    section = encode_publish_properties(payload_format=0, message_expiry=0)
    message = round_trip(encode_publish("t", b"", section, qos=0))
    assert message.payload_format == 0
    assert message.message_expiry == 0


def test_empty_content_type_response_topic_and_correlation_data_are_kept() -> None:
    section = encode_publish_properties(content_type="", response_topic="", correlation_data=b"")
    message = round_trip(encode_publish("t", b"x", section, qos=0))
    assert (message.content_type, message.response_topic) == ("", "")
    assert message.correlation_data == b""


def test_dup_survives_the_round_trip() -> None:
    packet = set_dup(encode_publish("t", b"x", b"\x00", qos=1, packet_id=7))
    message = round_trip(packet)
    assert (message.dup, message.qos, message.packet_id) == (True, 1, 7)


def test_decoded_payload_and_correlation_data_are_bytes() -> None:
    section = encode_publish_properties(correlation_data=b"c")
    message = round_trip(encode_publish("t", b"p", section, qos=0))
    assert type(message.payload) is bytes
    assert type(message.correlation_data) is bytes


@given(
    topic=mqtt_text,
    payload=st.binary(max_size=300),
    pairs=user_properties,
    qos=st.sampled_from([0, 1]),
    packet_id=st.integers(min_value=1, max_value=0xFFFF),
    retain=st.booleans(),
    dup=st.booleans(),
    content_type=st.none() | mqtt_text,
    correlation_data=st.none() | st.binary(max_size=40),
    message_expiry=st.none() | st.integers(min_value=0, max_value=0xFFFF_FFFF),
)
def test_any_publish_round_trips(
    topic: str,
    payload: bytes,
    pairs: list[tuple[str, str]],
    qos: int,
    packet_id: int,
    retain: bool,
    dup: bool,
    content_type: str | None,
    correlation_data: bytes | None,
    message_expiry: int | None,
) -> None:
    section = encode_publish_properties(
        content_type=content_type,
        correlation_data=correlation_data,
        message_expiry=message_expiry,
        user_properties=pairs,
    )
    packet = encode_publish(
        topic, payload, section, qos=qos, retain=retain, packet_id=packet_id, dup=dup
    )
    message = round_trip(packet)
    assert message == Publish(
        topic,
        payload,
        qos,
        retain,
        dup,
        packet_id if qos else 0,
        len(payload),
        content_type=content_type,
        user_properties=pairs,
        message_expiry=message_expiry,
        correlation_data=correlation_data,
    )


# -- interoperability with paho-mqtt ------------------------------------------------------
def test_our_property_section_decodes_with_paho() -> None:
    section = encode_publish_properties(
        payload_format=1,
        message_expiry=3600,
        content_type="application/json",
        response_topic="réponse/topic",
        correlation_data=b"\x00\x01\xfe",
        user_properties=USER_PROPERTIES,
    )
    props, consumed = Properties(PacketTypes.PUBLISH).unpack(section)
    assert consumed == len(section)
    assert props.PayloadFormatIndicator == 1
    assert props.MessageExpiryInterval == 3600
    assert props.ContentType == "application/json"
    assert props.ResponseTopic == "réponse/topic"
    assert props.CorrelationData == b"\x00\x01\xfe"
    assert props.UserProperty == USER_PROPERTIES


def test_paho_property_section_decodes_with_ours() -> None:
    section = paho_publish_properties(
        PayloadFormatIndicator=0,
        MessageExpiryInterval=0xFFFF_FFFF,
        ContentType="text/plain; charset=utf-8",
        ResponseTopic="antwort/ö",
        CorrelationData=b"\xff\x00",
        UserProperty=USER_PROPERTIES,
    ).pack()
    props, stop = decode_properties(section, 0, len(section))
    assert stop == len(section)
    assert props == {
        PAYLOAD_FORMAT: 0,
        MESSAGE_EXPIRY: 0xFFFF_FFFF,
        CONTENT_TYPE: "text/plain; charset=utf-8",
        RESPONSE_TOPIC: "antwort/ö",
        CORRELATION_DATA: b"\xff\x00",
        USER_PROPERTY: USER_PROPERTIES,
    }


def test_publish_built_around_a_paho_property_section_decodes() -> None:
    section = paho_publish_properties(ContentType="a/b", UserProperty=[("k", "v")]).pack()
    message = round_trip(encode_publish("t/1", b"payload", section, qos=1, packet_id=3))
    assert (message.topic, message.payload, message.packet_id) == ("t/1", b"payload", 3)
    assert message.content_type == "a/b"
    assert message.user_properties == [("k", "v")]


def test_paho_subscription_identifier_and_topic_alias_decode_with_ours() -> None:
    section = paho_publish_properties(SubscriptionIdentifier=VARINT_MAX, TopicAlias=7).pack()
    props, _ = decode_properties(section, 0, len(section))
    assert props == {codec.SUBSCRIPTION_ID: VARINT_MAX, codec.TOPIC_ALIAS: 7}


@given(
    pairs=user_properties,
    content_type=st.none() | mqtt_text,
    response_topic=st.none() | mqtt_text,
    correlation_data=st.none() | st.binary(max_size=40),
    message_expiry=st.none() | st.integers(min_value=0, max_value=0xFFFF_FFFF),
    payload_format=st.none() | st.sampled_from([0, 1]),
)
def test_any_property_section_survives_ours_to_paho_and_back(
    pairs: list[tuple[str, str]],
    content_type: str | None,
    response_topic: str | None,
    correlation_data: bytes | None,
    message_expiry: int | None,
    payload_format: int | None,
) -> None:
    ours = encode_publish_properties(
        payload_format=payload_format,
        message_expiry=message_expiry,
        content_type=content_type,
        response_topic=response_topic,
        correlation_data=correlation_data,
        user_properties=pairs,
    )
    paho, consumed = Properties(PacketTypes.PUBLISH).unpack(ours)
    assert consumed == len(ours)
    assert getattr(paho, "UserProperty", []) == pairs
    assert getattr(paho, "ContentType", None) == content_type
    assert getattr(paho, "ResponseTopic", None) == response_topic
    assert getattr(paho, "CorrelationData", None) == correlation_data
    assert getattr(paho, "MessageExpiryInterval", None) == message_expiry
    assert getattr(paho, "PayloadFormatIndicator", None) == payload_format

    repacked = paho.pack()
    props, stop = decode_properties(repacked, 0, len(repacked))
    assert stop == len(repacked)
    expected: dict[int, object] = {
        ident: value
        for ident, value in [
            (PAYLOAD_FORMAT, payload_format),
            (MESSAGE_EXPIRY, message_expiry),
            (CONTENT_TYPE, content_type),
            (RESPONSE_TOPIC, response_topic),
            (CORRELATION_DATA, correlation_data),
            (USER_PROPERTY, pairs or None),
        ]
        if value is not None
    }
    assert props == expected


@given(pairs=user_properties, payload=st.binary(max_size=200))
def test_paho_user_properties_and_payload_decode_in_a_publish(
    pairs: list[tuple[str, str]], payload: bytes
) -> None:
    props = Properties(PacketTypes.PUBLISH)
    if pairs:
        props.UserProperty = pairs
    message = round_trip(encode_publish("x/y", payload, props.pack(), qos=0))
    assert message.user_properties == pairs
    assert message.payload == payload


# -- PacketReader framing -----------------------------------------------------------------
def test_reader_frames_a_publish_with_its_flags_and_body() -> None:
    packet = encode_publish("t", b"abc", b"\x00", qos=1, packet_id=5, retain=True)
    framed = frame(packet)
    assert framed == Packet(PUBLISH, 0x03, packet[2:], len(packet) - 2)
    assert not framed.truncated


def test_reader_frames_a_zero_length_packet() -> None:
    assert frame(b"\xd0\x00") == Packet(PINGRESP, 0, b"", 0)


def test_reader_holds_a_packet_back_until_its_last_byte() -> None:
    packet = encode_publish("topic", b"payload" * 30, b"\x00", qos=1, packet_id=1)
    reader = PacketReader(max_packet=1 << 20)
    for byte in packet[:-1]:
        assert reader.feed(bytes((byte,))) == []
    assert reader.feed(packet[-1:]) == [Packet(PUBLISH, 0x02, packet[3:], len(packet) - 3)]


def test_reader_returns_every_packet_completed_by_one_feed_in_order() -> None:
    reader = PacketReader(max_packet=1 << 20)
    first = reader.feed(b"\x40\x02\x00\x01\xd0\x00\x40\x02\x00")
    assert first == [Packet(PUBACK, 0, b"\x00\x01", 2), Packet(PINGRESP, 0, b"", 0)]
    assert reader.feed(b"\x02") == [Packet(PUBACK, 0, b"\x00\x02", 2)]


STREAM_PACKETS = [
    b"\x20\x03\x00\x00\x00",  # CONNACK
    b"\x90\x04\x00\x01\x00\x01",  # SUBACK
    encode_publish("a", b"x" * 300, b"\x00", qos=0),  # two-byte remaining length
    encode_puback(0x0102),
    b"\xd0\x00",  # PINGRESP
    encode_publish(
        "b/ü",
        b"",
        encode_publish_properties(content_type="c", user_properties=USER_PROPERTIES),
        qos=1,
        packet_id=0xFFFF,
        retain=True,
    ),
    encode_publish("c", b"y" * 20_000, b"\x00", qos=1, packet_id=2),  # three-byte length
]
STREAM = b"".join(STREAM_PACKETS)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_reader_frames_a_stream_the_same_however_it_is_split(cuts: list[int]) -> None:
    reader = PacketReader(max_packet=1 << 20)
    packets = [packet for chunk in split(STREAM, cuts) for packet in reader.feed(chunk)]
    expected = [frame(packet) for packet in STREAM_PACKETS]
    assert packets == expected
    assert [p.kind for p in packets] == [CONNACK, SUBACK, PUBLISH, PUBACK, PINGRESP] + [PUBLISH] * 2


def test_oversized_publish_is_delivered_once_with_its_head_and_the_stream_stays_in_sync() -> None:
    section = encode_publish_properties(content_type="big", user_properties=[("k", "v")])
    big = encode_publish("big/topic", b"z" * 5_000, section, qos=1, packet_id=4)
    after = encode_puback(4)
    reader = PacketReader(max_packet=1_000, head_bytes=64)
    packets = reader.feed(big + after)
    assert len(packets) == 2
    head, ack = packets
    size = len(big) - 3  # one type byte, two bytes of remaining length
    assert (head.kind, head.flags, head.size) == (PUBLISH, 0x02, size)
    assert head.body == big[3 : 3 + 64]
    assert head.truncated
    assert decode_ack(ack.body) == (4, 0)

    message = decode_publish(head.flags, head.body, head.size)
    assert message.topic == "big/topic"
    assert message.payload is None
    assert message.payload_size == 5_000
    assert (message.packet_id, message.content_type) == (4, "big")
    assert message.user_properties == [("k", "v")]


def test_oversized_publish_tail_is_skipped_across_later_feeds() -> None:
    big = encode_publish("t", b"z" * 10_000, b"\x00", qos=0)
    reader = PacketReader(max_packet=500, head_bytes=16)
    assert reader.feed(big[:10]) == []  # the head is not complete yet
    delivered = reader.feed(big[10:100])
    assert [p.body for p in delivered] == [big[3:19]]
    assert all(p.truncated for p in delivered)
    for start in range(100, len(big), 1_000):
        assert reader.feed(big[start : start + 1_000]) == []
    assert reader.feed(b"\xd0\x00") == [Packet(PINGRESP, 0, b"", 0)]


def test_oversized_publish_whose_properties_overrun_the_head_is_still_delivered() -> None:
    # Closing the connection instead would make the broker re-send it forever.
    section = encode_publish_properties(user_properties=[("k", "v" * 500)])
    big = encode_publish("big/topic", b"z" * 5_000, section, qos=1, packet_id=9)
    head = PacketReader(max_packet=1_000, head_bytes=64).feed(big)[0]
    message = decode_publish(head.flags, head.body, head.size)
    assert (message.topic, message.packet_id, message.payload) == ("big/topic", 9, None)
    assert message.user_properties == []
    assert message.payload_size > 1_000


def test_head_kept_of_an_oversized_publish_is_never_more_than_max_packet() -> None:
    big = encode_publish("t", b"z" * 1_000, b"\x00", qos=0)
    (head,) = PacketReader(max_packet=100).feed(big)  # default head_bytes is 64 KiB
    assert head.truncated
    assert len(head.body) == 100


@given(
    st.lists(st.integers(min_value=0, max_value=4_200), max_size=25),
    st.integers(min_value=8, max_value=300),
)
def test_oversized_publish_in_any_chunking_yields_its_head_once_and_then_the_rest(
    cuts: list[int], head_bytes: int
) -> None:
    small = encode_publish("s", b"ok", b"\x00", qos=1, packet_id=1)
    big = encode_publish("big", b"z" * 4_000, encode_publish_properties(), qos=0)
    stream = small + big + encode_puback(1) + small
    reader = PacketReader(max_packet=1_000, head_bytes=head_bytes)
    packets = [
        p for chunk in split(stream, [c % len(stream) for c in cuts]) for p in reader.feed(chunk)
    ]
    assert [p.kind for p in packets] == [PUBLISH, PUBLISH, PUBACK, PUBLISH]
    assert packets[1].body == big[3 : 3 + head_bytes]
    assert packets[1].size == len(big) - 3
    assert [p.truncated for p in packets] == [False, True, False, False]
    assert packets[0] == packets[3] == frame(small)


@pytest.mark.parametrize(
    "header",
    [
        b"\x90\xe9\x07",  # SUBACK of 1001 bytes
        b"\x20\xe9\x07",  # CONNACK
        b"\x40\xe9\x07",  # PUBACK
    ],
)
def test_oversized_packet_that_is_not_a_publish_is_malformed(header: bytes) -> None:
    reader = PacketReader(max_packet=1_000)
    with pytest.raises(MalformedPacketError):
        reader.feed(header)


def test_packet_of_exactly_max_packet_bytes_is_accepted_whole() -> None:
    packet = encode_publish("t", b"z" * 996, b"\x00", qos=0)  # 3 + 1 + 996 = 1000
    framed = PacketReader(max_packet=1_000, head_bytes=10).feed(packet)
    assert framed == [Packet(PUBLISH, 0, packet[3:], 1_000)]


def test_remaining_length_longer_than_four_bytes_is_malformed_in_the_reader() -> None:
    with pytest.raises(MalformedPacketError):
        PacketReader(max_packet=1 << 20).feed(b"\x30\x80\x80\x80\x80\x01")


# -- malformed PUBLISH --------------------------------------------------------------------
def test_publish_with_qos_3_is_malformed() -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(publish_body(b"t", b"\x00"), flags=0x06)


@pytest.mark.parametrize("body", [b"", b"\x00", b"\x00\x05ab", b"\xff\xff" + b"x" * 100])
def test_truncated_topic_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(body)


@pytest.mark.parametrize("body", [b"\x00\x01a", b"\x00\x01a\x12"])
def test_truncated_packet_identifier_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(body, flags=0x02)


@pytest.mark.parametrize("body", [b"\x00\x01a", b"\x00\x01a\x80", b"\x00\x01a\xff\xff\xff"])
def test_truncated_property_length_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(body)


def test_property_length_longer_than_four_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(b"\x00\x01a\x80\x80\x80\x80\x01")


@pytest.mark.parametrize("body", [b"\x00\x01a\x05\x01\x01", b"\x00\x01a\x7f", b"\x00\x01a\x02"])
def test_property_length_beyond_the_packet_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(body)


def test_property_section_is_bounded_by_end_not_by_the_buffer() -> None:
    # A topic alias announced as 3 bytes of properties, with only 2 of them before ``end``.
    with pytest.raises(MalformedPacketError):
        decode_properties(b"\x03\x23\x00\x07", 0, 3)
    assert decode_properties(b"\x03\x23\x00\x07", 0, 4) == ({codec.TOPIC_ALIAS: 7}, 4)


# Sections whose last property runs past the section end; the tail (payload) follows.
OVERRUNNING_SECTIONS = {
    "user property value": b"\x07\x26\x00\x01k\x00\x05v",
    "user property name": b"\x04\x26\x00\x09k",
    "user property value length": b"\x05\x26\x00\x01k\x00",
    "user property name length": b"\x02\x26\x00",
    "user property alone": b"\x01\x26",
    "content type": b"\x04\x03\x00\x09c",
    "response topic length": b"\x02\x08\x00",
    "correlation data": b"\x04\x09\x00\x05\x01",
    "payload format value": b"\x01\x01",
    "message expiry value": b"\x03\x02\x00\x00",
    "topic alias value": b"\x02\x23\x00",
    "subscription identifier varint": b"\x02\x0b\x80",
}


@pytest.mark.parametrize("tail", [b"", b"payload bytes follow the section"])
@pytest.mark.parametrize("section", OVERRUNNING_SECTIONS.values(), ids=OVERRUNNING_SECTIONS)
def test_property_running_past_its_section_is_malformed(section: bytes, tail: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(publish_body(b"t", section, tail))


def test_subscription_identifier_longer_than_four_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(publish_body(b"t", b"\x06\x0b\x80\x80\x80\x80\x01"))


INVALID_UTF8 = [b"\xc3\x28", b"\xff", b"\xed\xa0\x80", b"ok\xe2\x82"]  # incl. a surrogate


@pytest.mark.parametrize("raw", INVALID_UTF8)
def test_invalid_utf8_in_topic_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(publish_body(raw, b"\x00"))


def _string_property(ident: int, raw: bytes) -> bytes:
    prop = bytes((ident,)) + len(raw).to_bytes(2, "big") + raw
    return encode_varint(len(prop)) + prop


def _pair_section(name: bytes, value: bytes) -> bytes:
    prop = b"\x26" + len(name).to_bytes(2, "big") + name + len(value).to_bytes(2, "big") + value
    return encode_varint(len(prop)) + prop


@pytest.mark.parametrize("raw", INVALID_UTF8)
@pytest.mark.parametrize(
    "make_section",
    [
        lambda raw: _pair_section(raw, b"v"),
        lambda raw: _pair_section(b"n", raw),
        lambda raw: _string_property(CONTENT_TYPE, raw),
        lambda raw: _string_property(RESPONSE_TOPIC, raw),
    ],
    ids=["user property name", "user property value", "content type", "response topic"],
)
def test_invalid_utf8_in_a_string_property_is_malformed(
    raw: bytes, make_section: Callable[[bytes], bytes]
) -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(publish_body(b"t", make_section(raw)))


@pytest.mark.parametrize("ident", [0x00, 0x04, 0x10, 0x14, 0x2B, 0x7F, 0xFF])
def test_unknown_property_identifier_is_malformed(ident: int) -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(publish_body(b"t", bytes((2, ident, 0))))


def test_every_truncation_of_a_publish_head_is_malformed() -> None:
    section = encode_publish_properties(
        payload_format=1,
        message_expiry=5,
        content_type="ct",
        response_topic="rt",
        correlation_data=b"cd",
        user_properties=[("name", "value"), ("", "")],
    )
    packet = encode_publish("top/ic", b"", section, qos=1, packet_id=77)
    body = frame(packet).body
    assert decode_body(body, flags=0x02).user_properties == [("name", "value"), ("", "")]
    for cut in range(len(body)):
        with pytest.raises(MalformedPacketError):
            decode_body(body[:cut], flags=0x02)


@given(flags=st.integers(min_value=0, max_value=15), body=st.binary(max_size=120))
def test_arbitrary_publish_body_decodes_or_is_malformed(flags: int, body: bytes) -> None:
    try:
        message = decode_body(body, flags)
    except MalformedPacketError:
        return
    assert message.qos in (0, 1, 2)
    assert message.payload is not None
    assert message.payload_size == len(message.payload)


@given(
    body=st.binary(min_size=4, max_size=120).map(lambda b: b"\x00\x01t" + b),
    flags=st.sampled_from([0, 2]),
)
def test_arbitrary_property_section_after_a_valid_topic_decodes_or_is_malformed(
    body: bytes, flags: int
) -> None:
    try:
        message = decode_body(body, flags)
    except MalformedPacketError:
        return
    assert message.payload is not None
    assert body.endswith(message.payload)
    assert message.payload_size == len(message.payload)


@given(
    data=st.data(),
    pairs=user_properties,
)
def test_corrupted_byte_in_a_valid_publish_decodes_or_is_malformed(
    data: st.DataObject, pairs: list[tuple[str, str]]
) -> None:
    section = encode_publish_properties(content_type="c", user_properties=pairs)
    body = bytearray(frame(encode_publish("t/x", b"pl", section, qos=1, packet_id=1)).body)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    body[index] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        message = decode_body(bytes(body), 0x02)
    except MalformedPacketError:
        return
    assert message.qos == 1
    assert message.payload is not None
    assert bytes(body).endswith(message.payload)


def test_null_character_in_topic_is_malformed() -> None:
    with pytest.raises(MalformedPacketError):
        decode_body(publish_body(b"a\x00b", b"\x00"))


@pytest.mark.parametrize(
    "section",
    [
        b"\x07\x26\x00\x01\x00\x00\x01x",  # user property name
        b"\x07\x26\x00\x01x\x00\x01\x00",  # user property value
        b"\x04\x03\x00\x01\x00",  # content type
    ],
)
def test_null_character_in_a_property_string_is_malformed(section: bytes) -> None:
    with pytest.raises(MalformedPacketError, match="U\\+0000"):
        decode_properties(section, 0, len(section))


# -- CONNACK, SUBACK, acknowledgements ----------------------------------------------------
def test_connack_without_properties() -> None:
    assert decode_connack(b"\x01\x00\x00") == codec.ConnAck(True, 0, {})
    assert decode_connack(b"\x00\x87") == codec.ConnAck(False, 0x87, {})


def test_connack_properties_are_decoded_by_identifier() -> None:
    props = (
        b"\x21\x00\x0a"  # receive maximum 10
        b"\x24\x01"  # maximum QoS 1
        b"\x27\x00\x10\x00\x00"  # maximum packet size 1 MiB
        b"\x12\x00\x03cid"  # assigned client identifier
        b"\x13\x00\x3c"  # server keep alive 60
        b"\x26\x00\x01k\x00\x01v"  # user property
    )
    connack = decode_connack(b"\x00\x00" + encode_varint(len(props)) + props)
    assert connack == codec.ConnAck(
        False,
        0,
        {
            codec.RECEIVE_MAXIMUM: 10,
            codec.MAXIMUM_QOS: 1,
            codec.MAXIMUM_PACKET_SIZE: 1 << 20,
            codec.ASSIGNED_CLIENT_ID: "cid",
            codec.SERVER_KEEP_ALIVE: 60,
            USER_PROPERTY: [("k", "v")],
        },
    )


def test_connack_properties_packed_by_paho_decode() -> None:
    props = Properties(PacketTypes.CONNACK)
    props.ReceiveMaximum = 65535
    props.TopicAliasMaximum = 0
    props.RetainAvailable = 1
    props.ReasonString = "fine ✓"
    props.SessionExpiryInterval = 0xFFFF_FFFF
    connack = decode_connack(b"\x01\x00" + props.pack())
    assert connack.session_present
    assert connack.properties == {
        codec.RECEIVE_MAXIMUM: 65535,
        codec.TOPIC_ALIAS_MAXIMUM: 0,
        0x25: 1,
        codec.REASON_STRING: "fine ✓",
        codec.SESSION_EXPIRY: 0xFFFF_FFFF,
    }


@pytest.mark.parametrize("body", [b"", b"\x00", b"\x00\x00\x05\x21"])
def test_truncated_connack_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        decode_connack(body)


def test_suback_returns_packet_id_and_one_reason_code_per_filter() -> None:
    assert decode_suback(b"\x00\x07\x00\x00\x01\x80") == (7, [0, 1, 0x80])


def test_suback_skips_its_properties() -> None:
    props = b"\x1f\x00\x02ok" + b"\x26\x00\x00\x00\x00"
    body = b"\xab\xcd" + encode_varint(len(props)) + props + b"\x02"
    assert decode_suback(body) == (0xABCD, [2])


@pytest.mark.parametrize("body", [b"", b"\x00\x07", b"\x00\x07\x04\x1f"])
def test_truncated_suback_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        decode_suback(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\x12\x34", (0x1234, 0)),
        (b"\x12\x34\x10", (0x1234, 0x10)),
        (b"\xff\xff\x87\x00", (0xFFFF, 0x87)),
    ],
)
def test_ack_yields_packet_id_and_reason_code(body: bytes, expected: tuple[int, int]) -> None:
    assert decode_ack(body) == expected


@pytest.mark.parametrize("body", [b"", b"\x12"])
def test_truncated_ack_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        decode_ack(body)


# -- encoders for control packets ---------------------------------------------------------
def test_puback_success_is_the_short_form() -> None:
    assert encode_puback(0x1234) == b"\x40\x02\x12\x34"


def test_puback_with_a_reason_code_has_an_empty_property_section() -> None:
    packet = encode_puback(0x1234, 0x80)
    assert packet == b"\x40\x04\x12\x34\x80\x00"
    framed = frame(packet)
    assert framed.kind == PUBACK
    assert decode_ack(framed.body) == (0x1234, 0x80)


def test_disconnect_normal_is_two_bytes() -> None:
    assert encode_disconnect() == b"\xe0\x00"


def test_disconnect_with_a_reason_code_has_an_empty_property_section() -> None:
    assert encode_disconnect(0x04) == b"\xe0\x02\x04\x00"


@pytest.mark.parametrize(
    ("reason", "expiry", "expected"),
    [
        (0x00, 0, b"\xe0\x07\x00\x05\x11\x00\x00\x00\x00"),
        (0x04, 3600, b"\xe0\x07\x04\x05\x11\x00\x00\x0e\x10"),
    ],
)
def test_disconnect_with_session_expiry_carries_it_as_a_property(
    reason: int, expiry: int, expected: bytes
) -> None:
    packet = encode_disconnect(reason, session_expiry=expiry)
    assert packet == expected
    props, consumed = Properties(PacketTypes.DISCONNECT).unpack(packet[3:])
    assert consumed == 6
    assert props.SessionExpiryInterval == expiry


def test_subscribe_layout_follows_the_spec() -> None:
    packet = encode_subscribe(10, [("a/+", 1), ("b/#", 0)])
    assert packet == (
        b"\x82\x0f"  # SUBSCRIBE with the reserved flags 0b0010, 15 bytes
        b"\x00\x0a\x00"  # packet id, empty property section
        b"\x00\x03a/+\x01"
        b"\x00\x03b/#\x00"
    )


def test_unsubscribe_layout_follows_the_spec() -> None:
    packet = encode_unsubscribe(11, ["a/+", "ü"])
    assert packet == b"\xa2\x0c\x00\x0b\x00\x00\x03a/+\x00\x02\xc3\xbc"


def test_subscribe_over_127_bytes_uses_a_two_byte_remaining_length() -> None:
    packet = encode_subscribe(1, [("x" * 200, 1)])
    assert packet[:3] == b"\x82" + encode_varint(3 + 2 + 200 + 1)
    assert len(packet) == 3 + 206


def test_connect_layout_follows_the_spec() -> None:
    packet = codec.encode_connect(
        "c1",
        clean_start=True,
        keepalive=60,
        session_expiry=300,
        receive_maximum=100,
        username="u",
        password="p",
    )
    assert packet == (
        b"\x10\x1d"
        b"\x00\x04MQTT\x05\xc2\x00\x3c"  # protocol name, level 5, flags, keep alive
        b"\x08\x11\x00\x00\x01\x2c\x21\x00\x64"  # session expiry 300, receive maximum 100
        b"\x00\x02c1\x00\x01u\x00\x01p"
    )


def test_connect_without_credentials_or_clean_start_has_no_flags() -> None:
    packet = codec.encode_connect(
        "", clean_start=False, keepalive=0, session_expiry=0, receive_maximum=1
    )
    assert packet[9] == 0x00  # connect flags
    assert packet.endswith(b"\x00\x00")  # empty client identifier


def test_pingreq_is_the_two_byte_constant() -> None:
    assert codec.PINGREQ_PACKET == b"\xc0\x00"


@pytest.mark.parametrize(
    "single",
    [
        b"\x01\x01",  # payload format
        b"\x02\x00\x00\x00\x05",  # message expiry
        b"\x03\x00\x01a",  # content type
        b"\x08\x00\x01t",  # response topic
        b"\x09\x00\x01c",  # correlation data
    ],
)
def test_a_property_that_may_appear_once_appearing_twice_is_malformed(single: bytes) -> None:
    section = single * 2
    body = b"\x00\x01t" + bytes((len(section),)) + section + b"data"
    with pytest.raises(codec.MalformedPacketError, match="twice"):
        codec.decode_publish(0, body, len(body))


def test_repeated_user_properties_and_subscription_identifiers_are_allowed() -> None:
    section = b"\x26\x00\x01k\x00\x01a" + b"\x26\x00\x01k\x00\x01b" + b"\x0b\x01\x0b\x02"
    body = b"\x00\x01t" + bytes((len(section),)) + section
    message = codec.decode_publish(0, body, len(body))
    assert message.user_properties == [("k", "a"), ("k", "b")]


@pytest.mark.parametrize(("qos", "packet_id"), [(3, 1), (-1, 1), (1, 0), (1, 65536), (2, -5)])
def test_encoding_a_publish_with_an_impossible_qos_or_packet_id_is_refused(
    qos: int, packet_id: int
) -> None:
    with pytest.raises(ValueError):
        codec.encode_publish("t", b"", b"\x00", qos=qos, packet_id=packet_id)


def test_a_qos_0_publish_needs_no_packet_id() -> None:
    packet = codec.encode_publish("t", b"p", b"\x00", qos=0)
    assert packet == b"\x30\x05\x00\x01t\x00p"  # topic "t", no properties, payload "p"


# -- issue 14: topic aliases and reason strings -------------------------------------------
def test_publish_topic_alias_is_decoded_and_absent_as_none() -> None:
    section = paho_publish_properties(TopicAlias=7).pack()
    body = b"\x00\x00" + section + b"payload"
    message = decode_publish(0x00, body, len(body))
    assert (message.topic, message.topic_alias, message.payload) == ("", 7, b"payload")
    plain = b"\x00\x01t\x00"
    assert decode_publish(0x00, plain, len(plain)).topic_alias is None


def test_connect_announces_a_topic_alias_maximum_only_when_above_zero() -> None:
    def props(packet: bytes) -> dict[int, object]:
        body = packet[2:]  # a CONNECT this small has a one-byte remaining length
        found, _ = decode_properties(body, 10, len(body))
        return found

    with_aliases = codec.encode_connect(
        "c", clean_start=True, keepalive=30, session_expiry=0, receive_maximum=10,
        topic_alias_maximum=16,
    )  # fmt: skip
    without = codec.encode_connect(
        "c", clean_start=True, keepalive=30, session_expiry=0, receive_maximum=10
    )
    assert props(with_aliases)[codec.TOPIC_ALIAS_MAXIMUM] == 16
    assert codec.TOPIC_ALIAS_MAXIMUM not in props(without)


def test_reason_string_is_read_from_a_property_section_and_tolerates_bad_ones() -> None:
    text = "quota exceeded"
    section = encode_varint(3 + len(text)) + b"\x1f" + len(text).to_bytes(2, "big") + text.encode()
    assert codec.reason_string(b"\x00\x01\x97" + section, 3) == text
    assert codec.reason_string(b"\x00\x01\x97", 3) is None  # no property section
    assert codec.reason_string(b"\x00\x01\x97\x05\x1f", 3) is None  # malformed: ignored
    assert codec.reason_string(b"\x00\x01\x97\x00", 3) is None  # section without one
