"""Fixtures: real Mosquitto and Redis on free loopback ports, and in-process runtimes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from microdcs.app.assembly import open_runtime
from microdcs.app.binder import ProcessorFactory
from microdcs.app.config import AppConfig, MqttConfig, RedisConfig
from microdcs.app.devstack import LocalEjabberd, LocalMosquitto, LocalRedis, LocalRedisCluster
from microdcs.app.runtime import Runtime
from microdcs.core.tracing import Tracing
from tests import brokers

_counter = itertools.count()

#: ``MICRODCS_TEST_REDIS=cluster``: the session's ``redis_server`` is a 3-primary Redis
#: Cluster and every configuration built from it is in mode cluster (the second pass).
REDIS_CLUSTER = os.environ.get("MICRODCS_TEST_REDIS", "standalone") == "cluster"

#: What ``redis_server`` is: one server, or a cluster in the second pass.
RedisServer = LocalRedis | LocalRedisCluster


def single_redis(feature: str) -> pytest.MarkDecorator:
    """Skip in the cluster pass a test of a feature that only one server has."""
    return pytest.mark.skipif(REDIS_CLUSTER, reason=f"single Redis server: {feature}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The cluster pass runs only the tests that use the session's ``redis_server``: the
    others never touch the cluster (no Redis, or a server of their own that they kill,
    freeze or restart), and the first pass has run them already."""
    mark_second_broker(items)
    if not REDIS_CLUSTER:
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        uses = "redis_server" in getattr(item, "fixturenames", ())
        (kept if uses else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "second_broker: also run against ejabberd (MICRODCS_TEST_BROKER=ejabberd)"
    )


def mark_second_broker(items: list[pytest.Item]) -> None:
    """Mark the second broker's tests; on ejabberd, skip what needs Mosquitto."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path in brokers.SECOND_BROKER_MODULES:
            item.add_marker(pytest.mark.second_broker)
        if brokers.BROKER != "ejabberd" or "mosquitto" not in getattr(item, "fixturenames", ()):
            continue
        reason = next(
            (why for test, why in brokers.MOSQUITTO_ONLY.items() if item.nodeid.startswith(test)),
            None,
        )
        if reason is None and path not in brokers.SECOND_BROKER_MODULES:
            reason = "not in the second broker's list (tests/brokers.py)"
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"on ejabberd: {reason}"))


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMosquitto]:
    """The MQTT broker: Mosquitto, or ejabberd with MICRODCS_TEST_BROKER=ejabberd."""
    if brokers.BROKER == "ejabberd":
        with LocalEjabberd(tmp_path_factory.mktemp("ejabberd")) as ejabberd:
            yield ejabberd  # type: ignore[misc]  # what the tests use of it: port, start/stop
        return
    with LocalMosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if REDIS_CLUSTER:
        with LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
            yield cluster
        return
    with LocalRedis(tmp_path_factory.mktemp("redis"), appendonly=False) as server:
        yield server


def redis_config(server: int | RedisServer, **fields: Any) -> RedisConfig:
    """The RedisConfig of a test's server: a port or a LocalRedis as one server, a
    LocalRedisCluster in mode cluster (its nodes as the seeds)."""
    if isinstance(server, LocalRedisCluster):
        seed = server.initial_primaries[0]
        return RedisConfig(
            mode="cluster", nodes=server.nodes, hostname="127.0.0.1", port=seed.port, **fields
        )
    port = server if isinstance(server, int) else server.port
    return RedisConfig(hostname="127.0.0.1", port=port, **fields)


def make_config(broker_port: int, redis_server: int | RedisServer, **overrides: Any) -> AppConfig:
    """A configuration isolated from other tests: own instance id, key prefix, topics.

    ``redis_server`` is the ``redis_server`` fixture (a cluster in the cluster pass) or a
    test's own server or its port (one server, whatever the pass)."""
    n = next(_counter)
    tag = uuid.uuid4().hex[:8]
    username, password = brokers.login()
    mqtt = MqttConfig(
        hostname="127.0.0.1",
        port=broker_port,
        username=username,
        password=password,
        shared_subscription=f"g{tag}",
        response_topic_base=f"test{tag}/responses",
        session_expiry=120,
    )
    redis = redis_config(redis_server, key_prefix=f"t{tag}")
    config = AppConfig(
        instance_id=f"replica-{n}-{tag}",
        greeting_enabled=True,  # most transport tests talk to the greeting echo
        greeting_prefix=f"test{tag}/greeting",
        jobs_prefix=f"test{tag}/jobs",
        equipment_prefix=f"test{tag}/equipment",
        shutdown_grace=5.0,
        storage_retry_seconds=5.0,
        mqtt=mqtt,
        redis=redis,
    )
    return replace(config, **overrides) if overrides else config


@pytest.fixture
def config(mosquitto: LocalMosquitto, redis_server: RedisServer) -> AppConfig:
    return make_config(mosquitto.port, redis_server)


@contextlib.asynccontextmanager
async def running(
    config: AppConfig,
    factories: Sequence[ProcessorFactory] = (),
    *,
    tracing: Tracing | None = None,
    telemetry: bool = False,
) -> AsyncIterator[Runtime]:
    """A runtime serving in this event loop until the block ends."""
    async with open_runtime(config, factories, tracing=tracing, telemetry=telemetry) as runtime:
        task = asyncio.create_task(runtime.app.run(install_signal_handlers=False))
        try:
            async with asyncio.timeout(10):
                await runtime.mqtt.connected.wait()
            yield runtime
        finally:
            runtime.app.request_shutdown()
            await asyncio.wait_for(task, 20)


@pytest.fixture
def runtime_factory() -> Callable[..., Any]:
    return running


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
