"""A broker that crashed and lost its retained messages gets the job state back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from microdcs.app.devstack import LocalMosquitto, LocalRedis
from microdcs.jobs.statemachine import STORED
from microdcs.jobs.storage import JobStore
from microdcs.storage.redis import RedisStore
from microdcs_models.machinery_jobs import ISA95JobOrderDataType
from tests.conftest import make_config, running
from tests.integration.test_jobs_helpers import SCOPE
from tests.integration.test_publisher import retained_state

JOBS = [f"J{n}" for n in range(200)]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalMosquitto]:
    with LocalMosquitto(tmp_path / "mosquitto") as server:
        yield server


async def orders_until(port: int, base: str, expected: set[str], timeout: float) -> set[str]:
    """The retained ``order/`` topics a fresh subscriber sees, polled until all are there."""
    seen: set[str] = set()
    async with asyncio.timeout(timeout):
        while seen != expected:
            try:
                retained = await retained_state(port, base)
            except Exception:  # the broker is still coming back
                retained = {}
            seen = {t.removeprefix(f"{base}/order/") for t in retained if "/order/" in t}
            await asyncio.sleep(0.2)
    return seen


async def test_broker_losing_its_retained_store_gets_every_order_topic_again(
    broker: LocalMosquitto, redis_server: LocalRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = make_config(broker.port, redis_server)
    base = f"{config.jobs_prefix}/{SCOPE}"
    async with running(config) as runtime, RedisStore(config.redis) as store:
        jobs = JobStore(store, retention=60, maxlen=10_000)
        for job_id in JOBS:  # changes of "another replica": no MQTT request involved
            order = ISA95JobOrderDataType(job_order_id=job_id)
            raw = orjson.dumps(order.to_raw())
            assert (await jobs.put_order(SCOPE, order, raw, new=STORED)).ok
        await orders_until(broker.port, base, set(JOBS), timeout=10)
        # Crash inside the autosave interval, and lose the persistence file too.
        broker.kill()
        for stored in (broker.workdir / "data").glob("*"):
            stored.unlink()
        broker.start()
        async with asyncio.timeout(10):
            await runtime.mqtt.connected.wait()
        seen = await orders_until(broker.port, base, set(JOBS), timeout=5)
        retained = await retained_state(broker.port, base)
    assert seen == set(JOBS)
    index = orjson.loads(retained[f"{base}/state-index"].payload)
    assert {job["job_order_id"] for job in index["jobs"]} == set(JOBS)
    assert not [r for r in caplog.records if "crashed" in r.getMessage()]  # no task restarts
