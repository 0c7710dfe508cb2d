"""The health/metrics endpoint over real HTTP, against a runtime with a real broker and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from microdcs.app.config import AppConfig
from microdcs.app.devstack import LocalMosquitto, LocalRedis, free_port
from microdcs.app.telemetry.health import Readiness
from microdcs.app.telemetry.http import TelemetryServer
from microdcs.app.telemetry.metrics import Metrics
from microdcs.examples.greeting import GREETING_TYPE
from tests.conftest import make_config, running
from tests.mesclient import MesClient
from tests.unit.test_telemetry_metrics import sample


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str


async def http(port: int, request: bytes) -> Reply:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in header_lines)}
    if "content-length" in headers:
        assert int(headers["content-length"]) == len(body)
    return Reply(int(status_line.split(" ")[1]), headers, body.decode())


async def get(port: int, path: str) -> Reply:
    return await http(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())


async def eventually_status(port: int, path: str, status: int, timeout: float = 15.0) -> Reply:
    deadline = time.monotonic() + timeout
    while True:
        reply = await get(port, path)
        if reply.status == status or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.1)


class Down:
    name = "mqtt"
    ready = False


async def _no_redis() -> bool:
    return False


@contextlib.asynccontextmanager
async def serving(server: TelemetryServer) -> AsyncIterator[int]:
    shutdown = asyncio.Event()
    task = asyncio.create_task(server.run(shutdown))
    await asyncio.wait_for(server.listening.wait(), 5)
    try:
        yield server.port
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 5)


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics()
    yield m
    m.shutdown()


async def test_healthz_answers_while_the_process_runs_even_when_not_ready(
    metrics: Metrics,
) -> None:
    server = TelemetryServer(
        "127.0.0.1", 0, metrics=metrics, readiness=Readiness([Down()], _no_redis)
    )
    async with serving(server) as port:
        assert (await get(port, "/healthz")).status == 200
        ready = await get(port, "/readyz")
    assert ready.status == 503
    assert ready.body == "mqtt down\nredis down\n"


async def test_only_get_on_known_paths_is_served(metrics: Metrics) -> None:
    server = TelemetryServer("127.0.0.1", 0, metrics=metrics, readiness=Readiness([], _no_redis))
    async with serving(server) as port:
        head = b"POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        post = await http(port, head + b"Content-Length: 0\r\n\r\n")
        missing = await get(port, "/nope")
        garbage = await http(port, b"hello\r\n\r\n")
        query = await get(port, "/healthz?verbose=1")
    assert post.status == 405 and "GET" in post.headers["allow"]
    assert missing.status == 404
    assert garbage.status == 400
    assert query.status == 200


async def test_a_client_that_never_finishes_its_request_is_cut_off(metrics: Metrics) -> None:
    server = TelemetryServer(
        "127.0.0.1",
        0,
        metrics=metrics,
        readiness=Readiness([], _no_redis),
        request_timeout=0.2,
    )
    async with serving(server) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert (await get(port, "/healthz")).status == 200


async def test_metrics_of_a_running_replica_are_scraped_over_http(config: AppConfig) -> None:
    config = replace(config, http_host="127.0.0.1", http_port=free_port())
    topic = f"{config.greeting_prefix}/plant1/commands"
    async with running(config, telemetry=True), MesClient(config.mqtt.port) as mes:
        for n in range(3):
            await mes.request(topic, GREETING_TYPE, {"name": f"n{n}"}, event_id=f"m-{n}")
        ready = await eventually_status(config.http_port, "/readyz", 200)
        reply = await get(config.http_port, "/metrics")
    lines = ready.body.splitlines()
    assert lines[:2] == ["mqtt ok", "redis ok"]
    assert {"task http ok", "task sfc-engine ok"} <= set(lines[2:])
    assert all(line.startswith("task ") and line.endswith(" ok") for line in lines[2:])
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = reply.body
    assert sample(text, "microdcs_messages_received_total", transport="mqtt") == 3
    assert sample(text, "microdcs_messages_processed_total", transport="mqtt") == 3
    labels = {"transport": "mqtt", "type": GREETING_TYPE, "outcome": "ok"}
    assert sample(text, "microdcs_handling_seconds_count", **labels) == 3
    assert sample(text, "microdcs_handling_seconds_bucket", **labels, le="+Inf") == 3
    assert sample(text, "microdcs_queue_depth", transport="mqtt") == 0
    assert sample(text, "microdcs_responses_awaited", transport="mqtt") is not None
    assert sample(text, "microdcs_sfc_steps_fired_total") is not None
    assert sample(text, "microdcs_ready") == 1


async def test_readiness_follows_the_broker_down_and_back(
    tmp_path: Path, redis_server: LocalRedis
) -> None:
    with LocalMosquitto(tmp_path / "broker") as broker:
        config = replace(
            make_config(broker.port, redis_server),
            http_host="127.0.0.1",
            http_port=free_port(),
        )
        config = replace(config, mqtt=replace(config.mqtt, reconnect_max_seconds=0.5))
        async with running(config, telemetry=True):
            assert (await eventually_status(config.http_port, "/readyz", 200)).status == 200
            broker.stop()
            down = await eventually_status(config.http_port, "/readyz", 503)
            assert down.status == 503
            assert "mqtt down" in down.body
            assert (await get(config.http_port, "/healthz")).status == 200
            broker.start()
            back = await eventually_status(config.http_port, "/readyz", 200)
            assert back.status == 200, back.body


async def test_readiness_follows_redis_down_and_back(
    tmp_path: Path, mosquitto: LocalMosquitto
) -> None:
    with LocalRedis(tmp_path / "redis", appendonly=False) as redis:
        config = replace(
            make_config(mosquitto.port, redis.port),
            http_host="127.0.0.1",
            http_port=free_port(),
            sfc_engine_enabled=False,
        )
        async with running(config, telemetry=True):
            assert (await eventually_status(config.http_port, "/readyz", 200)).status == 200
            redis.stop()
            down = await eventually_status(config.http_port, "/readyz", 503)
            assert "redis down" in down.body
            metrics = (await get(config.http_port, "/metrics")).body
            assert (sample(metrics, "microdcs_redis_errors_total", where="ping") or 0) >= 1
            redis.start()
            assert (await eventually_status(config.http_port, "/readyz", 200)).status == 200
