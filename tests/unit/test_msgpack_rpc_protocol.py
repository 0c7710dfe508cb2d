"""Framing and message shapes of MessagePack-RPC, without sockets."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from microdcs.transports.msgpack_rpc.protocol import (
    FrameDecoder,
    FrameEncoder,
    FrameError,
    Notification,
    Request,
    Response,
    UnhashableMap,
    parse_message,
    peek_msgid,
)


def pack(*frames: Any) -> bytes:
    return b"".join(msgpack.packb(frame, use_bin_type=True) for frame in frames)


def test_request_response_and_notification_are_parsed() -> None:
    assert parse_message([0, 7, "publish", [{"a": 1}]]) == Request(7, "publish", [{"a": 1}])
    assert parse_message([1, 7, None, [1]]) == Response(7, None, [1])
    assert parse_message([2, "heartbeat", [1.5]]) == Notification("heartbeat", [1.5])


@pytest.mark.parametrize(
    "frame",
    [42, "x", [], {"a": 1}, [3, 1, "m", []], [True, 1, "m", []], [2, "m"], [2, 5, []], [1, -1]],
)
def test_frame_of_the_wrong_shape_without_msgid_is_rejected_without_msgid(frame: Any) -> None:
    with pytest.raises(FrameError) as caught:
        parse_message(frame)
    assert caught.value.msgid is None
    assert not caught.value.fatal


@pytest.mark.parametrize(
    "frame", [[0, 9, "m"], [0, 9, 5, []], [0, 9, "m", {"not": "a list"}], [0, 9, "m", [], 1]]
)
def test_request_of_the_wrong_shape_keeps_its_msgid(frame: Any) -> None:
    with pytest.raises(FrameError) as caught:
        parse_message(frame)
    assert caught.value.msgid == 9
    assert caught.value.kind == "invalid_request"


@pytest.mark.parametrize("msgid", [-1, 2**32, "7", 1.0, None, True])
def test_msgid_must_be_a_uint32(msgid: Any) -> None:
    with pytest.raises(FrameError) as caught:
        parse_message([0, msgid, "m", []])
    assert caught.value.msgid is None


def test_frames_split_anywhere_are_reassembled() -> None:
    stream = pack([0, 1, "a", []], [2, "b", [1]], [0, 2, "c", ["x" * 300]])
    decoder = FrameDecoder(1024)
    got: list[Any] = []
    for i in range(len(stream)):
        got += decoder.feed(stream[i : i + 1])
    assert got == [Request(1, "a", []), Notification("b", [1]), Request(2, "c", ["x" * 300])]
    assert decoder.buffered == 0


def test_wrong_shape_frame_does_not_desynchronise_the_stream() -> None:
    decoder = FrameDecoder(1024)
    items = decoder.feed(pack(12, [0, 3, "ok", []]))
    assert isinstance(items[0], FrameError)
    assert items[1] == Request(3, "ok", [])


def test_garbage_bytes_are_fatal() -> None:
    decoder = FrameDecoder(1024)
    items = decoder.feed(pack([0, 1, "ok", []]) + b"\xc1\x00\x01")
    assert items[0] == Request(1, "ok", [])
    assert isinstance(items[1], FrameError) and items[1].fatal
    assert decoder.failed
    assert decoder.feed(pack([0, 2, "ok", []])) == []


def test_oversized_frame_is_fatal_and_names_its_msgid() -> None:
    decoder = FrameDecoder(256)
    stream = pack([0, 77, "publish", ["x" * 1000]])
    items: list[Any] = []
    for i in range(0, len(stream), 100):
        items += decoder.feed(stream[i : i + 100])
    assert len(items) == 1
    error = items[0]
    assert isinstance(error, FrameError)
    assert error.fatal and error.kind == "payload_too_large" and error.msgid == 77


def test_oversized_frame_in_one_chunk_is_fatal() -> None:
    decoder = FrameDecoder(256)
    items = decoder.feed(pack([0, 1, "ok", []], [0, 5, "publish", ["y" * 1000]]))
    assert items[0] == Request(1, "ok", [])
    assert isinstance(items[1], FrameError) and items[1].msgid == 5 and items[1].fatal


def test_length_header_beyond_the_limit_is_too_large() -> None:
    decoder = FrameDecoder(256)
    header = b"\x94\x00\x05\xa1m\x91\xdb\xff\xff\xff\xff"  # [0, 5, "m", [str of 4 GB]]
    assert decoder.feed(header) == []
    items = decoder.feed(b"x" * 300)
    assert isinstance(items[0], FrameError)
    assert items[0].kind == "payload_too_large" and items[0].msgid == 5


def test_endless_array_of_small_items_is_too_large() -> None:
    decoder = FrameDecoder(4096)
    items = decoder.feed(b"\x94\x00\x09\xa1m\x91\xdd\x00\x10\x00\x00")  # array of 2**20
    for _ in range(100):
        items += decoder.feed(b"\x01" * 1000)
        if items:
            break
    assert len(items) == 1 and isinstance(items[0], FrameError)
    assert items[0].kind == "payload_too_large" and items[0].msgid == 9


def test_frame_exactly_at_the_limit_is_accepted() -> None:
    frame = pack([0, 1, "m", ["z" * 100]])
    decoder = FrameDecoder(len(frame))
    assert decoder.feed(frame) == [Request(1, "m", ["z" * 100])]


def test_map_with_unhashable_keys_decodes_to_a_placeholder() -> None:
    # [0, 4, "publish", [{[1]: 2}]] written by hand: msgpack-python cannot pack it.
    frame = b"\x94\x00\x04\xa7publish\x91\x81\x91\x01\x02"
    items = FrameDecoder(1024).feed(frame + pack([0, 5, "ok", []]))
    assert isinstance(items[0], Request)
    assert isinstance(items[0].params[0], UnhashableMap)
    assert items[1] == Request(5, "ok", [])


def test_integer_map_keys_are_kept() -> None:
    assert FrameDecoder(1024).feed(pack([2, "n", [{1: "a"}]])) == [Notification("n", [{1: "a"}])]


@pytest.mark.parametrize(
    ("head", "expected"),
    [(pack([0, 123456, "m", []])[:8], 123456), (b"\x94\x00", None), (pack([2, "m", []]), None)],
)
def test_peek_msgid_reads_only_complete_request_headers(head: bytes, expected: int | None) -> None:
    assert peek_msgid(head) == expected


def test_encoder_output_round_trips() -> None:
    encoder = FrameEncoder()
    stream = (
        encoder.request(1, "m", [b"\x00"])
        + encoder.response(1, None, {"a": [1]})
        + encoder.notification("cloudevent", [{}, "events"])
    )
    assert FrameDecoder(1024).feed(stream) == [
        Request(1, "m", [b"\x00"]),
        Response(1, None, {"a": [1]}),
        Notification("cloudevent", [{}, "events"]),
    ]


def test_encoder_survives_an_unpackable_value() -> None:
    encoder = FrameEncoder()
    with pytest.raises(TypeError):
        encoder.response(1, None, object())
    assert msgpack.unpackb(encoder.response(2, None, 1)) == [1, 2, None, 1]


def test_idle_decoder_holds_no_unpacker_and_keeps_decoding() -> None:
    decoder = FrameDecoder(1024)
    frame = pack([0, 1, "a", []])
    assert decoder.feed(frame + frame[:3]) == [Request(1, "a", [])]
    assert decoder._unpacker is not None  # a frame is pending
    assert decoder.feed(frame[3:]) == [Request(1, "a", [])]
    assert decoder._unpacker is None
    assert decoder.feed(frame) == [Request(1, "a", [])]
