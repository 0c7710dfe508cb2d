"""The shipped production broker settings, run for real: passwords, the ACL, TLS.

Mosquitto is started from ``mosquitto/mosquitto.prod.conf`` (compose) and from the
Kubernetes ConfigMap (TLS only, with a self-signed certificate), each with its shipped
ACL; only listeners and file paths are changed. Users ``runtime``, ``mes`` and
``equipment`` get generated passwords, Redis requires one. Each role does what it must
and nothing it must not; a client without valid credentials gets nothing at all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
import yaml

from microdcs.app.config import AppConfig, MqttConfig, RedisConfig
from microdcs.app.devstack import LocalMosquitto, LocalRedis
from microdcs.app.simulator import EquipmentSimulator, SimulatorSettings
from tests.conftest import make_config, running
from tests.integration.test_jobs_helpers import JC, STATUS_EVENT, state_numbers
from tests.mesclient import MesClient, Received, ce_properties, next_message

REPO = Path(__file__).resolve().parents[2]
ROLES = ("runtime", "mes", "equipment")
SCOPE = "woodworking"
JOB_COMMANDS = f"app/jobs/{SCOPE}/commands"
EQUIPMENT_COMMANDS = f"app/equipment/{SCOPE}/commands"
EQUIPMENT_EVENTS = f"app/equipment/{SCOPE}/events"


@dataclass(frozen=True)
class SecuredBroker:
    port: int
    passwords: dict[str, str]
    ca_file: str
    #: TLS only (the Kubernetes configuration), else plain TCP.
    tls: bool = False

    def login(self, role: str, **overrides: Any) -> MqttConfig:
        """The ``APP_MQTT_*`` settings of a client logging in as ``role``."""
        mqtt = MqttConfig(
            hostname="127.0.0.1", port=self.port, username=role, password=self.passwords[role]
        )
        if self.tls:
            mqtt = replace(mqtt, hostname="localhost", tls=True, tls_ca_file=self.ca_file)
        return replace(mqtt, **overrides)


def password_file(path: Path, passwords: dict[str, str]) -> None:
    """Hashed entries as ``mosquitto_passwd -b`` writes them (its SHA-512 format without it)."""
    path.write_text("")
    tool = shutil.which("mosquitto_passwd")
    for user, password in passwords.items():
        if tool:
            subprocess.run([tool, "-b", str(path), user, password], check=True)
        else:
            salt = os.urandom(12)
            digest = hashlib.sha512(password.encode() + salt).digest()
            encoded = f"$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
            with path.open("a") as out:
                out.write(f"{user}:{encoded}\n")


def self_signed(directory: Path) -> tuple[str, str]:
    cert, key = directory / "broker.crt", directory / "broker.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def localized(conf: str, settings: dict[str, str]) -> str:
    """A shipped broker configuration with ``settings`` (listener, paths) replaced."""
    lines = []
    for line in conf.splitlines():
        key = line.partition(" ")[0]
        lines.append(f"{key} {settings[key]}" if key in settings else line)
    if os.geteuid() == 0:
        lines.append("user root")  # else it drops to 'mosquitto', who cannot read tmp files
    return "\n".join(lines) + "\n"


def start_broker(workdir: Path, conf: str, acl: str, *, tls: bool) -> Iterator[SecuredBroker]:
    """Mosquitto on loopback from a shipped configuration and ACL, with generated logins."""
    passwords = {role: secrets.token_urlsafe(16) for role in ROLES}
    password_file(workdir / "passwd", passwords)
    (workdir / "acl").write_text(acl)
    cert, key = self_signed(workdir)
    broker = LocalMosquitto(workdir)
    files = {
        "password_file": str(workdir / "passwd"),
        "acl_file": str(workdir / "acl"),
        "persistence_location": f"{workdir / 'data'}/",
        "certfile": cert,
        "keyfile": key,
        "listener": f"{broker.port} 127.0.0.1",
    }
    broker.config_path.write_text(localized(conf, files))
    with broker:
        yield SecuredBroker(broker.port, passwords, cert, tls=tls)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    """The broker of ``mosquitto/mosquitto.prod.conf`` and ``mosquitto/acl`` (compose)."""
    conf = (REPO / "mosquitto" / "mosquitto.prod.conf").read_text()
    acl = (REPO / "mosquitto" / "acl").read_text()
    yield from start_broker(tmp_path_factory.mktemp("secured-mosquitto"), conf, acl, tls=False)


@pytest.fixture(scope="module")
def kubernetes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    """The broker of the Kubernetes ConfigMap (TLS only), with its ACL."""
    manifest = REPO / "deploy" / "kubernetes" / "10-mosquitto.yaml"
    configmap = next(yaml.safe_load_all(manifest.read_text()))
    data = configmap["data"]
    workdir = tmp_path_factory.mktemp("kubernetes-mosquitto")
    yield from start_broker(workdir, data["mosquitto.conf"], data["acl"], tls=True)


@pytest.fixture(scope="module")
def redis_with_password(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisConfig]:
    """A Redis that requires a password, as in Kubernetes and compose."""
    password = secrets.token_hex(16)

    class PasswordRedis(LocalRedis):
        def command(self) -> list[str]:
            return [*super().command(), "--requirepass", password]

    with PasswordRedis(tmp_path_factory.mktemp("redis-auth"), appendonly=False) as server:
        yield RedisConfig(hostname="127.0.0.1", port=server.port, password=password)


class LoggedInMes(MesClient):
    """The test MES, logged in as a role of the shipped ACL (over TLS if the broker is)."""

    def __init__(self, broker: SecuredBroker, role: str = "mes") -> None:
        super().__init__(broker.port)
        login = broker.login(role)
        self._client = aiomqtt.Client(
            login.hostname,
            login.port,
            identifier=f"{role}-{uuid.uuid4().hex[:8]}",
            protocol=aiomqtt.ProtocolVersion.V5,
            username=login.username,
            password=login.password,
            tls_context=ssl.create_default_context(cafile=login.tls_ca_file) if login.tls else None,
        )


def production_topics(config: AppConfig, broker: SecuredBroker, redis: RedisConfig) -> AppConfig:
    """A runtime on the default topics (those of the ACL), logged in as ``runtime``."""
    mqtt = replace(
        broker.login("runtime"),
        shared_subscription=config.mqtt.shared_subscription,
        response_topic_base="microdcs/responses",
        session_expiry=config.mqtt.session_expiry,
    )
    return replace(
        config,
        jobs_prefix="app/jobs",
        equipment_prefix="app/equipment",
        greeting_prefix="app/greeting",
        mqtt=mqtt,
        redis=replace(redis, key_prefix=config.redis.key_prefix),
    )


async def store_end_to_end(broker: SecuredBroker, redis: RedisConfig) -> None:
    """A Store from the MES user answered, its status event and retained order seen."""
    config = production_topics(make_config(broker.port, redis.port), broker, redis)
    job = f"J-{uuid.uuid4().hex[:8]}"
    async with running(config), LoggedInMes(broker) as mes:
        events = await mes.watch(f"app/jobs/{SCOPE}/events")
        order = await mes.watch(f"app/jobs/{SCOPE}/order/{job}")
        reply = await mes.request(
            JOB_COMMANDS, f"{JC}.Store.v2", {"JobOrder": {"JobOrderID": job}}, subject=SCOPE
        )
        assert reply.json() == {"ReturnStatus": 1}
        event = await next_message(events)
        assert event.attributes["type"] == STATUS_EVENT
        assert state_numbers(event.json()["JobState"]) == [1, 2]
        retained = await next_message(order)
        assert retained.json()["JobOrder"]["JobOrderID"] == job


async def test_the_runtime_user_serves_a_store_of_the_mes_user_end_to_end(
    secured: SecuredBroker, redis_with_password: RedisConfig
) -> None:
    await store_end_to_end(secured, redis_with_password)


async def test_the_kubernetes_broker_serves_the_runtime_and_the_mes_over_tls(
    kubernetes: SecuredBroker, redis_with_password: RedisConfig
) -> None:
    await store_end_to_end(kubernetes, redis_with_password)


@pytest.fixture
async def watcher(secured: SecuredBroker) -> AsyncIterator[LoggedInMes]:
    """Subscribed (as ``runtime``, which may read them) to the topics others must not use."""
    async with LoggedInMes(secured, "runtime") as client:
        yield client


async def delivered_before(
    watcher: LoggedInMes, broker: SecuredBroker, role: str, topic: str, sentinel_topic: str
) -> list[Received]:
    """What ``watcher`` got of a publish by ``role`` on ``topic``, once a later one arrived.

    The broker has decided on a QoS 1 publish when it acknowledges it, so once an allowed
    sentinel published after that has been delivered, the first publish was delivered
    already or never will be. The sentinel comes from a second connection: with the
    shipped ``max_queued_messages 0``, Mosquitto 2.0 disconnects a client after a denied
    publish.
    """
    seen = await watcher.watch(topic)
    sentinels = await watcher.watch(sentinel_topic)
    with contextlib.suppress(aiomqtt.MqttError, ExceptionGroup):
        async with LoggedInMes(broker, role) as sender:
            await sender.publish(topic, b"{}", ce_properties("com.example.forged.v1"))
    async with LoggedInMes(broker, role) as sender:
        await sender.publish(sentinel_topic, b"{}", ce_properties("com.example.sentinel.v1"))
    await next_message(sentinels)
    return [seen.get_nowait() for _ in range(seen.qsize())]


@pytest.mark.parametrize(
    "topic",
    [EQUIPMENT_COMMANDS, "microdcs/responses/replica-1", f"app/jobs/{SCOPE}/events",
     f"app/jobs/{SCOPE}/order/J1"],
    ids=["equipment-command", "runtime-response-topic", "job-event", "retained-order"],
)  # fmt: skip
async def test_the_mes_cannot_publish_outside_its_command_topics(
    secured: SecuredBroker, watcher: LoggedInMes, topic: str
) -> None:
    assert await delivered_before(watcher, secured, "mes", topic, JOB_COMMANDS) == []


@pytest.mark.parametrize(
    "topic",
    [JOB_COMMANDS, f"app/equipment/{SCOPE}/other/commands", "microdcs/responses/replica-1"],
    ids=["job-command", "equipment-command", "runtime-response-topic"],
)
async def test_equipment_cannot_publish_commands_or_responses(
    secured: SecuredBroker, watcher: LoggedInMes, topic: str
) -> None:
    assert await delivered_before(watcher, secured, "equipment", topic, EQUIPMENT_EVENTS) == []


@pytest.mark.parametrize(
    ("role", "topic", "sentinel_topic"),
    [("mes", EQUIPMENT_COMMANDS, f"app/jobs/{SCOPE}/events"),
     ("equipment", JOB_COMMANDS, f"app/equipment/{SCOPE}/other/commands"),
     ("equipment", f"app/jobs/{SCOPE}/events", f"app/equipment/{SCOPE}/other/commands")],
    ids=["mes-equipment-command", "equipment-job-command", "equipment-job-event"],
)  # fmt: skip
async def test_a_role_receives_nothing_outside_its_read_grants(
    secured: SecuredBroker, role: str, topic: str, sentinel_topic: str
) -> None:
    """The broker acknowledges the subscription but delivers nothing (see the ACL)."""
    async with LoggedInMes(secured, role) as reader, LoggedInMes(secured, "runtime") as runtime:
        seen = await reader.watch(topic)
        sentinels = await reader.watch(sentinel_topic)
        await runtime.publish(topic, b"{}", ce_properties("com.example.secret.v1"))
        await runtime.publish(sentinel_topic, b"{}", ce_properties("com.example.sentinel.v1"))
        await next_message(sentinels)
        assert seen.empty()


@pytest.mark.parametrize("broker", ["secured", "kubernetes"])
@pytest.mark.parametrize(
    ("username", "password"),
    [(None, None), ("mes", "wrong"), ("nobody", "x")],
    ids=["anonymous", "wrong-password", "unknown-user"],
)
async def test_a_client_without_valid_credentials_is_refused(
    request: pytest.FixtureRequest, broker: str, username: str | None, password: str | None
) -> None:
    login = replace(request.getfixturevalue(broker).login("mes"), username=username)
    client = aiomqtt.Client(
        login.hostname,
        login.port,
        protocol=aiomqtt.ProtocolVersion.V5,
        username=username,
        password=password,
        tls_context=ssl.create_default_context(cafile=login.tls_ca_file) if login.tls else None,
    )
    with pytest.raises(aiomqtt.MqttError):
        async with client:
            pass


async def command_answered(broker: SecuredBroker, settings: SimulatorSettings) -> Received:
    """A command sent (as ``runtime``) to the simulator, and its answer."""
    sim = EquipmentSimulator(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(sim.run(stop))
    try:
        async with asyncio.timeout(5):
            await sim.connected.wait()
        async with LoggedInMes(broker, "runtime") as runtime:
            answers = await runtime.watch(EQUIPMENT_EVENTS)
            props = ce_properties(
                "com.example.drill.v1",
                subject=SCOPE,
                response_topic=EQUIPMENT_EVENTS,
                correlation_data=b"cmd-1",
                extra={"correlationid": "cmd-1"},
            )
            await runtime.publish(EQUIPMENT_COMMANDS, orjson.dumps({"DelayMs": 0}), props)
            return await next_message(answers)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_the_simulator_logs_in_as_equipment_and_answers_commands(
    secured: SecuredBroker,
) -> None:
    settings = SimulatorSettings(mqtt=secured.login("equipment"), prefix="app/equipment")
    answer = await command_answered(secured, settings)
    assert answer.attributes["type"] == "com.example.drill.v1.response"
    assert answer.correlation_data == b"cmd-1"


async def test_the_simulator_connects_with_tls_like_the_runtime(kubernetes: SecuredBroker) -> None:
    settings = SimulatorSettings(mqtt=kubernetes.login("equipment"), prefix="app/equipment")
    assert settings.broker.tls
    answer = await command_answered(kubernetes, settings)
    assert answer.attributes["type"] == "com.example.drill.v1.response"
