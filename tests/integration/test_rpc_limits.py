"""Limits of the MessagePack-RPC server against real sockets (issue 12, defect 9).

Connection limit, authentication and idle timeouts, the failed-token back-off and
per-sidecar tokens with scopes; each was missing before: any number of idle sockets,
unlimited token guessing, one token for every scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from microdcs.examples.greeting import GreetingProcessor, GreetingResponse
from microdcs.transports.msgpack_rpc import MessagePackRpcClient
from tests.integration.test_msgpack_rpc_helpers import (
    RawClient,
    SlowProcessor,
    eventually,
    greeting_event,
    raw_client,
    rpc_config,
    serving,
    slow_event,
)

TOKEN = "s3cret-token"


def error_kind(response: Any) -> str:
    assert response[0] == 1 and response[3] is None, response
    kind: str = response[2]["kind"]
    return kind


async def goodbye(client: RawClient, within: float = 5.0) -> str:
    """The kind of the ``error`` notification the server sends before it closes."""
    frame = await client.recv(within)
    assert frame[:2] == [2, "error"], frame
    kind: str = frame[2][0]["kind"]
    assert await client.closed(within)
    return kind


@contextlib.asynccontextmanager
async def many_clients(port: int, count: int) -> AsyncIterator[list[RawClient]]:
    clients = [await RawClient.connect(port) for _ in range(count)]
    try:
        yield clients
    finally:
        await asyncio.gather(*(client.close() for client in clients))


# -- connection limit ----------------------------------------------------------------------
async def test_a_connection_beyond_the_limit_is_closed_and_the_others_keep_working() -> None:
    async with (
        serving(rpc_config(max_connections=3)) as server,
        many_clients(server.port, 3) as admitted,
    ):
        for n, client in enumerate(admitted):
            assert (await client.call(n, "heartbeat", n))[3] == n
        async with raw_client(server.port) as extra:
            assert await extra.closed(2.0)
        assert server.connection_stats.refused_connections == 1
        for n, client in enumerate(admitted):
            assert (await client.call(10 + n, "publish", greeting_event()))[2] is None


async def test_more_connections_than_the_limit_leave_it_holding_and_free_slots_serve() -> None:
    """fd exhaustion: 300 idle sockets against a limit of 50; a real client gets in after."""
    config = rpc_config(max_connections=50)
    async with serving(config) as server:
        async with many_clients(server.port, 300) as flood:
            await eventually(lambda: server.connection_stats.refused_connections == 250)
            assert server.connection_stats.open == 50
            assert len(server.connections) == 50
            closed = await asyncio.gather(*(client.closed(0.5) for client in flood))
            assert closed.count(True) == 250  # the rest are held open, idle
            assert server.ready
            async with raw_client(server.port) as late:  # still full
                assert await late.closed(2.0)
        await eventually(lambda: server.connection_stats.open == 0)
        async with MessagePackRpcClient("127.0.0.1", server.port, reconnect=False) as rpc:
            [response] = await rpc.publish(greeting_event("Ada"))
        assert response["data"]["greeting"] == "Hello, Ada!"


async def test_unauthenticated_sockets_holding_every_slot_are_reclaimed_for_a_sidecar() -> None:
    config = rpc_config(max_connections=20, token=TOKEN, auth_timeout=0.3)
    async with serving(config) as server, many_clients(server.port, 20):
        await eventually(lambda: server.connection_stats.open == 20)
        await eventually(lambda: server.connection_stats.open == 0, within=3.0)
        async with MessagePackRpcClient("127.0.0.1", server.port, token=TOKEN) as rpc:
            assert (await rpc.publish(greeting_event()))[0]["data"]["name"] == "Ada"


# -- authentication timeout ----------------------------------------------------------------
async def test_a_connection_that_does_not_authenticate_in_time_is_closed() -> None:
    config = rpc_config(token=TOKEN, auth_timeout=0.3)
    async with serving(config) as server, raw_client(server.port) as client:
        started = time.monotonic()
        assert await goodbye(client) == "auth_timeout"
        assert 0.25 < time.monotonic() - started < 3.0
        assert server.connection_stats.auth_timeouts == 1


async def test_requests_before_authenticate_do_not_extend_the_deadline() -> None:
    config = rpc_config(token=TOKEN, auth_timeout=0.4)
    async with serving(config) as server, raw_client(server.port) as client:
        started = time.monotonic()
        for n in range(30):
            frame = await client.call(n, "publish", greeting_event())
            if frame[0] == 2:
                break
            assert error_kind(frame) == "unauthenticated"
            await asyncio.sleep(0.1)
        assert frame[:2] == [2, "error"] and frame[2][0]["kind"] == "auth_timeout"
        assert time.monotonic() - started < 1.5
        assert await client.closed()


async def test_an_authenticated_connection_outlives_the_authentication_timeout() -> None:
    config = rpc_config(token=TOKEN, auth_timeout=0.2)
    async with serving(config) as server, raw_client(server.port) as client:
        assert await client.call(1, "authenticate", TOKEN) == [1, 1, None, True]
        await asyncio.sleep(0.5)
        assert (await client.call(2, "heartbeat", 2))[3] == 2
        assert server.connection_stats.auth_timeouts == 0


# -- idle timeout --------------------------------------------------------------------------
async def test_a_silent_connection_is_closed_after_the_idle_timeout() -> None:
    async with serving(rpc_config(idle_timeout=0.3)) as server, raw_client(server.port) as client:
        assert (await client.call(1, "heartbeat", 1))[3] == 1
        started = time.monotonic()
        assert await goodbye(client) == "idle_timeout"
        assert 0.25 < time.monotonic() - started < 3.0
        assert server.connection_stats.idle_timeouts == 1


async def test_heartbeats_keep_a_connection_open() -> None:
    async with serving(rpc_config(idle_timeout=0.3)) as server, raw_client(server.port) as client:
        for _ in range(10):
            await client.send([2, "heartbeat", [time.time()]])
            await asyncio.sleep(0.1)
        assert (await client.call(1, "heartbeat", 1))[3] == 1
        assert server.connection_stats.idle_timeouts == 0


async def test_a_request_in_progress_is_not_silence() -> None:
    slow = SlowProcessor()
    async with (
        serving(rpc_config(idle_timeout=0.2), [slow]) as server,
        raw_client(server.port) as client,
    ):
        await client.send([0, 1, "publish", [slow_event()]])
        await eventually(lambda: slow.waiting == 1)
        await asyncio.sleep(0.6)
        slow.gate.set()
        assert (await client.recv())[:3] == [1, 1, None]
        assert server.connection_stats.idle_timeouts == 0


async def test_the_client_heartbeats_so_a_quiet_sidecar_stays_connected() -> None:
    async with (
        serving(rpc_config(idle_timeout=0.3)) as server,
        MessagePackRpcClient(
            "127.0.0.1", server.port, heartbeat_interval=0.1, reconnect=False
        ) as rpc,
    ):
        await asyncio.sleep(1.0)
        assert rpc.connected
        assert server.connection_stats.idle_timeouts == 0
        assert (await rpc.publish(greeting_event()))[0]["data"]["name"] == "Ada"


async def test_idle_timeout_zero_is_off() -> None:
    async with serving(rpc_config(idle_timeout=0.0)) as server, raw_client(server.port) as client:
        await asyncio.sleep(0.5)
        assert (await client.call(1, "heartbeat", 1))[3] == 1


# -- failed-token back-off -----------------------------------------------------------------
async def test_wrong_tokens_cannot_be_tried_quickly_over_new_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = rpc_config(token=TOKEN, auth_backoff=5.0)
    caplog.set_level(logging.WARNING, logger="microdcs.transports.msgpack_rpc")
    async with serving(config) as server:
        kinds = []
        started = time.monotonic()
        for n in range(200):
            async with raw_client(server.port) as client:
                kinds.append(error_kind(await client.call(n, "authenticate", f"guess-{n}")))
        assert time.monotonic() - started < 5.0
    assert kinds[0] == "unauthenticated"
    assert set(kinds[1:]) == {"auth_throttled"}
    assert server.connection_stats.auth_failures == 1  # only one guess was checked
    assert server.connection_stats.auth_throttled == 199
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one for the wrong token, one for the burst of refusals


async def test_even_the_right_token_waits_out_the_backoff() -> None:
    config = rpc_config(token=TOKEN, auth_backoff=0.4)
    async with serving(config) as server:
        async with raw_client(server.port) as client:
            assert error_kind(await client.call(1, "authenticate", "wrong")) == "unauthenticated"
        async with raw_client(server.port) as client:
            assert error_kind(await client.call(2, "authenticate", TOKEN)) == "auth_throttled"
            assert await client.closed()
        await asyncio.sleep(0.5)
        async with raw_client(server.port) as client:
            assert await client.call(3, "authenticate", TOKEN) == [1, 3, None, True]


async def test_the_backoff_grows_with_each_failure() -> None:
    config = rpc_config(token=TOKEN, auth_backoff=0.2, auth_backoff_max=10.0)
    async with serving(config) as server:
        for n in range(3):
            async with raw_client(server.port) as client:
                assert error_kind(await client.call(n, "authenticate", "wrong")) == (
                    "unauthenticated"
                )
            await asyncio.sleep(0.2 * 2**n + 0.05)
        async with raw_client(server.port) as client:  # 4th failure: blocked 1.6 s
            assert error_kind(await client.call(9, "authenticate", "wrong")) == "unauthenticated"
        await asyncio.sleep(0.9)
        async with raw_client(server.port) as client:
            response = await client.call(10, "authenticate", TOKEN)
        assert error_kind(response) == "auth_throttled"
        assert server.connection_stats.auth_failures == 4


async def test_the_client_waits_out_a_backoff_instead_of_giving_up() -> None:
    config = rpc_config(token=TOKEN, auth_backoff=0.3)
    async with serving(config) as server:
        async with raw_client(server.port) as client:
            await client.call(1, "authenticate", "wrong")
        async with MessagePackRpcClient("127.0.0.1", server.port, token=TOKEN) as rpc:
            assert (await rpc.publish(greeting_event()))[0]["data"]["name"] == "Ada"
        assert server.connection_stats.auth_throttled >= 1


# -- per-sidecar tokens and scopes ---------------------------------------------------------
def tokens_file(tmp_path: Path) -> str:
    path = tmp_path / "rpc-tokens.json"
    path.write_text(
        json.dumps(
            {
                "line2-adapter": {"token": "token-line2", "scopes": ["plant1.line2"]},
                "line3-adapter": {"token": "token-line3", "scopes": ["plant1.line3"]},
                "mes-bridge": {"token": "token-mes-1", "scopes": ["*"]},
            }
        )
    )
    return str(path)


async def test_a_sidecar_may_publish_only_within_its_scopes(tmp_path: Path) -> None:
    config = rpc_config(tokens_file=tokens_file(tmp_path))
    async with serving(config) as server, raw_client(server.port) as client:
        assert await client.call(1, "authenticate", "token-line2") == [1, 1, None, True]
        own = await client.call(2, "publish", greeting_event(subject="plant1.line2.cell4"))
        assert own[2] is None and own[3][0]["subject"] == "plant1.line2.cell4"
        other = await client.call(3, "publish", greeting_event(subject="plant1.line3"))
        assert error_kind(other) == "forbidden"
        assert error_kind(await client.call(4, "publish", greeting_event())) == "forbidden"
        await client.send([2, "publish", [greeting_event(subject="plant1.line20")]])
        frame = await client.recv()
        assert frame[:2] == [2, "error"] and frame[2][0]["kind"] == "forbidden"
    assert server.stats.failed["forbidden"] == 3
    assert server.connection_stats.forbidden == 3
    assert server.stats.processed == 1


async def test_a_sidecar_is_pushed_only_the_events_of_its_scopes(tmp_path: Path) -> None:
    processor = GreetingProcessor(source="microdcs/test")
    config = rpc_config(tokens_file=tokens_file(tmp_path))
    async with (
        serving(config, [processor]) as server,
        raw_client(server.port) as line2,
        raw_client(server.port) as line3,
        raw_client(server.port) as mes,
    ):
        await line2.call(1, "authenticate", "token-line2")
        await line3.call(1, "authenticate", "token-line3")
        await mes.call(1, "authenticate", "token-mes-1")
        for subject in ("plant1.line3.cell1", None, "plant1.line2"):
            await processor.publish(GreetingResponse(greeting="g", name="n"), subject=subject)
        assert (await line2.recv())[2][0]["subject"] == "plant1.line2"
        assert (await line3.recv())[2][0]["subject"] == "plant1.line3.cell1"
        assert [(await mes.recv())[2][0].get("subject") for _ in range(3)] == [
            "plant1.line3.cell1",
            None,
            "plant1.line2",
        ]
        for client in (line2, line3):  # nothing else was queued for them
            assert (await client.call(5, "heartbeat", 5))[3] == 5


async def test_the_shared_token_still_acts_on_all_scopes(tmp_path: Path) -> None:
    config = rpc_config(token=TOKEN, tokens_file=tokens_file(tmp_path))
    async with serving(config) as server, raw_client(server.port) as client:
        assert await client.call(1, "authenticate", TOKEN) == [1, 1, None, True]
        for n, subject in enumerate(("plant1.line2", "plant9", None)):
            assert (await client.call(2 + n, "publish", greeting_event(subject=subject)))[2] is None


async def test_a_scoped_token_works_with_the_client(tmp_path: Path) -> None:
    config = rpc_config(tokens_file=tokens_file(tmp_path))
    async with (
        serving(config) as server,
        MessagePackRpcClient("127.0.0.1", server.port, token="token-line3") as rpc,
    ):
        [response] = await rpc.publish(greeting_event(subject="plant1.line3"))
        assert response["subject"] == "plant1.line3"


# -- file descriptors ----------------------------------------------------------------------
SERVER_UNDER_FD_LIMIT = """
import asyncio, resource, sys
from microdcs.examples.greeting import GreetingProcessor
from tests.integration.test_msgpack_rpc_helpers import rpc_config, rpc_handler

resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

async def health(reader, writer):  # stands in for /healthz: needs a descriptor per request
    writer.write(b"ok")
    await writer.drain()
    writer.close()

async def main():
    handler = rpc_handler(rpc_config(max_connections=64))
    handler.bind(GreetingProcessor(source="microdcs/test"))
    shutdown = asyncio.Event()
    task = asyncio.create_task(handler.run(shutdown))
    await handler.wait_ready()
    probe = await asyncio.start_server(health, "127.0.0.1", 0)
    print(handler.port, probe.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    shutdown.set()
    await task

asyncio.run(main())
"""


async def probe(port: int) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2.0)
    try:
        return await asyncio.wait_for(reader.read(), 2.0)
    finally:
        writer.close()


async def test_idle_sockets_beyond_the_fd_limit_leave_the_process_healthy() -> None:
    """400 idle sockets against a process limited to 128 descriptors (limit 64)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVER_UNDER_FD_LIMIT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        rpc_port, probe_port = map(int, line.split())
        async with many_clients(rpc_port, 400) as flood:
            await asyncio.sleep(0.5)
            assert await probe(probe_port) == b"ok"
            closed = await asyncio.gather(*(client.closed(0.5) for client in flood))
            assert closed.count(True) == 336
        await asyncio.sleep(0.3)
        async with MessagePackRpcClient("127.0.0.1", rpc_port, reconnect=False) as rpc:
            assert (await rpc.publish(greeting_event()))[0]["data"]["name"] == "Ada"
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
