"""Redis Cluster key slots, and which node a command goes to: pure logic, no I/O.

A key's slot is the CRC16 (XMODEM, as in the Redis Cluster specification) of the key, or
of its hash tag (what lies between the first ``{`` and the first ``}`` after it, when not
empty), modulo 16384. ``binascii.crc_hqx`` is that CRC in C: a slot costs well under a
microsecond, so the hot path computes it for every command.

:func:`route_of` says how a command's node is found (its first key, the first key of a
script call, several keys that may have to be split per slot, every primary, or any
node); :func:`split` and :func:`merge` cut a multi-key command into one command per slot
and put the replies back together in the order of the keys.
"""

from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Slots of a Redis Cluster.
SLOTS = 16384

#: How a command is routed.
KEY = 0  #: by its first argument (GET, SET, HGET, ..., XADD, XACK)
SCRIPT = 1  #: EVAL/EVALSHA: the first key after numkeys; no keys: any primary
MULTI = 2  #: every argument is a key (MGET, DEL, ...): split per slot, replies merged
STREAMS = 3  #: XREAD/XREADGROUP: the keys after STREAMS, split per slot, merged
ALL = 4  #: every primary (SCRIPT LOAD, PING, ...): the first primary's reply
ANY = 5  #: keyless (INFO, CLUSTER, ...): the first primary

#: Routes of the commands not routed by their first key, under the spellings callers use
#: (upper and lower case, text and bytes): one dict lookup on the hot path.
ROUTES: dict[Any, int] = {
    "EVAL": SCRIPT,
    "EVALSHA": SCRIPT,
    "EVAL_RO": SCRIPT,
    "EVALSHA_RO": SCRIPT,
    "FCALL": SCRIPT,
    "FCALL_RO": SCRIPT,
    "MGET": MULTI,
    "DEL": MULTI,
    "UNLINK": MULTI,
    "EXISTS": MULTI,
    "TOUCH": MULTI,
    "XREAD": STREAMS,
    "XREADGROUP": STREAMS,
    "SCRIPT": ALL,
    "PING": ALL,
    "FUNCTION": ALL,
    "FLUSHALL": ALL,
    "FLUSHDB": ALL,
    "INFO": ANY,
    "CLUSTER": ANY,
    "TIME": ANY,
    "ECHO": ANY,
    "CONFIG": ANY,
    "CLIENT": ANY,
    "COMMAND": ANY,
    "DBSIZE": ANY,
    "WAIT": ANY,
    "ASKING": ANY,
    "READONLY": ANY,
    "HELLO": ANY,
    "AUTH": ANY,
    "SELECT": ANY,
}
for _name, _route in list(ROUTES.items()):
    for _spelling in (_name.lower(), _name.encode(), _name.lower().encode()):
        ROUTES[_spelling] = _route

#: Replies of the keys of a MULTI command that are counts (summed when split).
_COUNTING = frozenset({"DEL", "UNLINK", "EXISTS", "TOUCH"})


def key_bytes(key: Any) -> bytes:
    """A key as the bytes Redis hashes (encoded as the RESP connection encodes it)."""
    kind = type(key)
    if kind is str:
        return key.encode()  # type: ignore[no-any-return]
    if kind is bytes:
        return key  # type: ignore[no-any-return]
    if kind is int:
        return b"%d" % key
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key)
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, float):
        return repr(key).encode("ascii")
    raise TypeError(f"cannot use {type(key).__name__} as a Redis key")


def key_slot(key: Any) -> int:
    """The cluster slot of ``key``, honouring its hash tag ``{...}``."""
    data = key_bytes(key)
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return crc_hqx(data, 0) & 0x3FFF


def route_of(name: Any) -> int:
    """How the command ``name`` is routed (:data:`KEY` unless listed otherwise)."""
    route = ROUTES.get(name)
    if route is not None:
        return route
    text = name.decode("ascii", "replace") if isinstance(name, bytes | bytearray) else str(name)
    return ROUTES.get(text.upper(), KEY)


def script_key(args: Sequence[Any]) -> Any | None:
    """The first key of ``EVALSHA sha numkeys key...``; None when it has no keys."""
    try:
        numkeys = int(args[2])
    except (IndexError, TypeError, ValueError):
        return None
    return args[3] if numkeys > 0 and len(args) > 3 else None


def streams_index(args: Sequence[Any]) -> int | None:
    """The position of ``STREAMS`` in an ``XREAD``/``XREADGROUP`` (options skipped by
    their arity, so a group or consumer named "streams" is not taken for it)."""
    index = 1
    count = len(args)
    while index < count:
        word = args[index]
        text = (word.decode("ascii", "replace") if isinstance(word, bytes) else str(word)).upper()
        if text == "STREAMS":
            return index
        index += 3 if text == "GROUP" else 2 if text in ("COUNT", "BLOCK") else 1
    return None


def command_keys(route: int, args: Sequence[Any]) -> list[Any]:
    """The keys of a :data:`MULTI` or :data:`STREAMS` command, in order."""
    if route == MULTI:
        return list(args[1:])
    index = streams_index(args)
    if index is None:
        return []
    streams = len(args) - index - 1
    return list(args[index + 1 : index + 1 + streams // 2])


@dataclass(frozen=True, slots=True)
class Part:
    """One command of a split: its slot, the positions of its keys in the original
    command's keys, and the command itself."""

    slot: int
    positions: tuple[int, ...]
    args: tuple[Any, ...]


def split(route: int, args: Sequence[Any], slots: Sequence[int]) -> list[Part]:
    """One command per slot (in the order slots first appear); ``slots`` are those of
    :func:`command_keys`, one per key."""
    groups: dict[int, list[int]] = {}
    for position, slot in enumerate(slots):
        groups.setdefault(slot, []).append(position)
    parts = []
    if route == MULTI:
        head = tuple(args[:1])
        for slot, positions in groups.items():
            parts.append(Part(slot, tuple(positions), head + tuple(args[1 + p] for p in positions)))
        return parts
    index = streams_index(args)
    assert index is not None  # slots came from command_keys
    head = tuple(args[: index + 1])
    keys = args[index + 1 : index + 1 + len(slots)]
    ids = args[index + 1 + len(slots) :]
    for slot, positions in groups.items():
        chosen = tuple(keys[p] for p in positions) + tuple(ids[p] for p in positions)
        parts.append(Part(slot, tuple(positions), head + chosen))
    return parts


def merge(route: int, args: Sequence[Any], parts: Sequence[Part], replies: Sequence[Any]) -> Any:
    """The reply the unsplit command would have had, from the replies of its parts.

    MGET: the values in key order. DEL, UNLINK, EXISTS, TOUCH: the sum. XREAD: the
    streams that have entries, in key order, nil when none has.
    """
    if route == MULTI:
        name = route_of_name(args[0])
        if name in _COUNTING:
            return sum(int(reply) for reply in replies)
        values: list[Any] = [None] * sum(len(part.positions) for part in parts)
        for part, reply in zip(parts, replies, strict=True):
            for position, value in zip(part.positions, reply, strict=True):
                values[position] = value
        return values
    found: list[tuple[int, Any]] = []
    for part, reply in zip(parts, replies, strict=True):
        if not reply:
            continue
        order = {key_bytes(part.args[-2 * len(part.positions) + i]): p
                 for i, p in enumerate(part.positions)}  # fmt: skip
        streams = reply.items() if isinstance(reply, dict) else reply
        for stream in streams:
            found.append((order.get(key_bytes(stream[0]), 0), stream))
    if not found:
        return None
    found.sort(key=lambda item: item[0])
    return [list(stream) for _, stream in found]


def route_of_name(name: Any) -> str:
    """The command name upper-case, as text."""
    text = name.decode("ascii", "replace") if isinstance(name, bytes | bytearray) else str(name)
    return text.upper()
