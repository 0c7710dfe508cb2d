"""The deployments of docs/operations.md, run for real.

Every ```sh block there that starts with ``# deployment: NAME`` is parsed into settings;
the test of NAME replaces only addresses, ports, passwords and file paths with those of
real servers of that kind on loopback, loads the result with the runtime's own
configuration loader, and serves a job Store end to end with it. A block that names a
setting that does not exist, or a combination that does not work, fails here.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from microdcs.app.config import AppConfig, load_config
from microdcs.app.devstack import LocalMosquitto, LocalRedisCluster
from microdcs.app.runtime import Runtime
from tests.conftest import RedisServer, make_config, running
from tests.integration.test_broker_acl import LoggedInMes, SecuredBroker, kubernetes
from tests.integration.test_redis_tls_sentinel import (
    Certificates,
    Replicated,
    TlsRedis,
    certificates,
    replicated,
    store_job,
)
from tests.mesclient import MesClient

__all__ = ["certificates", "kubernetes", "replicated"]  # fixtures used below

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
BLOCK = re.compile(r"```sh\n# deployment: (?P<name>[\w-]+)\n(?P<body>.*?)```", re.S)
SCOPE = "line1"


def deployments() -> dict[str, dict[str, str]]:
    """Each documented deployment's settings, by name."""
    found: dict[str, dict[str, str]] = {}
    for match in BLOCK.finditer(OPERATIONS.read_text(encoding="utf-8")):
        settings: dict[str, str] = {}
        for line in match["body"].splitlines():
            if line.strip() and not line.startswith("#"):
                key, sep, value = line.partition("=")
                assert sep, f"not KEY=VALUE in deployment {match['name']}: {line!r}"
                settings[key.strip()] = value.strip()
        found[match["name"]] = settings
    return found


def documented(name: str, **local: str) -> AppConfig:
    """The deployment ``name`` as the runtime loads it, with ``local`` replacing what
    only this machine knows (each replaced setting must be in the block)."""
    settings = deployments()[name]
    missing = set(local) - set(settings)
    assert not missing, f"{name} does not document {sorted(missing)}"
    return load_config({**settings, **local})


def test_the_documented_deployments_are_the_tested_ones() -> None:
    # mqtt-k8s-sat runs in tests/integration/test_mqtt_auth.py (a broker that speaks it).
    expected = {
        "mqtt-tls-passwords",
        "mqtt-k8s-sat",
        "redis-tls-acl",
        "redis-sentinel",
        "redis-cluster",
    }
    assert set(deployments()) == expected


async def ready_tasks(runtime: Runtime) -> dict[str, bool]:
    """The background tasks' health a few seconds in: a task that a deployment breaks
    (an ACL without stream commands, say) has crashed by then."""
    await asyncio.sleep(1.0)
    return runtime.app.task_health()


async def test_mqtt_over_tls_with_passwords(
    kubernetes: SecuredBroker, redis_server: RedisServer
) -> None:
    login = kubernetes.login("runtime")
    loaded = documented(
        "mqtt-tls-passwords",
        APP_MQTT_HOSTNAME=login.hostname,
        APP_MQTT_PORT=str(login.port),
        APP_MQTT_TLS_CA_FILE=kubernetes.ca_file,
        APP_MQTT_PASSWORD=kubernetes.passwords["runtime"],
    )
    assert loaded.mqtt.tls and loaded.mqtt.username == "runtime"
    base = make_config(kubernetes.port, redis_server)
    config = replace(
        base,
        # The shipped ACL grants the runtime the default topics only.
        jobs_prefix="app/jobs",
        equipment_prefix="app/equipment",
        greeting_prefix="app/greeting",
        mqtt=replace(
            loaded.mqtt,
            shared_subscription=base.mqtt.shared_subscription,
            response_topic_base="microdcs/responses",
            session_expiry=base.mqtt.session_expiry,
        ),
    )
    async with running(config) as runtime, LoggedInMes(kubernetes) as mes:
        assert await store_job(mes, f"app/jobs/{SCOPE}/commands") == 1
        assert all((await ready_tasks(runtime)).values())


def documented_acl(prefix: str, password: str) -> list[str]:
    """The ``ACL SETUSER`` line of the Redis TLS/ACL section, for ``prefix``."""
    text = OPERATIONS.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("ACL SETUSER"))
    words = line.replace("~microdcs:*", f"~{prefix}:*").replace(">PASSWORD", f">{password}")
    return words.split()


@pytest.fixture
def acl_tls_redis(
    tmp_path: Path, certificates: Certificates
) -> Iterator[tuple[TlsRedis, str, str]]:
    """A TLS-only Redis with the documented ACL user for a prefix of this test."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    with TlsRedis(tmp_path / "redis", certificates) as server:
        admin = redis.Redis(
            host="127.0.0.1",
            port=server.port,
            ssl=True,
            ssl_ca_certs=str(certificates.ca),
            ssl_certfile=str(certificates.client_cert),
            ssl_keyfile=str(certificates.client_key),
        )
        admin.execute_command(*documented_acl(prefix, password))
        admin.close()
        yield server, prefix, password


async def test_redis_with_tls_and_an_acl_user(
    mosquitto: LocalMosquitto, acl_tls_redis: tuple[TlsRedis, str, str]
) -> None:
    server, prefix, password = acl_tls_redis
    certs = server.certs
    loaded = documented(
        "redis-tls-acl",
        APP_REDIS_HOSTNAME="127.0.0.1",
        APP_REDIS_PORT=str(server.port),
        APP_REDIS_TLS_CA_FILE=str(certs.ca),
        APP_REDIS_TLS_CERT_FILE=str(certs.client_cert),
        APP_REDIS_TLS_KEY_FILE=str(certs.client_key),
        APP_REDIS_PASSWORD=password,
        APP_REDIS_KEY_PREFIX=prefix,
    )
    assert loaded.redis.tls and loaded.redis.username == "microdcs"
    config = replace(make_config(mosquitto.port, server.port), redis=loaded.redis)
    async with running(config) as runtime, MesClient(mosquitto.port) as mes:
        assert await store_job(mes, f"{config.jobs_prefix}/{SCOPE}/commands") == 1
        assert all((await ready_tasks(runtime)).values())


async def test_redis_sentinel(mosquitto: LocalMosquitto, replicated: Replicated) -> None:
    loaded = documented(
        "redis-sentinel",
        APP_REDIS_SENTINELS=f"127.0.0.1:{replicated.sentinel.port}",
        APP_REDIS_PASSWORD="",
    )
    assert loaded.redis.mode == "sentinel" and loaded.redis.sentinel_master == "mymaster"
    base = make_config(mosquitto.port, replicated.primary.port)
    config = replace(base, redis=replace(loaded.redis, key_prefix=base.redis.key_prefix))
    async with running(config) as runtime, MesClient(mosquitto.port) as mes:
        assert await store_job(mes, f"{config.jobs_prefix}/{SCOPE}/commands") == 1
        assert all((await ready_tasks(runtime)).values())


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    """3 primaries with a replica each: what APP_REDIS_WAIT_REPLICAS=1 needs."""
    with LocalRedisCluster(tmp_path / "cluster", 3, 1) as cluster:
        yield cluster


async def test_redis_cluster(
    mosquitto: LocalMosquitto, replicated_cluster: LocalRedisCluster
) -> None:
    loaded = documented("redis-cluster", APP_REDIS_NODES=replicated_cluster.nodes)
    assert loaded.redis.mode == "cluster" and loaded.redis.wait_replicas == 1
    base = make_config(mosquitto.port, replicated_cluster)
    config = replace(base, redis=replace(loaded.redis, key_prefix=base.redis.key_prefix))
    async with running(config) as runtime, MesClient(mosquitto.port) as mes:
        assert await store_job(mes, f"{config.jobs_prefix}/{SCOPE}/commands") == 1
        assert all((await ready_tasks(runtime)).values())
