"""MessagePack-RPC framing and message shapes: pure logic, no sockets.

Frames are msgpack values back to back with no length prefix, so the only way to find
where one ends is to decode it. :class:`FrameDecoder` feeds bytes to a streaming
unpacker whose buffer is bounded, and turns every frame into a typed message or a
:class:`FrameError`. A frame that decodes but has the wrong shape is recoverable (the
next frame starts right after it); bytes that are not msgpack, or a frame larger than
the buffer, are *fatal*: the stream cannot be resynchronised and must be closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgpack

from microdcs.transports.msgpack_rpc.errors import (
    INVALID_FRAME,
    INVALID_REQUEST,
    PAYLOAD_TOO_LARGE,
)

REQUEST: Final = 0
RESPONSE: Final = 1
NOTIFICATION: Final = 2
MAX_MSGID: Final = 0xFFFFFFFF
#: Bytes of an unfinished frame kept to find its msgid if it turns out too large.
_HEAD_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class Request:
    """``[0, msgid, method, params]``: the peer waits for a response with ``msgid``."""

    msgid: int
    method: str
    params: list[Any]


@dataclass(frozen=True, slots=True)
class Response:
    """``[1, msgid, error, result]``: ``error`` is ``None`` on success."""

    msgid: int
    error: Any
    result: Any


@dataclass(frozen=True, slots=True)
class Notification:
    """``[2, method, params]``: no response."""

    method: str
    params: list[Any]


Message = Request | Response | Notification


class FrameError(Exception):
    """A frame that is not a valid message; ``msgid`` is set when it could be read."""

    def __init__(
        self, kind: str, message: str, *, msgid: int | None = None, fatal: bool = False
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.msgid = msgid
        self.fatal = fatal


class UnhashableMap:
    """Stands in for a msgpack map whose keys Python cannot hash (e.g. arrays).

    Keeping the decode going (instead of raising inside the unpacker) keeps the stream
    in sync; the message that contains it is then rejected as invalid params.
    """

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self.pairs = pairs

    def __repr__(self) -> str:
        return f"UnhashableMap({len(self.pairs)} pairs)"


def _pairs_to_dict(pairs: list[tuple[Any, Any]]) -> Any:
    try:
        return dict(pairs)
    except TypeError:
        return UnhashableMap(pairs)


def _valid_msgid(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_MSGID


def parse_message(frame: Any) -> Message:
    """The message a decoded frame carries; raises :class:`FrameError` for wrong shapes."""
    if not isinstance(frame, list) or not frame:
        raise FrameError(INVALID_FRAME, "a frame must be a non-empty array")
    kind = frame[0]
    if kind == REQUEST and type(kind) is int:
        if len(frame) < 2 or not _valid_msgid(frame[1]):
            raise FrameError(INVALID_FRAME, "request without a valid msgid (uint32)")
        msgid: int = frame[1]
        if len(frame) != 4:
            raise FrameError(INVALID_REQUEST, "a request has 4 elements", msgid=msgid)
        method, params = frame[2], frame[3]
        if not isinstance(method, str):
            raise FrameError(INVALID_REQUEST, "method must be a string", msgid=msgid)
        if not isinstance(params, list):
            raise FrameError(INVALID_REQUEST, "params must be an array", msgid=msgid)
        return Request(msgid, method, params)
    if kind == NOTIFICATION and type(kind) is int:
        if len(frame) != 3 or not isinstance(frame[1], str) or not isinstance(frame[2], list):
            raise FrameError(INVALID_FRAME, "a notification is [2, method, params]")
        return Notification(frame[1], frame[2])
    if kind == RESPONSE and type(kind) is int:
        if len(frame) != 4 or not _valid_msgid(frame[1]):
            raise FrameError(INVALID_FRAME, "a response is [1, msgid, error, result]")
        return Response(frame[1], frame[2], frame[3])
    raise FrameError(INVALID_FRAME, f"unknown message type {kind!r}")


def peek_msgid(head: bytes) -> int | None:
    """The msgid of a request from the first bytes of its frame, if they hold it."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(head), 1))
    unpacker.feed(head)
    try:
        if unpacker.read_array_header() != 4 or unpacker.unpack() != REQUEST:
            return None
        msgid = unpacker.unpack()
    except Exception:  # any incomplete or odd prefix: the msgid is simply unknown
        return None
    return msgid if _valid_msgid(msgid) else None


class FrameDecoder:
    """Splits a byte stream into messages; a frame may be at most ``max_buffer_bytes``.

    The size is counted from the end of the previous frame, not from the unpacker's
    buffer: the unpacker discards bytes it has already turned into partial objects, so
    its own limit would let an endless array grow in memory. Once a fatal error was
    returned the decoder is spent and the caller closes the stream.
    """

    def __init__(self, max_buffer_bytes: int) -> None:
        self._max = max_buffer_bytes
        self._unpacker: Any = None
        self._fed = 0
        self._frame_start = 0
        self._head = b""
        self.failed = False

    @property
    def buffered(self) -> int:
        """Bytes of the unfinished frame received so far."""
        return self._fed - self._frame_start

    def feed(self, data: bytes) -> list[Message | FrameError]:
        """Messages and errors of the frames completed by ``data``, in stream order."""
        if self.failed:
            return []
        out: list[Message | FrameError] = []
        if self._unpacker is None:
            self._unpacker = self._new_unpacker()
        view = memoryview(data)
        while view:
            room = self._max - self.buffered
            if room <= 0:
                out.append(self._fail_too_large())
                break
            part = view[:room]
            start = self._fed
            self._unpacker.feed(part)
            self._fed += len(part)
            if not self._drain(out, part, start):
                break
            self._remember_head(part, start)
            view = view[len(part) :]
        if self.buffered == 0 and not self.failed:
            # An unpacker holds ~45 KB (its parse stack); idle connections should not.
            self._unpacker = None
            self._fed = self._frame_start = 0
        return out

    def _new_unpacker(self) -> Any:
        return msgpack.Unpacker(
            raw=False,
            strict_map_key=False,
            object_pairs_hook=_pairs_to_dict,
            max_buffer_size=self._max,
            read_size=min(4096, self._max),
        )

    def _drain(self, out: list[Message | FrameError], part: memoryview, start: int) -> bool:
        unpacker = self._unpacker
        while True:
            try:
                frame = next(unpacker)
            except StopIteration:
                return True
            except ValueError as exc:  # FormatError, StackError and the length limits
                if "exceeds max_" in str(exc):
                    self._remember_head(part, start)
                    out.append(self._fail_too_large())
                else:
                    self.failed = True
                    out.append(FrameError(INVALID_FRAME, f"not msgpack: {exc}", fatal=True))
                return False
            self._frame_start = unpacker.tell()
            self._head = b""
            try:
                out.append(parse_message(frame))
            except FrameError as error:
                out.append(error)

    def _remember_head(self, part: memoryview, start: int) -> None:
        """Keep the first bytes of the unfinished frame, to name its msgid if too large."""
        if len(self._head) >= _HEAD_BYTES or self._frame_start == self._fed:
            return
        offset = max(self._frame_start - start, 0)
        self._head += bytes(part[offset : offset + _HEAD_BYTES - len(self._head)])

    def _fail_too_large(self) -> FrameError:
        self.failed = True
        return FrameError(
            PAYLOAD_TOO_LARGE,
            f"frame exceeds the limit of {self._max} bytes",
            msgid=peek_msgid(self._head),
            fatal=True,
        )


def _default(value: Any) -> Any:
    if isinstance(value, UnhashableMap):
        return value.pairs
    raise TypeError(f"cannot pack {type(value).__name__}")


class FrameEncoder:
    """Packs outgoing messages.

    A ``Packer`` keeps a 256 KB buffer, so one is shared by all connections of an event
    loop; that is safe because packing never awaits.
    """

    def __init__(self) -> None:
        self._packer = msgpack.Packer(use_bin_type=True, default=_default)

    def request(self, msgid: int, method: str, params: list[Any]) -> bytes:
        return bytes(self._packer.pack([REQUEST, msgid, method, params]))

    def response(self, msgid: int, error: Any, result: Any) -> bytes:
        return bytes(self._packer.pack([RESPONSE, msgid, error, result]))

    def notification(self, method: str, params: list[Any]) -> bytes:
        return bytes(self._packer.pack([NOTIFICATION, method, params]))
