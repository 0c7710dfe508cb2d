"""Redis as plants secure and replicate it: TLS with a client certificate (both the
pipelined connection and redis-py), an unverified certificate refused at start-up naming
the setting, and Sentinel discovery that follows a failover to the promoted replica.

Every server here is a real redis-server (Sentinel is ``redis-server --sentinel``); the
certificates are made by ``openssl`` in the test.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis

from microdcs.app.devstack import LocalMosquitto, LocalRedis, LocalService
from microdcs.core.errors import ConfigurationError, StorageUnavailableError
from microdcs.storage.options import RedisConfig
from microdcs.storage.redis import RedisStore
from tests.conftest import make_config, running
from tests.integration.test_jobs_helpers import JC
from tests.mesclient import MesClient

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

SCOPE = "line1"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _signed(directory: Path, name: str, ca: Path, ca_key: Path) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    extensions = directory / f"{name}.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", f"/CN={name}")  # fmt: skip
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "1", "-out", str(cert),
             "-extfile", str(extensions))  # fmt: skip
    return cert, key


def _authority(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
             "-out", str(cert), "-subj", f"/CN={name}")  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    directory = tmp_path_factory.mktemp("redis-certs")
    ca, ca_key = _authority(directory, "plant-ca")
    other_ca, _ = _authority(directory, "someone-else")
    server_cert, server_key = _signed(directory, "redis", ca, ca_key)
    client_cert, client_key = _signed(directory, "runtime", ca, ca_key)
    return Certificates(ca, server_cert, server_key, client_cert, client_key, other_ca)


class TlsRedis(LocalRedis):
    """TLS only (no plain port), client certificates required."""

    def __init__(self, workdir: Path, certs: Certificates) -> None:
        super().__init__(workdir, appendonly=False)
        self.certs = certs

    def command(self) -> list[str]:
        plain = super().command()
        plain[plain.index("--port") + 1] = "0"
        return [
            *plain,
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.certs.server_cert),
            "--tls-key-file", str(self.certs.server_key),
            "--tls-ca-cert-file", str(self.certs.ca),
            "--tls-auth-clients", "yes",
        ]  # fmt: skip


@pytest.fixture(scope="module")
def tls_redis(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[TlsRedis]:
    with TlsRedis(tmp_path_factory.mktemp("tls-redis"), certificates) as server:
        yield server


def tls_config(server: TlsRedis, **overrides: object) -> RedisConfig:
    certs = server.certs
    config = RedisConfig(
        hostname="127.0.0.1",
        port=server.port,
        key_prefix=f"t{uuid.uuid4().hex[:8]}",
        tls=True,
        tls_ca_file=str(certs.ca),
        tls_cert_file=str(certs.client_cert),
        tls_key_file=str(certs.client_key),
    )
    return replace(config, **overrides)  # type: ignore[arg-type]


async def store_job(mes: MesClient, topic: str) -> int:
    """One Store from the MES; its ReturnStatus."""
    job = f"J-{uuid.uuid4().hex[:8]}"
    reply = await mes.request(
        topic, f"{JC}.Store.v2", {"JobOrder": {"JobOrderID": job}}, subject=SCOPE, timeout=10
    )
    status = reply.json()["ReturnStatus"]
    assert isinstance(status, int)
    return status


async def test_both_connections_speak_tls_with_a_client_certificate(tls_redis: TlsRedis) -> None:
    async with RedisStore(tls_config(tls_redis)) as store:
        await store.execute("SET", store.key("k"), "over tls")
        assert await store.execute("GET", store.key("k")) == b"over tls"
        assert await store.guarded(store.client.get(store.key("k"))) == b"over tls"
        assert await store.ping()


async def test_a_store_is_served_end_to_end_with_redis_over_tls(
    mosquitto: LocalMosquitto, tls_redis: TlsRedis
) -> None:
    base = make_config(mosquitto.port, tls_redis.port)
    config = replace(base, redis=tls_config(tls_redis, key_prefix=base.redis.key_prefix))
    async with running(config), MesClient(mosquitto.port) as mes:
        assert await store_job(mes, f"{config.jobs_prefix}/{SCOPE}/commands") == 1


async def test_a_certificate_of_another_ca_stops_the_start_naming_the_tls_setting(
    tls_redis: TlsRedis,
) -> None:
    config = tls_config(tls_redis, tls_ca_file=str(tls_redis.certs.other_ca))
    with pytest.raises(ConfigurationError) as refused:
        async with RedisStore(config):
            pass  # before the change: started, then failed every command as unavailable
    assert "APP_REDIS_TLS" in str(refused.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)


async def test_without_a_client_certificate_redis_refuses_and_nothing_hangs(
    tls_redis: TlsRedis,
) -> None:
    config = tls_config(tls_redis, tls_cert_file=None, tls_key_file=None, command_timeout=1.0)
    store = RedisStore(config)
    with pytest.raises(StorageUnavailableError):
        async with asyncio.timeout(5):
            await store.pipeline.connect()
            await store.execute("PING")
    store.pipeline.close()
    await store.client.aclose()


# --- Sentinel ------------------------------------------------------------------------


class Primary(LocalRedis):
    """Sends its dataset to a new replica at once (Redis waits 5 s for more replicas)."""

    def command(self) -> list[str]:
        return [*super().command(), "--repl-diskless-sync-delay", "0"]


class Replica(LocalRedis):
    def __init__(self, workdir: Path, primary_port: int) -> None:
        super().__init__(workdir, appendonly=False)
        self.primary_port = primary_port

    def command(self) -> list[str]:
        return [*super().command(), "--replicaof", "127.0.0.1", str(self.primary_port)]


class Sentinel(LocalService):
    """One sentinel with quorum 1 watching ``mymaster``: fails over after one second."""

    def __init__(self, workdir: Path, primary_port: int) -> None:
        super().__init__("sentinel", workdir)
        self.config_path = self.workdir / "sentinel.conf"
        self.config_path.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor mymaster 127.0.0.1 {primary_port} 1\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            "sentinel failover-timeout mymaster 5000\n"
            "sentinel parallel-syncs mymaster 1\n"
        )

    def command(self) -> list[str]:
        return [shutil.which("redis-server") or "redis-server", str(self.config_path), "--sentinel"]

    def primary(self) -> tuple[str, int]:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            host, port = client.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster")
        finally:
            client.close()
        return (host.decode() if isinstance(host, bytes) else host), int(port)


@dataclass
class Replicated:
    primary: LocalRedis
    replica: Replica
    sentinel: Sentinel

    def config(self, key_prefix: str) -> RedisConfig:
        return RedisConfig(
            mode="sentinel",
            sentinels=f"127.0.0.1:{self.sentinel.port}",
            sentinel_master="mymaster",
            key_prefix=key_prefix,
            command_timeout=1.0,
        )


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[Replicated]:
    with (
        Primary(tmp_path / "primary", appendonly=False) as primary,
        Replica(tmp_path / "replica", primary.port) as replica,
        Sentinel(tmp_path / "sentinel", primary.port) as sentinel,
    ):
        _wait_for(lambda: _replica_in_sync(replica), "the replica syncs")
        yield Replicated(primary, replica, sentinel)


def _replica_in_sync(replica: Replica) -> bool:
    info = redis.Redis(host="127.0.0.1", port=replica.port).info("replication")
    return info.get("master_link_status") == "up"


def _sentinel_knows_replica(sentinel: Sentinel) -> bool:
    client = redis.Redis(host="127.0.0.1", port=sentinel.port)
    try:
        return bool(client.execute_command("SENTINEL", "replicas", "mymaster"))
    finally:
        client.close()


def _wait_for(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting until {what}")


async def test_sentinel_names_the_primary_and_the_store_follows_a_failover(
    replicated: Replicated,
) -> None:
    config = replicated.config(f"t{uuid.uuid4().hex[:8]}")
    async with RedisStore(config) as store:
        await store.execute("SET", store.key("before"), "1")
        assert await store.guarded(store.client.get(store.key("before"))) == b"1"
        # Replicated before the primary goes: what Sentinel promotes has it.
        assert await store.execute("WAIT", 1, 2000) == 1
        await asyncio.to_thread(
            _wait_for,
            lambda: _sentinel_knows_replica(replicated.sentinel),
            "sentinel sees the replica",
        )

        replicated.primary.kill()
        await asyncio.to_thread(
            _wait_for,
            lambda: replicated.sentinel.primary()[1] == replicated.replica.port,
            "sentinel promotes the replica",
        )
        # Both connections find the new primary by themselves (the pipelined one after
        # its connection to the dead primary failed once).
        deadline = time.monotonic() + 15
        while True:
            try:
                await store.execute("SET", store.key("after"), "2")
                break
            except StorageUnavailableError:
                assert time.monotonic() < deadline, "the store never found the new primary"
                await asyncio.sleep(0.2)
        assert await store.execute("GET", store.key("before")) == b"1"
        assert (
            await _eventually(lambda: store.guarded(store.client.get(store.key("after")))) == b"2"
        )
        assert store.pipeline._port == replicated.replica.port


async def _eventually(read: object, timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await read()  # type: ignore[operator]
        except StorageUnavailableError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)


async def test_a_store_is_served_end_to_end_through_sentinel(
    mosquitto: LocalMosquitto, replicated: Replicated
) -> None:
    base = make_config(mosquitto.port, replicated.primary.port)
    config = replace(base, redis=replicated.config(base.redis.key_prefix))
    async with running(config), MesClient(mosquitto.port) as mes:
        assert await store_job(mes, f"{config.jobs_prefix}/{SCOPE}/commands") == 1


async def test_an_unknown_master_name_is_storage_unavailable_naming_it(
    replicated: Replicated,
) -> None:
    config = replace(replicated.config("t"), sentinel_master="nosuchmaster")
    store = RedisStore(config)
    with pytest.raises(StorageUnavailableError, match="nosuchmaster"):
        await store.execute("PING")
    store.pipeline.close()
    await store.client.aclose()
