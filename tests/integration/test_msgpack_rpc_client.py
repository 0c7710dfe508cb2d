"""Our MessagePack-RPC client against the server: calls, notifications, reconnect, auth."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from microdcs.examples.greeting import GreetingProcessor, GreetingResponse
from microdcs.storage.dedupe import Deduplicator
from microdcs.storage.redis import RedisStore
from microdcs.transports.msgpack_rpc import (
    MessagePackRpcClient,
    RpcAuthenticationError,
    RpcConnectionError,
    RpcError,
    RpcTimeoutError,
)
from microdcs.transports.msgpack_rpc.client import Notified
from tests.conftest import RedisServer, redis_config
from tests.integration.test_msgpack_rpc_helpers import (
    SlowProcessor,
    eventually,
    greeting_event,
    rpc_config,
    rpc_handler,
    serving,
    slow_event,
)


async def test_publish_returns_response_events() -> None:
    async with serving() as server, MessagePackRpcClient("127.0.0.1", server.port) as client:
        [response] = await client.publish(greeting_event("Ada"))
    assert response["data"]["greeting"] == "Hello, Ada!"


async def test_error_response_raises_a_typed_rpc_error() -> None:
    async with serving() as server, MessagePackRpcClient("127.0.0.1", server.port) as client:
        with pytest.raises(RpcError) as caught:
            await client.call("frobnicate")
        assert caught.value.kind == "unknown_method"
        assert await client.call("heartbeat", 5) == 5


async def test_concurrent_calls_are_matched_to_their_responses() -> None:
    async with serving() as server, MessagePackRpcClient("127.0.0.1", server.port) as client:
        results = await asyncio.gather(
            *(client.publish(greeting_event(f"n{i}")) for i in range(64))
        )
    assert [r[0]["data"]["name"] for r in results] == [f"n{i}" for i in range(64)]


async def test_notifications_arrive_through_the_async_iterator() -> None:
    processor = GreetingProcessor(source="microdcs/test")
    async with (
        serving(processors=[processor]) as server,
        MessagePackRpcClient("127.0.0.1", server.port) as client,
    ):
        await eventually(lambda: len(server.connections) == 1)
        await processor.publish(GreetingResponse(greeting="g", name="n"), subject="s")
        async with asyncio.timeout(5):
            received = [n async for n in _first(client.notifications())]
    [(method, params)] = received
    assert method == "cloudevent"
    assert params[0]["subject"] == "s" and params[1] == "events"


async def _first(items: AsyncIterator[Notified]) -> AsyncIterator[Notified]:
    async for item in items:
        yield item
        return


async def test_notify_sends_without_waiting_for_an_answer() -> None:
    async with serving() as server, MessagePackRpcClient("127.0.0.1", server.port) as client:
        await client.notify("publish", greeting_event())
        await eventually(lambda: server.stats.processed == 1)


async def test_call_timeout_raises_rpc_timeout_error() -> None:
    slow = SlowProcessor()
    async with (
        serving(processors=[slow]) as server,
        MessagePackRpcClient("127.0.0.1", server.port) as client,
    ):
        with pytest.raises(RpcTimeoutError):
            await client.publish(slow_event(), timeout=0.1)
        slow.gate.set()


async def test_connecting_to_nothing_raises_rpc_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RpcConnectionError):
        async with MessagePackRpcClient("127.0.0.1", port, connect_timeout=0.3):
            pass


async def test_client_reconnects_after_the_server_restarts() -> None:
    config = rpc_config()
    async with serving(config) as first:
        port = first.port
        client = MessagePackRpcClient("127.0.0.1", port, reconnect_max_seconds=0.2)
        await client.__aenter__()
        assert await client.call("heartbeat", 1) == 1
    try:
        with pytest.raises(RpcConnectionError):
            await client.call("heartbeat", 2, timeout=0.3)
        async with serving(rpc_config(port=port)):
            assert await client.call("heartbeat", 3, timeout=5) == 3
    finally:
        await client.__aexit__(None, None, None)


async def test_calls_in_flight_fail_when_the_connection_drops() -> None:
    slow = SlowProcessor()
    async with serving(processors=[slow]) as server:
        async with MessagePackRpcClient("127.0.0.1", server.port, reconnect=False) as client:
            call = asyncio.create_task(client.publish(slow_event()))
            await eventually(lambda: slow.waiting == 1)
            for connection in server.connections:
                connection.abort()
            with pytest.raises(RpcConnectionError):
                await call
            with pytest.raises(RpcConnectionError):
                await client.call("heartbeat")
        slow.gate.set()


async def test_client_authenticates_with_its_token() -> None:
    async with (
        serving(rpc_config(token="s3cret")) as server,
        MessagePackRpcClient("127.0.0.1", server.port, token="s3cret") as client,
    ):
        assert (await client.publish(greeting_event()))[0]["data"]["name"] == "Ada"


async def test_wrong_token_raises_authentication_error() -> None:
    async with serving(rpc_config(token="s3cret")) as server:
        with pytest.raises(RpcAuthenticationError):
            async with MessagePackRpcClient("127.0.0.1", server.port, token="nope"):
                pass


async def test_leaving_the_block_ends_the_notification_iterator() -> None:
    async with serving() as server:
        client = MessagePackRpcClient("127.0.0.1", server.port)
        async with client:
            pass
        async with asyncio.timeout(2):
            assert [n async for n in client.notifications()] == []


async def test_duplicate_publish_gets_the_same_responses_once_processed(
    redis_server: RedisServer,
) -> None:
    config = rpc_config()
    redis = redis_config(redis_server, key_prefix=config.instance_id)
    async with RedisStore(redis) as store:
        handler_dedupe = Deduplicator(store, 60)
        async with (
            serving(config, dedupe=handler_dedupe) as server,
            MessagePackRpcClient("127.0.0.1", server.port) as client,
        ):
            event = greeting_event("Dup", id="dup-1")
            first = await client.publish(event)
            second = await client.publish(event)
    assert first == second
    assert server.stats.processed == 1 and server.stats.duplicates == 1


def test_handler_is_a_protocol_handler() -> None:
    handler = rpc_handler(rpc_config())
    assert handler.name == "rpc"
    assert handler.ready is False
    with pytest.raises(RuntimeError):
        _ = handler.port
