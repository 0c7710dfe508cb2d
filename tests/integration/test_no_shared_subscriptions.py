"""Issue 14: brokers without shared subscriptions (CONNACK Shared Subscription Available = 0).

The replica then subscribes plain filters, and only the holder of the ingress lease
subscribes the request topics: every request is answered once however many replicas run,
and a standby takes over when the holder leaves.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

from microdcs.app.config import AppConfig
from microdcs.app.devstack import LocalRedis
from microdcs.app.wiring.ingress import ingress_lease
from microdcs.core.limits import LimitsConfig
from microdcs.examples.greeting import GREETING_TYPE, GreetingProcessor
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.ingress import (
    SHARED_SUBSCRIPTION_AVAILABLE,
    SubscriptionMode,
    choose_mode,
)
from microdcs.transports.mqtt.options import MqttConfig
from microdcs.transports.replica import ReplicaOptions
from tests.conftest import redis_config, running
from tests.integration.test_mqtt_ack_order import suback
from tests.integration.test_mqtt_conformance import connack, scripted_broker
from tests.mesclient import MesClient

NOT_AVAILABLE = bytes((SHARED_SUBSCRIPTION_AVAILABLE, 0))


class _Election:
    leading = False

    def campaign(self, active: bool) -> None: ...
    async def settle(self) -> None: ...
    async def wait_leading(self, leading: bool) -> None: ...
    async def resign(self) -> None: ...


def test_the_mode_follows_the_connack_and_the_group() -> None:
    offered = codec.ConnAck(False, 0, {})
    refused = codec.ConnAck(False, 0, {SHARED_SUBSCRIPTION_AVAILABLE: 0})
    election = _Election()
    assert choose_mode("g", offered, election) is SubscriptionMode.SHARED
    assert choose_mode("g", refused, election) is SubscriptionMode.PLAIN_ELECTED
    assert choose_mode("", offered, election) is SubscriptionMode.PLAIN_ELECTED
    assert choose_mode("g", refused, None) is SubscriptionMode.PLAIN


def subscribed_filters(body: bytes) -> list[str]:
    _, pos = codec.decode_properties(body, 2, len(body))
    filters = []
    while pos < len(body):
        length = (body[pos] << 8) | body[pos + 1]
        filters.append(body[pos + 2 : pos + 2 + length].decode())
        pos += 2 + length + 1
    return filters


async def test_a_broker_without_shared_subscriptions_gets_plain_filters() -> None:
    """Subscribing $share/... there is a protocol error (ejabberd disconnects on it)."""
    async with scripted_broker() as broker:
        mqtt = MqttConfig(hostname="127.0.0.1", port=broker.port, keepalive=0)
        replica = ReplicaOptions(
            instance_id="plain", source="test", shutdown_grace=0.5, limits=LimitsConfig()
        )
        handler = MqttHandler(mqtt, replica)
        handler.bind(GreetingProcessor(source="test"), prefix="plant/greeting")
        shutdown = asyncio.Event()
        task = asyncio.create_task(handler.run(shutdown))
        try:
            conversation = await broker.accept()
            await conversation.expect(codec.CONNECT)
            await conversation.send(connack(0, NOT_AVAILABLE))
            subscribe = await conversation.expect(codec.SUBSCRIBE)
            filters = subscribed_filters(subscribe.body)
            await conversation.send(suback(subscribe.body))
            async with asyncio.timeout(5):
                await handler.connected.wait()
            assert "plant/greeting/commands" in filters
            assert not [f for f in filters if f.startswith("$share/")]
            assert handler.subscription_mode is SubscriptionMode.PLAIN
            assert handler.takes_requests
        finally:
            shutdown.set()
            await asyncio.wait_for(task, 10)


def plain(config: AppConfig, instance_id: str) -> AppConfig:
    mqtt = replace(config.mqtt, shared_subscription="", ingress_lease_seconds=1.0)
    return replace(config, instance_id=instance_id, mqtt=mqtt)


async def test_two_replicas_answer_each_request_once_and_hand_over(config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/commands"
    first, second = (
        plain(config, f"{config.instance_id}-a"),
        plain(config, f"{config.instance_id}-b"),
    )
    async with MesClient(config.mqtt.port) as mes:
        duplicates = await mes.watch(mes.response_topic)
        async with running(first) as a, running(second) as b:
            async with asyncio.timeout(5):
                while not (a.mqtt.takes_requests or b.mqtt.takes_requests):
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)  # the standby had its chance to subscribe too
            assert a.mqtt.takes_requests != b.mqtt.takes_requests
            assert a.mqtt.subscription_mode is SubscriptionMode.PLAIN_ELECTED
            for n in range(10):
                reply = await mes.request(topic, GREETING_TYPE, {"name": f"n{n}"})
                assert reply.json()["name"] == f"n{n}"
            await asyncio.sleep(0.5)
            assert duplicates.empty(), "a request was answered twice"
            assert a.mqtt.stats.received + b.mqtt.stats.received == 10
            leader, standby = (a, b) if a.mqtt.takes_requests else (b, a)
            leader.app.request_shutdown()
            async with asyncio.timeout(5):
                while not standby.mqtt.takes_requests:
                    await asyncio.sleep(0.02)
            reply = await mes.request(topic, GREETING_TYPE, {"name": "after"})
            assert reply.attributes["source"] == standby.config.resolved_source
            assert reply.json()["name"] == "after"


async def test_a_crashed_holder_is_replaced_once_its_lease_expires(config: AppConfig) -> None:
    """No resignation (a crash): the standby waits out the lease, not longer."""
    async with RedisStore(config.redis) as store:
        a = ingress_lease(store, "a", 0.6)
        b = ingress_lease(store, "b", 0.6)
        shutdown = asyncio.Event()
        task_a = asyncio.create_task(a.run(shutdown))
        await asyncio.wait_for(a.settle(), 2)
        task_b = asyncio.create_task(b.run(shutdown))
        try:
            await asyncio.wait_for(b.settle(), 2)
            assert a.leading and not b.leading
            task_a.cancel()  # the holder dies: it neither renews nor resigns
            started = time.monotonic()
            await asyncio.wait_for(b.wait_leading(True), 3)
            assert 0.3 < time.monotonic() - started < 1.5
        finally:
            shutdown.set()
            task_a.cancel()
            await asyncio.gather(task_a, task_b, return_exceptions=True)


async def test_a_holder_cut_off_from_redis_stands_down_before_its_lease_expires(
    config: AppConfig, tmp_path: Path
) -> None:
    """Redis frozen mid-term: the renewal hangs, and the holder stands down anyway before
    the key could expire (so a standby that still reaches Redis never overlaps it)."""
    with LocalRedis(tmp_path / "redis", appendonly=False) as server:
        async with RedisStore(redis_config(server)) as store:
            election = ingress_lease(store, "a", 1.0)
            shutdown = asyncio.Event()
            task = asyncio.create_task(election.run(shutdown))
            try:
                await asyncio.wait_for(election.settle(), 2)
                renewed = time.monotonic()
                assert election.leading
                os.kill(server.pid, signal.SIGSTOP)
                try:
                    await asyncio.wait_for(election.wait_leading(False), 3)
                    assert time.monotonic() - renewed < 1.0  # the key expires at 1.0 s
                finally:
                    os.kill(server.pid, signal.SIGCONT)
            finally:
                shutdown.set()
                await asyncio.wait_for(task, 5)
