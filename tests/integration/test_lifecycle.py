"""Reconnect, graceful shutdown, redelivery, expiry and Redis outages, with real servers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import pytest

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig, to_environment
from microdcs.app.devstack import LocalMosquitto, LocalRedis
from microdcs.core.cloudevent import CloudEvent
from microdcs.examples.greeting import GREETING_TYPE
from microdcs.models import Model
from microdcs.processing.processor import CloudEventProcessor, ResponseContext, handles_response
from microdcs.processing.routing import Direction
from tests.conftest import make_config, running
from tests.integration.slow_processor import SLOW_TYPE
from tests.mesclient import MesClient, next_message

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalMosquitto]:
    with LocalMosquitto(tmp_path / "broker") as broker:
        yield broker


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    with LocalRedis(tmp_path / "redis") as server:
        yield server


async def test_replica_reconnects_after_broker_restart_and_serves_again(
    own_broker: LocalMosquitto, redis_server: LocalRedis
) -> None:
    config = make_config(own_broker.port, redis_server)
    topic = f"{config.greeting_prefix}/commands"
    async with running(config) as runtime:
        async with MesClient(own_broker.port) as mes:
            await mes.request(topic, GREETING_TYPE, {"name": "before"})
        await asyncio.to_thread(own_broker.restart)
        async with asyncio.timeout(10):
            while not runtime.mqtt.ready:
                await asyncio.sleep(0.05)
            # Mosquitto 2.0.11 does not restore *shared* subscriptions from persistence;
            # the replica re-subscribes on every connect, so from here nothing is missed.
            await asyncio.sleep(0.2)
        async with MesClient(own_broker.port) as mes:
            replies = await asyncio.gather(
                *(mes.request(topic, GREETING_TYPE, {"name": f"n{i}"}) for i in range(20))
            )
        assert sorted(r.json()["name"] for r in replies) == sorted(f"n{i}" for i in range(20))


async def test_requests_published_while_replica_is_away_are_answered_on_return(
    config: AppConfig,
) -> None:
    config = replace(config, mqtt=replace(config.mqtt, end_session_on_shutdown=False))
    topic = f"{config.greeting_prefix}/commands"
    async with running(config):
        pass  # subscribe once, leave a persistent session behind
    async with MesClient(config.mqtt.port) as mes:
        pending = [
            asyncio.ensure_future(
                mes.request(topic, GREETING_TYPE, {"name": f"away{i}"}, timeout=15)
            )
            for i in range(10)
        ]
        await asyncio.sleep(0.5)
        assert not any(p.done() for p in pending)
        async with running(config):
            replies = await asyncio.gather(*pending)
    assert sorted(r.json()["name"] for r in replies) == sorted(f"away{i}" for i in range(10))


async def test_stopped_replica_leaves_the_group_so_the_other_gets_every_request(
    config: AppConfig,
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    other = replace(config, instance_id=config.instance_id + "-b")
    async with running(other) as survivor:
        async with running(config):
            pass  # serves, then shuts down gracefully
        async with MesClient(config.mqtt.port) as mes:
            replies = await asyncio.gather(
                *(
                    mes.request(topic, GREETING_TYPE, {"name": f"r{i}"}, timeout=3)
                    for i in range(20)
                )
            )
        assert len(replies) == 20
        assert survivor.mqtt.stats.processed == 20


def slow_prefix(config: AppConfig) -> str:
    return config.greeting_prefix.rsplit("/", 1)[0] + "/slow"


def _start_replica(config: AppConfig, tmp: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(to_environment(config))
    env.update(TEST_SLOW_PREFIX=slow_prefix(config), PYTHONPATH=str(REPO))
    log = (tmp / f"{config.instance_id}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "microdcs.app.cli", "run", "--processor",
         "tests.integration.slow_processor:bind", *extra],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip


async def _wait_connected(mes: MesClient, config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/commands"
    for _ in range(100):
        try:
            await mes.request(topic, GREETING_TYPE, {"name": "ping"}, timeout=0.5)
            return
        except TimeoutError:
            continue
    raise AssertionError("replica did not come up")


async def test_sigterm_lets_in_flight_messages_finish(config: AppConfig, tmp_path: Path) -> None:
    replica = _start_replica(config, tmp_path)
    topic = f"{slow_prefix(config)}/commands"
    try:
        async with MesClient(config.mqtt.port) as mes:
            await _wait_connected(mes, config)
            pending = [
                asyncio.ensure_future(
                    mes.request(topic, SLOW_TYPE, {"n": i, "seconds": 1.0}, timeout=10)
                )
                for i in range(5)
            ]
            await asyncio.sleep(0.3)
            replica.send_signal(signal.SIGTERM)
            replies = await asyncio.gather(*pending)
        assert sorted(r.json()["n"] for r in replies) == list(range(5))
        assert await asyncio.to_thread(replica.wait, 15) == 0
    finally:
        replica.kill()


async def test_messages_unfinished_after_grace_are_redelivered_not_lost(
    config: AppConfig, tmp_path: Path
) -> None:
    config = replace(config, shutdown_grace=0.5)
    topic = f"{slow_prefix(config)}/commands"
    replica = _start_replica(config, tmp_path)
    try:
        async with MesClient(config.mqtt.port) as mes:
            await _wait_connected(mes, config)
            pending = [
                asyncio.ensure_future(
                    mes.request(topic, SLOW_TYPE, {"n": i, "seconds": 3.0}, timeout=30)
                )
                for i in range(3)
            ]
            await asyncio.sleep(0.5)
            replica.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(replica.wait, 15) == 0
            first_pid = replica.pid
            # Same instance id: the broker redelivers the unacknowledged requests.
            replica = _start_replica(config, tmp_path)
            replies = await asyncio.gather(*pending)
        assert sorted(r.json()["n"] for r in replies) == [0, 1, 2]
        assert {r.json()["pid"] for r in replies} == {replica.pid}
        assert replica.pid != first_pid
    finally:
        replica.kill()


@dataclass(kw_only=True)
class Ping(Model):
    __ce_type__: ClassVar[str] = "com.example.test.ping.v1"
    n: int


class Caller(CloudEventProcessor):
    direction = Direction.SOUTHBOUND

    def __init__(self) -> None:
        super().__init__(source="test/caller")
        self.expired: list[CloudEvent] = []
        self.answered: list[tuple[int, str]] = []
        self.changed = asyncio.Event()

    async def on_expired(self, request: CloudEvent) -> None:
        self.expired.append(request)
        self.changed.set()

    @handles_response(Ping)
    async def pong(self, message: Ping, context: ResponseContext) -> None:
        self.answered.append((message.n, context.request.id))
        self.changed.set()


async def test_awaited_response_is_matched_and_unanswered_request_expires(
    config: AppConfig,
) -> None:
    caller = Caller()
    prefix = f"{config.equipment_prefix}"

    def bind(binder: Binder) -> None:
        binder.bind(caller, prefix=prefix, rpc=False)

    async with running(config, [bind]), MesClient(config.mqtt.port) as equipment:
        commands = await equipment.watch(f"{prefix}/+/commands")
        answered = await caller.send_request(Ping(n=7), subject="press1", expiry=5)
        ignored = await caller.send_request(Ping(n=8), subject="press1", expiry=1)
        first = await next_message(commands)
        await next_message(commands)
        assert first.attributes["id"] == answered.id
        # Equipment answers the first command only, on its Response Topic.
        from tests.mesclient import ce_properties

        props = ce_properties(
            Ping.__ce_type__,
            correlation_data=None,
            extra={"causationid": answered.id},
        )
        props.CorrelationData = first.correlation_data
        await equipment.publish(first_response_topic(first), b'{"n": 7}', props)
        async with asyncio.timeout(5):
            while not (caller.answered and caller.expired):
                caller.changed.clear()
                await caller.changed.wait()
    assert caller.answered == [(7, answered.id)]
    assert [r.id for r in caller.expired] == [ignored.id]


def first_response_topic(message: object) -> str:
    topic = getattr(message, "response_topic", None)
    assert topic, "command carried no Response Topic"
    return str(topic)


async def test_redis_outage_delays_processing_until_redis_returns(
    mosquitto: LocalMosquitto, own_redis: LocalRedis
) -> None:
    config = replace(make_config(mosquitto.port, own_redis.port), storage_retry_seconds=30.0)
    topic = f"{config.greeting_prefix}/commands"
    async with running(config) as runtime, MesClient(mosquitto.port) as mes:
        await mes.request(topic, GREETING_TYPE, {"name": "up"})
        await asyncio.to_thread(own_redis.stop)
        waiting = asyncio.ensure_future(
            mes.request(topic, GREETING_TYPE, {"name": "during"}, timeout=20)
        )
        await asyncio.sleep(1.0)
        assert not waiting.done()
        await asyncio.to_thread(own_redis.start)
        reply = await waiting
        assert reply.json()["name"] == "during"
        assert runtime.mqtt.ready


async def test_redis_outage_beyond_retry_gives_storage_unavailable(
    mosquitto: LocalMosquitto, own_redis: LocalRedis
) -> None:
    config = replace(make_config(mosquitto.port, own_redis.port), storage_retry_seconds=1.0)
    topic = f"{config.greeting_prefix}/commands"
    async with running(config), MesClient(mosquitto.port) as mes:
        await asyncio.to_thread(own_redis.stop)
        reply = await mes.request(topic, GREETING_TYPE, {"name": "x"}, timeout=10)
        assert reply.attributes["mdcserrorkind"] == "storage_unavailable"
        await asyncio.to_thread(own_redis.start)
        ok = await mes.request(topic, GREETING_TYPE, {"name": "back"}, timeout=10)
        assert ok.json()["name"] == "back"
