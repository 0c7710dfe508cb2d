"""The MessagePack-RPC server against a raw msgpack client (an independent implementation)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from microdcs.examples.greeting import GREETING_TYPE, GreetingProcessor, GreetingResponse
from microdcs.processing.routing import Intent
from tests.integration.test_msgpack_rpc_helpers import (
    SlowProcessor,
    eventually,
    greeting_event,
    raw_client,
    rpc_config,
    rpc_handler,
    serving,
    slow_event,
)


def error_kind(response: Any) -> str:
    assert response[0] == 1 and response[3] is None, response
    kind: str = response[2]["kind"]
    assert isinstance(response[2]["message"], str)
    return kind


# -- publish ------------------------------------------------------------------------------
async def test_publish_returns_the_response_cloudevent_list() -> None:
    async with serving() as server, raw_client(server.port) as client:
        response = await client.call(1, "publish", greeting_event("Ada", id="e-1", subject="a.b"))
    assert response[:3] == [1, 1, None]
    [event] = response[3]
    assert event["type"] == GREETING_TYPE
    assert event["data"] == {"greeting": "Hello, Ada!", "name": "Ada"}
    assert event["causationid"] == "e-1"
    assert event["subject"] == "a.b"


async def test_msgpack_data_comes_back_as_native_msgpack() -> None:
    event = greeting_event(datacontenttype="application/msgpack", data={"name": "Lin"})
    async with serving() as server, raw_client(server.port) as client:
        response = await client.call(1, "publish", event)
    assert response[3][0]["datacontenttype"] == "application/msgpack"
    assert response[3][0]["data"] == {"greeting": "Hello, Lin!", "name": "Lin"}


async def test_pipelined_requests_are_all_answered_by_msgid() -> None:
    async with serving() as server, raw_client(server.port) as client:
        await client.send(*[[0, n, "publish", [greeting_event(f"n{n}")]] for n in range(50)])
        responses = [await client.recv() for _ in range(50)]
    by_id = {r[1]: r for r in responses}
    assert sorted(by_id) == list(range(50))
    assert all(by_id[n][3][0]["data"]["name"] == f"n{n}" for n in range(50))


async def test_invalid_payload_is_a_result_carrying_an_error_event() -> None:
    async with serving() as server, raw_client(server.port) as client:
        response = await client.call(1, "publish", greeting_event(data={"nom": "x"}))
    assert response[2] is None
    [event] = response[3]
    assert event["mdcserrorkind"] == "invalid_payload"


async def test_unknown_cloudevent_type_is_an_unknown_type_error() -> None:
    async with serving() as server, raw_client(server.port) as client:
        response = await client.call(3, "publish", greeting_event(type="com.example.nobody.v1"))
        assert error_kind(response) == "unknown_type"
        assert (await client.call(4, "publish", greeting_event()))[2] is None
    assert server.stats.failed["unknown_type"] == 1


async def test_invalid_envelope_is_an_invalid_event_error() -> None:
    event = greeting_event()
    del event["source"]
    async with serving() as server, raw_client(server.port) as client:
        assert error_kind(await client.call(1, "publish", event)) == "invalid_event"


async def test_events_are_routed_only_to_the_processor_of_their_type() -> None:
    slow = SlowProcessor()
    slow.gate.set()
    async with (
        serving(processors=[GreetingProcessor(), slow]) as server,
        raw_client(server.port) as client,
    ):
        await client.call(1, "publish", greeting_event())
        await client.call(2, "publish", slow_event())
    assert slow.done == 1
    assert server.stats.processed == 2


# -- methods and params --------------------------------------------------------------------
async def test_unknown_method_gets_an_error_and_the_connection_stays_usable() -> None:
    async with serving() as server, raw_client(server.port) as client:
        assert error_kind(await client.call(7, "frobnicate", 1)) == "unknown_method"
        assert (await client.call(8, "publish", greeting_event()))[2] is None


async def test_params_of_the_wrong_type_get_invalid_params() -> None:
    async with serving() as server, raw_client(server.port) as client:
        assert error_kind(await client.call(1, "publish", "not a map")) == "invalid_params"
        assert error_kind(await client.call(2, "publish")) == "invalid_params"
        assert error_kind(await client.call(3, "publish", greeting_event(), 5)) == "invalid_params"
        assert (await client.call(4, "publish", greeting_event()))[2] is None


async def test_heartbeat_notification_gets_no_answer() -> None:
    async with serving() as server, raw_client(server.port) as client:
        await client.send([2, "heartbeat", [1700000000.0]], [0, 1, "heartbeat", [42]])
        assert await client.recv() == [1, 1, None, 42]
        assert server.connections[0].last_heartbeat is not None


async def test_publish_notification_is_processed_without_an_answer() -> None:
    async with serving() as server, raw_client(server.port) as client:
        await client.send([2, "publish", [greeting_event()]], [0, 9, "heartbeat", []])
        assert await client.recv() == [1, 9, None, None]
        await asyncio.sleep(0.05)
    assert server.stats.processed == 1


# -- bad input -----------------------------------------------------------------------------
async def test_request_of_the_wrong_shape_gets_an_error_with_its_msgid() -> None:
    async with serving() as server, raw_client(server.port) as client:
        await client.send([0, 5, "publish"], [0, 6, 123, []], [0, 7, "publish", {"x": 1}])
        assert [error_kind(await client.recv()) for _ in range(3)] == ["invalid_request"] * 3
        assert (await client.call(8, "publish", greeting_event()))[2] is None


async def test_frame_without_msgid_gets_an_error_notification_and_the_stream_goes_on() -> None:
    async with serving() as server, raw_client(server.port) as client:
        await client.send(12, "hello", {"a": 1}, [9, 9], [0, "id", "publish", []])
        notes = [await client.recv() for _ in range(5)]
        assert all(n[0] == 2 and n[1] == "error" for n in notes)
        assert {n[2][0]["kind"] for n in notes} == {"invalid_frame"}
        assert (await client.call(1, "publish", greeting_event()))[2] is None
    assert server.connection_stats.frame_errors == 5


async def test_garbage_bytes_close_only_that_connection() -> None:
    async with serving() as server:
        async with raw_client(server.port) as client:
            await client.send_bytes(b"\xc1\xc1 not msgpack at all")
            note = await client.recv()
            assert note[:2] == [2, "error"] and note[2][0]["kind"] == "invalid_frame"
            assert await client.closed()
        async with raw_client(server.port) as client:
            assert (await client.call(1, "publish", greeting_event()))[2] is None
        assert server.connection_stats.streams_closed_on_error == 1


async def test_oversized_frame_gets_an_error_with_its_msgid_then_the_connection_closes() -> None:
    config = rpc_config(max_buffer_bytes=4096)
    async with serving(config) as server:
        async with raw_client(server.port) as client:
            await client.send([0, 31, "publish", [greeting_event("x" * 10_000)]])
            response = await client.recv()
            assert response[1] == 31 and error_kind(response) == "payload_too_large"
            assert await client.closed()
        async with raw_client(server.port) as client:
            assert (await client.call(1, "publish", greeting_event()))[2] is None


async def test_response_frames_from_a_client_are_rejected_without_closing() -> None:
    async with serving() as server, raw_client(server.port) as client:
        await client.send([1, 5, None, "unsolicited"])
        assert (await client.recv())[:2] == [2, "error"]
        assert (await client.call(1, "heartbeat", 1))[3] == 1


async def test_client_disconnecting_mid_request_does_not_disturb_the_server() -> None:
    slow = SlowProcessor()
    async with serving(processors=[GreetingProcessor(), slow]) as server:
        async with raw_client(server.port) as client:
            await client.send([0, 1, "publish", [slow_event()]])
            await eventually(lambda: slow.waiting == 1)
        slow.gate.set()
        async with raw_client(server.port) as client:
            assert (await client.call(2, "publish", greeting_event()))[2] is None
        await asyncio.sleep(0.05)
        assert slow.done == 1


# -- limits --------------------------------------------------------------------------------
async def test_concurrent_requests_per_client_are_bounded() -> None:
    slow = SlowProcessor()
    config = rpc_config(max_concurrent_requests=4)
    async with serving(config, [slow]) as server, raw_client(server.port) as client:
        await client.send(*[[0, n, "publish", [slow_event()]] for n in range(20)])
        await asyncio.sleep(0.2)
        assert slow.waiting == 4
        assert server.connections[0].in_flight == 4
        slow.gate.set()
        responses = [await client.recv() for _ in range(20)]
    assert sorted(r[1] for r in responses) == list(range(20))
    assert slow.max_waiting == 4


async def test_each_client_has_its_own_concurrency_budget() -> None:
    slow = SlowProcessor()
    config = rpc_config(max_concurrent_requests=2)
    async with (
        serving(config, [slow]) as server,
        raw_client(server.port) as a,
        raw_client(server.port) as b,
    ):
        await a.send(*[[0, n, "publish", [slow_event()]] for n in range(5)])
        await b.send(*[[0, n, "publish", [slow_event()]] for n in range(5)])
        await asyncio.sleep(0.2)
        assert slow.waiting == 4
        slow.gate.set()
        for client in (a, b):
            assert len([await client.recv() for _ in range(5)]) == 5


# -- outgoing events -----------------------------------------------------------------------
async def test_emitted_events_are_pushed_to_every_client_as_cloudevent_notifications() -> None:
    processor = GreetingProcessor(source="microdcs/test")
    async with (
        serving(processors=[processor]) as server,
        raw_client(server.port) as a,
        raw_client(server.port) as b,
    ):
        await a.call(1, "heartbeat")
        await b.call(1, "heartbeat")
        await processor.publish(GreetingResponse(greeting="hi", name="all"), subject="l1")
        for client in (a, b):
            method_and_params = (await client.recv())[1:]
            assert method_and_params[0] == "cloudevent"
            event, intent = method_and_params[1]
            assert intent == Intent.EVENTS.value
            assert event["subject"] == "l1"
            assert event["data"] == {"greeting": "hi", "name": "all"}


async def test_client_that_does_not_read_its_events_is_disconnected() -> None:
    processor = GreetingProcessor(source="microdcs/test")
    config = rpc_config(max_buffer_bytes=64 * 1024)
    big = "x" * 16_000
    async with (
        serving(config, [processor]) as server,
        raw_client(server.port, limit=1024) as lazy,
        raw_client(server.port) as ok,
    ):
        await lazy.call(1, "heartbeat")
        await ok.call(1, "heartbeat")
        lazy.writer.transport.pause_reading()
        for _ in range(300):
            await processor.publish(GreetingResponse(greeting=big, name="n"), subject=None)
            await ok.recv()
            if server.connection_stats.slow_consumers:
                break
        assert server.connection_stats.slow_consumers == 1
        await eventually(lambda: len(server.connections) == 1)
        assert (await ok.call(2, "heartbeat", 1))[3] == 1


# -- authentication ------------------------------------------------------------------------
async def test_with_a_token_requests_before_authenticate_are_refused() -> None:
    async with serving(rpc_config(token="s3cret")) as server, raw_client(server.port) as client:
        assert error_kind(await client.call(1, "publish", greeting_event())) == "unauthenticated"
        assert await client.call(2, "authenticate", "s3cret") == [1, 2, None, True]
        assert (await client.call(3, "publish", greeting_event()))[2] is None


async def test_a_wrong_token_closes_the_connection() -> None:
    async with (
        serving(rpc_config(token="s3cret")) as server,
        raw_client(server.port) as client,
    ):
        assert error_kind(await client.call(1, "authenticate", "guess")) == "unauthenticated"
        assert await client.closed()
        assert server.connection_stats.auth_failures == 1


async def test_unauthenticated_clients_receive_no_events() -> None:
    processor = GreetingProcessor(source="microdcs/test")
    async with (
        serving(rpc_config(token="t"), [processor]) as server,
        raw_client(server.port) as anonymous,
        raw_client(server.port) as known,
    ):
        await known.call(1, "authenticate", "t")
        await anonymous.call(1, "heartbeat")
        await processor.publish(GreetingResponse(greeting="g", name="n"), subject=None)
        assert (await known.recv())[1] == "cloudevent"
        await anonymous.send([0, 2, "heartbeat", [2]])
        assert error_kind(await anonymous.recv()) == "unauthenticated"


# -- lifecycle -----------------------------------------------------------------------------
async def test_shutdown_lets_in_flight_requests_finish_then_closes() -> None:
    slow = SlowProcessor()
    shutdown = asyncio.Event()
    handler = rpc_handler(rpc_config())
    handler.bind(slow)
    task = asyncio.create_task(handler.run(shutdown))
    await eventually(lambda: handler.ready)
    async with raw_client(handler.port) as client:
        await client.send([0, 1, "publish", [slow_event()]])
        await eventually(lambda: slow.waiting == 1)
        shutdown.set()
        await asyncio.sleep(0.1)
        assert not task.done()
        slow.gate.set()
        response = await client.recv()
        assert response[:3] == [1, 1, None]
        assert await client.closed()
    await asyncio.wait_for(task, 5)


async def test_shutdown_grace_bounds_a_request_that_never_finishes() -> None:
    slow = SlowProcessor()
    handler = rpc_handler(rpc_config(shutdown_grace=0.3))
    handler.bind(slow)
    shutdown = asyncio.Event()
    task = asyncio.create_task(handler.run(shutdown))
    await eventually(lambda: handler.ready)
    async with raw_client(handler.port) as client:
        await client.send([0, 1, "publish", [slow_event()]])
        await eventually(lambda: slow.waiting == 1)
        started = time.monotonic()
        shutdown.set()
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - started < 2.0
        assert await client.closed()
    assert slow.done == 0


async def test_port_in_use_fails_run_with_os_error() -> None:
    async with serving() as server:
        clash = rpc_handler(rpc_config(port=server.port))
        clash.bind(GreetingProcessor())
        try:
            await clash.run(asyncio.Event())
        except OSError:
            pass
        else:
            raise AssertionError("binding a used port must fail")


async def test_scenario_17_mechanics_on_one_connection() -> None:
    """Acceptance 17 with the greeting processor (the Store part waits for job management)."""
    processor = GreetingProcessor(source="microdcs/test")
    async with serving(processors=[processor]) as server, raw_client(server.port) as client:
        published = await client.call(1, "publish", greeting_event("Store"))
        assert published[2] is None and published[3][0]["data"]["name"] == "Store"
        assert error_kind(await client.call(2, "no_such_method")) == "unknown_method"
        await processor.publish(GreetingResponse(greeting="status", name="JO-1"), subject="p.l")
        notification = await client.recv()
        assert notification[:2] == [2, "cloudevent"]
        assert notification[2][0]["data"]["name"] == "JO-1"
        assert (await client.call(3, "publish", greeting_event()))[2] is None


async def test_event_caused_by_an_awaited_request_is_delivered_as_its_response() -> None:
    class Asking(GreetingProcessor):
        def __init__(self) -> None:
            super().__init__(source="microdcs/test")
            self.answers: list[tuple[str, str]] = []

        async def on_response(self, response: Any, request: Any) -> None:
            self.answers.append((response.id, request.id))

    processor = Asking()
    async with serving(processors=[processor]) as server, raw_client(server.port) as client:
        await client.call(1, "heartbeat")
        request = await processor.send_request(
            GreetingResponse(greeting="?", name="eq"), subject="cell", expiry=30
        )
        pushed = await client.recv()
        assert pushed[2][0]["id"] == request.id
        answer = greeting_event("eq", id="answer-1", causationid=request.id)
        assert await client.call(2, "publish", answer) == [1, 2, None, []]
        again = greeting_event("eq", id="answer-2", causationid=request.id)
        assert (await client.call(3, "publish", again))[3][0]["data"]["name"] == "eq"
    assert processor.answers == [("answer-1", request.id)]
