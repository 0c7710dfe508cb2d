"""Issue 14 against a real broker without shared subscriptions: ejabberd's ``mod_mqtt``.

Runs in every pass on a broker of its own (the Makefile's ``services`` target installs
ejabberd). ejabberd announces Shared Subscription Available = 0 and disconnects a client
that subscribes ``$share/...``; before the plain-subscription mode the runtime reconnected
in a loop and was never ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest

from microdcs.app.config import AppConfig
from microdcs.app.devstack import LocalEjabberd, LocalRedis, ServiceError
from microdcs.examples.greeting import GREETING_TYPE
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient, MqttConnectionError
from microdcs.transports.mqtt.ingress import SHARED_SUBSCRIPTION_AVAILABLE, SubscriptionMode
from tests.conftest import make_config, running
from tests.mesclient import MesClient

LOGIN = (LocalEjabberd.username, LocalEjabberd.password)


@pytest.fixture(scope="module")
def ejabberd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEjabberd]:
    broker = LocalEjabberd(tmp_path_factory.mktemp("ejabberd-own"))
    try:
        broker.start()
    except ServiceError as exc:
        pytest.skip(f"ejabberd: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def on_ejabberd(ejabberd: LocalEjabberd, redis_server: LocalRedis) -> AppConfig:
    config = make_config(ejabberd.port, redis_server)
    mqtt = replace(config.mqtt, username=LOGIN[0], password=LOGIN[1])
    return replace(config, mqtt=mqtt)


def client(ejabberd: LocalEjabberd, received: list[codec.Publish]) -> MqttClient:
    options = ClientOptions(
        host="127.0.0.1",
        port=ejabberd.port,
        client_id="probe",
        username=LOGIN[0],
        password=LOGIN[1],
        clean_start=True,
    )
    return MqttClient(options, received.append)


async def test_ejabberd_announces_no_shared_subscriptions(ejabberd: LocalEjabberd) -> None:
    """What the runtime's mode rests on: the flag, and the disconnect on ``$share``."""
    probe = client(ejabberd, [])
    connack = await probe.connect()
    assert connack.properties.get(SHARED_SUBSCRIPTION_AVAILABLE) == 0
    with pytest.raises(MqttConnectionError):
        await probe.subscribe([("$share/g/t", 1)])
    await probe.disconnect()


async def test_the_runtime_serves_on_ejabberd_without_reconnecting(on_ejabberd: AppConfig) -> None:
    topic = f"{on_ejabberd.greeting_prefix}/plant/commands"
    async with (
        running(on_ejabberd) as runtime,
        MesClient(on_ejabberd.mqtt.port, credentials=LOGIN) as mes,
    ):
        assert runtime.mqtt.subscription_mode is SubscriptionMode.PLAIN_ELECTED
        assert runtime.mqtt.takes_requests
        for n in range(3):
            reply = await mes.request(topic, GREETING_TYPE, {"name": f"n{n}"})
            assert reply.json() == {"greeting": f"Hello, n{n}!", "name": f"n{n}"}
        await asyncio.sleep(1.0)
        assert runtime.mqtt.client.epoch == 1, "the runtime reconnected"
        assert runtime.app.ready


async def test_a_standby_on_ejabberd_takes_over_from_a_stopped_holder(
    on_ejabberd: AppConfig,
) -> None:
    mqtt = replace(on_ejabberd.mqtt, ingress_lease_seconds=1.0)
    first = replace(on_ejabberd, instance_id=f"{on_ejabberd.instance_id}-a", mqtt=mqtt)
    second = replace(on_ejabberd, instance_id=f"{on_ejabberd.instance_id}-b", mqtt=mqtt)
    topic = f"{on_ejabberd.greeting_prefix}/commands"
    async with MesClient(on_ejabberd.mqtt.port, credentials=LOGIN) as mes, running(first) as a:
        assert a.mqtt.takes_requests
        async with running(second) as b:
            assert not b.mqtt.takes_requests
            reply = await mes.request(topic, GREETING_TYPE, {"name": "one"})
            assert reply.attributes["source"] == first.resolved_source
            a.app.request_shutdown()
            async with asyncio.timeout(5):
                while not b.mqtt.takes_requests:
                    await asyncio.sleep(0.02)
            reply = await mes.request(topic, GREETING_TYPE, {"name": "two"})
            assert reply.attributes["source"] == second.resolved_source
