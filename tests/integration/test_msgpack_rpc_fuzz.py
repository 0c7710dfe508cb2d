"""Random bytes and random frames never stop the MessagePack-RPC server.

The server runs in a thread with its own event loop for the whole module; every example
talks to it over a blocking socket, half-closes, reads everything the server says until
it hangs up, and then checks that a valid request on a new connection still works.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microdcs.transports.msgpack_rpc import MessagePackRpcHandler
from tests.integration.test_msgpack_rpc_helpers import greeting_event, rpc_config, serving


class ThreadedServer:
    """The RPC handler served by an event loop in a background thread."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.stop: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.handler: MessagePackRpcHandler | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        try:
            async with serving(rpc_config(max_buffer_bytes=8192)) as handler:
                self.handler = handler
                self.ready.set()
                await self.stop.wait()
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            raise

    @property
    def port(self) -> int:
        assert self.handler is not None
        return self.handler.port


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    running = ThreadedServer()
    running.thread.start()
    assert running.ready.wait(10) and running.error is None
    yield running
    assert running.loop is not None and running.stop is not None
    running.loop.call_soon_threadsafe(running.stop.set)
    running.thread.join(10)
    assert running.error is None


def exchange(port: int, data: bytes) -> list[Any]:
    """Send ``data``, half-close, and decode everything the server sends back."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(ConnectionError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        with contextlib.suppress(ConnectionError):
            while chunk := sock.recv(65536):
                received += chunk
    return _frames(bytes(received))


def _frames(data: bytes) -> list[Any]:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(data)
    return list(unpacker)


def assert_well_formed(frames: list[Any]) -> None:
    for frame in frames:
        if frame[0] == 1:
            assert len(frame) == 4 and isinstance(frame[1], int)
            assert frame[2] is None or set(frame[2]) == {"kind", "message"}
        else:
            assert frame[0] == 2 and frame[1] == "error"
            assert set(frame[2][0]) == {"kind", "message"}


def assert_still_serving(server: ThreadedServer) -> None:
    frame = msgpack.packb([0, 1, "publish", [greeting_event("after")]])
    [response] = exchange(server.port, frame)
    assert response[:3] == [1, 1, None]
    assert response[3][0]["data"]["name"] == "after"


integers = st.integers(min_value=-(2**63), max_value=2**64 - 1)
values = st.recursive(
    st.none()
    | st.booleans()
    | integers
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | integers, children, max_size=4)
    ),
    max_leaves=12,
)
methods = st.sampled_from(["publish", "heartbeat", "authenticate", "nope", ""]) | st.text(
    max_size=8
)
frames = st.one_of(
    values,
    st.tuples(st.sampled_from([0, 1, 2, 3, -1]), values, methods, values).map(list),
    st.tuples(st.just(0), st.integers(0, 2**32 - 1), methods, st.lists(values, max_size=3)).map(
        list
    ),
    st.tuples(st.just(2), methods, st.lists(values, max_size=3)).map(list),
    st.builds(
        lambda event, mutation: [0, 5, "publish", [{**event, **mutation}]],
        st.builds(greeting_event),
        st.dictionaries(
            st.sampled_from(["id", "source", "type", "specversion", "data", "datacontenttype"]),
            values,
            max_size=3,
        ),
    ),
)
fuzz = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@fuzz
@given(data=st.binary(max_size=2048))
def test_random_bytes_never_stop_the_server(server: ThreadedServer, data: bytes) -> None:
    exchange(server.port, data)
    assert_still_serving(server)


@fuzz
@given(batch=st.lists(frames, min_size=1, max_size=5))
def test_random_frames_get_well_formed_answers(server: ThreadedServer, batch: list[Any]) -> None:
    data = b"".join(msgpack.packb(frame, use_bin_type=True) for frame in batch)
    assert_well_formed(exchange(server.port, data))
    assert_still_serving(server)


@fuzz
@given(prefix=st.lists(frames, max_size=3), junk=st.binary(min_size=1, max_size=64))
def test_valid_frames_then_junk_are_answered_before_the_close(
    server: ThreadedServer, prefix: list[Any], junk: bytes
) -> None:
    data = b"".join(msgpack.packb(frame, use_bin_type=True) for frame in prefix)
    answers = exchange(server.port, data + b"\xc1" + junk)
    assert_well_formed(answers)
    assert any(a[:2] == [2, "error"] and a[2][0]["kind"] == "invalid_frame" for a in answers)
    assert_still_serving(server)
