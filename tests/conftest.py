"""Fixtures: real Mosquitto and Redis on free loopback ports, and in-process runtimes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from microdcs.app.assembly import open_runtime
from microdcs.app.binder import ProcessorFactory
from microdcs.app.config import AppConfig, MqttConfig, RedisConfig
from microdcs.app.devstack import LocalMosquitto, LocalRedis
from microdcs.app.runtime import Runtime
from microdcs.core.tracing import Tracing

_counter = itertools.count()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMosquitto]:
    with LocalMosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    with LocalRedis(tmp_path_factory.mktemp("redis"), appendonly=False) as server:
        yield server


def make_config(broker_port: int, redis_port: int, **overrides: Any) -> AppConfig:
    """A configuration isolated from other tests: own instance id, key prefix, topics."""
    n = next(_counter)
    tag = uuid.uuid4().hex[:8]
    mqtt = MqttConfig(
        hostname="127.0.0.1",
        port=broker_port,
        shared_subscription=f"g{tag}",
        response_topic_base=f"test{tag}/responses",
        session_expiry=120,
    )
    redis = RedisConfig(hostname="127.0.0.1", port=redis_port, key_prefix=f"t{tag}")
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
def config(mosquitto: LocalMosquitto, redis_server: LocalRedis) -> AppConfig:
    return make_config(mosquitto.port, redis_server.port)


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
