"""Redis Cluster slots and command routing as pure logic (storage.slots)."""

from __future__ import annotations

import pytest

from microdcs.storage.slots import (
    ALL,
    ANY,
    KEY,
    MULTI,
    SCRIPT,
    STREAMS,
    command_keys,
    key_slot,
    merge,
    route_of,
    script_key,
    split,
    streams_index,
)


@pytest.mark.parametrize(
    ("key", "slot"),
    [
        # Examples of the Redis documentation (CLUSTER KEYSLOT) and specification.
        ("somekey", 11058),
        ("foo{hash_tag}", 2515),
        ("bar{hash_tag}", 2515),
        ("123456789", 0x31C3),
        ("foo", 12182),
        ("", 0),
    ],
)
def test_slot_of_a_key_is_its_crc16_modulo_16384(key: str, slot: int) -> None:
    assert key_slot(key) == slot


def test_keys_sharing_a_hash_tag_share_a_slot() -> None:
    assert key_slot("p:jobs:{line1}:job:a") == key_slot("p:jobs:{line1}:list") == key_slot("line1")


@pytest.mark.parametrize(
    ("key", "hashed"),
    [
        ("foo{}{bar}", "foo{}{bar}"),  # an empty first tag: the whole key
        ("foo{{bar}}zap", "{bar"),  # from the first { to the first } after it
        ("foo{bar}{zap}", "bar"),  # only the first tag
        ("foo{bar", "foo{bar"),  # no closing brace: the whole key
        ("}foo{bar}", "bar"),
    ],
)
def test_hash_tag_rules_of_the_specification(key: str, hashed: str) -> None:
    assert key_slot(key) == key_slot(hashed)


def test_text_bytes_and_numbers_hash_as_they_are_sent() -> None:
    assert key_slot("ключ") == key_slot("ключ".encode())
    assert key_slot(42) == key_slot(b"42")


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("GET", KEY),
        ("XADD", KEY),
        ("HMGET", KEY),
        ("EVALSHA", SCRIPT),
        (b"evalsha", SCRIPT),
        ("MGET", MULTI),
        ("del", MULTI),
        ("XREAD", STREAMS),
        ("SCRIPT", ALL),
        ("PING", ALL),
        ("INFO", ANY),
        ("Info", ANY),
        ("WAIT", ANY),
    ],
)
def test_route_of_a_command(name: str | bytes, route: int) -> None:
    assert route_of(name) == route


def test_script_key_is_the_first_key_after_numkeys() -> None:
    assert script_key(("EVALSHA", "sha", 2, "k1", "k2", "arg")) == "k1"
    assert script_key(("EVALSHA", "sha", 0, "arg")) is None
    assert script_key(("EVALSHA", "sha", "x")) is None


def test_streams_index_skips_option_values() -> None:
    args = ("XREADGROUP", "GROUP", "STREAMS", "streams", "COUNT", 5, "STREAMS", "a", ">")
    assert streams_index(args) == 6
    assert command_keys(STREAMS, args) == ["a"]


def test_stream_keys_are_the_first_half_after_streams() -> None:
    args = ("XREAD", "COUNT", 10, "STREAMS", "a", "b", "c", "0", "1-0", "2-0")
    assert command_keys(STREAMS, args) == ["a", "b", "c"]


def test_mget_split_per_slot_and_merged_in_key_order() -> None:
    args = ("MGET", "{x}1", "{y}1", "{x}2", "{z}1")
    slots = [key_slot(key) for key in args[1:]]
    parts = split(MULTI, args, slots)
    assert [part.args for part in parts] == [
        ("MGET", "{x}1", "{x}2"),
        ("MGET", "{y}1"),
        ("MGET", "{z}1"),
    ]
    replies = [[b"x1", None], [b"y1"], [b"z1"]]
    assert merge(MULTI, args, parts, replies) == [b"x1", b"y1", None, b"z1"]


def test_counting_commands_split_are_summed() -> None:
    args = ("DEL", "{x}1", "{y}1", "{x}2")
    parts = split(MULTI, args, [key_slot(key) for key in args[1:]])
    assert merge(MULTI, args, parts, [2, 1]) == 3


def test_xread_split_per_slot_keeps_ids_with_their_keys() -> None:
    args = ("XREAD", "COUNT", 5, "STREAMS", "{a}s", "{b}s", "{a}t", "1-0", "2-0", "3-0")
    parts = split(STREAMS, args, [key_slot(key) for key in command_keys(STREAMS, args)])
    assert [part.args for part in parts] == [
        ("XREAD", "COUNT", 5, "STREAMS", "{a}s", "{a}t", "1-0", "3-0"),
        ("XREAD", "COUNT", 5, "STREAMS", "{b}s", "2-0"),
    ]


def test_xread_merge_orders_streams_as_requested_and_drops_nil() -> None:
    args = ("XREAD", "STREAMS", "{a}s", "{b}s", "{a}t", "0", "0", "0")
    parts = split(STREAMS, args, [key_slot(key) for key in command_keys(STREAMS, args)])
    entries_t = [[b"1-0", [b"f", b"t"]]]
    entries_b = [[b"1-0", [b"f", b"b"]]]
    merged = merge(STREAMS, args, parts, [[[b"{a}t", entries_t]], [[b"{b}s", entries_b]]])
    assert merged == [[b"{b}s", entries_b], [b"{a}t", entries_t]]
    assert merge(STREAMS, args, parts, [None, None]) is None
