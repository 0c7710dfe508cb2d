"""Redis restarting, loading its dataset or busy: waited out, never an internal error, and
the background tasks (publisher, SFC engine) keep running through it."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from microdcs.app.devstack import LocalMosquitto, LocalRedis
from microdcs.sfc.engine.keys import scopes_key
from microdcs.storage.redis import RedisStore
from tests.conftest import make_config, running
from tests.integration.test_jobs_helpers import SCOPE, Station, retained_until
from tests.mesclient import MesClient

#: A script that keeps Redis busy for ARGV[1] milliseconds (other clients get BUSY).
BUSY_SCRIPT = """
local t0 = redis.call('TIME')
local function ms(t) return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 end
repeat until ms(redis.call('TIME')) - ms(t0) > tonumber(ARGV[1])
return 1
"""


class SlowLoadingRedis(LocalRedis):
    """Takes a while to load its dataset after a start, answering ``LOADING`` meanwhile
    (as after a restart with a large AOF), made deterministic with a delay per key."""

    def command(self) -> list[str]:
        return [
            *super().command(),
            "--key-load-delay", "250",
            "--loading-process-events-interval-bytes", "1024",
        ]  # fmt: skip


def raw_ping(port: int) -> bytes:
    """PING on a connection of its own, without any client library's retries."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(256)


@pytest.fixture
def slow_redis(tmp_path: Path) -> Iterator[SlowLoadingRedis]:
    with SlowLoadingRedis(tmp_path / "redis", appendonly=False) as server:
        yield server


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    with LocalRedis(tmp_path / "redis", appendonly=False) as server:
        yield server


async def _store_all(station: Station, job_ids: list[str]) -> list[object]:
    replies = await asyncio.gather(*(station.call_raw("Store", {"JobOrder": {"JobOrderID": j}})
                                     for j in job_ids))  # fmt: skip
    return [reply.json().get("ReturnStatus") for reply in replies]


async def test_stores_while_redis_loads_its_dataset_succeed_after_the_wait(
    mosquitto: LocalMosquitto, slow_redis: SlowLoadingRedis
) -> None:
    config = make_config(mosquitto.port, slow_redis.port)
    admin = redis.Redis(port=slow_redis.port)
    pipe = admin.pipeline(transaction=False)
    for n in range(4000):  # about 1.5 s of loading with the delay per key
        pipe.set(f"filler:{n}", b"x" * 200)
    pipe.execute()
    admin.save()
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        assert await _store_all(station, ["before"]) == [1]
        slow_redis.kill()
        slow_redis.start()
        assert raw_ping(slow_redis.port).startswith(b"-LOADING")  # the Stores' window
        statuses = await _store_all(station, [f"J{n}" for n in range(20)])
    assert statuses == [1] * 20
    assert "internal_error" not in runtime.mqtt.stats.failed


async def test_stores_while_a_script_keeps_redis_busy_succeed_after_the_wait(
    mosquitto: LocalMosquitto, own_redis: LocalRedis
) -> None:
    config = make_config(mosquitto.port, own_redis.port)
    admin = redis.Redis(port=own_redis.port)
    admin.config_set("busy-reply-threshold", 50)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        assert await _store_all(station, ["before"]) == [1]
        busy = threading.Thread(target=admin.eval, args=(BUSY_SCRIPT, 0, 1500))
        busy.start()
        await asyncio.sleep(0.3)
        assert raw_ping(own_redis.port).startswith(b"-BUSY")  # the Stores' window
        statuses = await _store_all(station, [f"J{n}" for n in range(20)])
        await asyncio.to_thread(busy.join)
    assert statuses == [1] * 20
    assert "internal_error" not in runtime.mqtt.stats.failed


async def test_publisher_and_sfc_engine_keep_running_across_a_redis_sigkill(
    mosquitto: LocalMosquitto, own_redis: LocalRedis, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(mosquitto.port, own_redis.port)
    caplog.set_level(logging.INFO)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        # A scope for the SFC engine's loops (read, claim, timers) to work on.
        async with RedisStore(config.redis) as store:
            await store.execute("SADD", scopes_key(store), SCOPE)
        first = await station.watch("order/J1")
        assert await station.store("J1") == 1
        await retained_until(first, lambda m: m.payload)
        await asyncio.sleep(1.5)  # the engine found the scope and reads its work stream
        caplog.clear()
        own_redis.kill()  # everything is gone: no dataset was saved
        await asyncio.sleep(2.0)
        own_redis.start()
        second = await station.watch("order/J2")
        async with asyncio.timeout(10):
            while (status := await station.store("J2")) != 1:
                await asyncio.sleep(0.2)
        assert status == 1
        await retained_until(second, lambda m: m.payload)  # the publisher publishes again
        await asyncio.sleep(1.0)
    crashes = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert crashes == []
    for name in ("microdcs.sfc.engine.engine", "microdcs.publisher.task"):
        warnings = [r for r in caplog.records if r.name == name and r.levelno >= logging.WARNING]
        assert len(warnings) <= 2, [r.getMessage() for r in warnings]  # once per outage
