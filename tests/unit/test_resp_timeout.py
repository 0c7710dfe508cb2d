"""The command-timeout watchdog of the pipelined connection, against a scripted server on
loopback: a server that stays silent fails every outstanding command, late replies of the
abandoned socket are never matched to newer requests, and a busy but answering
connection is never cut."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from microdcs.core.errors import StorageUnavailableError
from microdcs.storage.resp import RespConnection


class ScriptedServer:
    """Counts commands; answers ``+PONG`` unless told to stay silent."""

    def __init__(self) -> None:
        self.silent = False
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        silent = self.silent  # a socket keeps the behaviour it was opened with
        try:
            while data := await reader.read(65536):
                if not silent:
                    writer.write(b"+PONG\r\n" * data.count(b"PING"))
        except ConnectionError:
            pass


@pytest.fixture
async def server() -> AsyncIterator[tuple[ScriptedServer, int]]:
    script = ScriptedServer()
    listener = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield script, port
    finally:
        for writer in script.writers:
            writer.close()
        listener.close()


async def test_a_silent_server_fails_every_outstanding_command_within_the_timeout(
    server: tuple[ScriptedServer, int],
) -> None:
    script, port = server
    connection = RespConnection("127.0.0.1", port, command_timeout=0.2)
    assert await connection.execute("PING") == b"PONG"
    script.silent = True
    script.writers[0].close()  # the next command reconnects to a silent socket
    await asyncio.sleep(0.05)
    started = time.monotonic()
    replies = await asyncio.wait_for(
        asyncio.gather(*(connection.execute("PING") for _ in range(50)), return_exceptions=True),
        5,
    )
    assert time.monotonic() - started < 1.0
    assert all(isinstance(reply, StorageUnavailableError) for reply in replies)
    assert "did not answer within 0.2 s" in str(replies[0])
    assert not connection.connected  # dropped: late replies could not be matched
    script.silent = False
    assert await connection.execute("PING") == b"PONG"
    assert script.connections == 3
    connection.close()


async def test_late_replies_of_an_abandoned_socket_are_ignored(
    server: tuple[ScriptedServer, int],
) -> None:
    script, port = server
    script.silent = True
    connection = RespConnection("127.0.0.1", port, command_timeout=0.1)
    with pytest.raises(StorageUnavailableError):
        await asyncio.wait_for(connection.execute("PING"), 5)
    script.silent = False
    reply = connection.execute("PING")  # a new socket
    script.writers[0].write(b"-ERR late reply of the old socket\r\n")
    assert await asyncio.wait_for(reply, 5) == b"PONG"
    connection.close()


async def test_a_connection_that_keeps_answering_is_never_cut(
    server: tuple[ScriptedServer, int],
) -> None:
    _, port = server
    connection = RespConnection("127.0.0.1", port, command_timeout=0.1)
    deadline = time.monotonic() + 0.5  # five timeouts of steady traffic
    while time.monotonic() < deadline:
        assert await connection.execute("PING") == b"PONG"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # idle: nothing outstanding, nothing to time out
    assert connection.connected
    assert await connection.execute("PING") == b"PONG"
    connection.close()


async def test_close_fails_outstanding_commands(server: tuple[ScriptedServer, int]) -> None:
    script, port = server
    script.silent = True
    connection = RespConnection("127.0.0.1", port, command_timeout=5.0)
    await connection.connect()
    reply = connection.execute("PING")
    await asyncio.sleep(0.05)
    connection.close()
    with pytest.raises(StorageUnavailableError, match="closed"):
        await asyncio.wait_for(reply, 1)
