"""RESP command encoding of the lean Redis connection, read back by hiredis's parser."""

from __future__ import annotations

from typing import Any

import hiredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microdcs.storage.resp import encode_command


def _parse(data: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(data)
    reply = reader.gets()
    assert reader.gets() is False  # exactly one command, nothing left over
    return reply


def test_every_argument_kind_becomes_a_bulk_string() -> None:
    command = ("SET", "clé", b"\x00\xff\r\n", bytearray(b"ba"), memoryview(b"mv"), 86400, 1.5)
    assert _parse(encode_command(command)) == [
        b"SET",
        "clé".encode(),
        b"\x00\xff\r\n",
        b"ba",
        b"mv",
        b"86400",
        b"1.5",
    ]


def test_exact_bytes_of_a_simple_command() -> None:
    assert encode_command(("GET", "k")) == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


def test_unsupported_argument_is_refused() -> None:
    with pytest.raises(TypeError, match="NoneType"):
        encode_command(("SET", "k", None))


@given(st.lists(st.one_of(st.text(), st.binary(), st.integers()), min_size=1, max_size=8))
def test_any_arguments_round_trip(arguments: list[str | bytes | int]) -> None:
    expected = [
        a.encode() if isinstance(a, str) else a if isinstance(a, bytes) else str(a).encode()
        for a in arguments
    ]
    assert _parse(encode_command(tuple(arguments))) == expected


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 70000])
def test_arguments_on_both_sides_of_the_prebuilt_length_headers(size: int) -> None:
    assert _parse(encode_command(("SET", "k", b"v" * size))) == [b"SET", b"k", b"v" * size]


@pytest.mark.parametrize("count", [63, 64, 65, 200])
def test_commands_on_both_sides_of_the_prebuilt_array_headers(count: int) -> None:
    arguments = tuple(f"a{n}" for n in range(count))
    assert _parse(encode_command(arguments)) == [a.encode() for a in arguments]
