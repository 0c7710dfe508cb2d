"""Redis as operators run it: a frozen server fails commands within the command timeout
(and the store recovers after it thaws), blocking reads keep their block time, and an ACL
user logs in, or is refused at start-up with an error naming it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from microdcs.app.config import load_config
from microdcs.app.devstack import LocalRedis
from microdcs.core.errors import ConfigurationError, StorageUnavailableError
from microdcs.storage.options import RedisConfig
from microdcs.storage.redis import RedisStore, block_seconds
from tests.conftest import RedisServer, redis_config, single_redis

TIMEOUT = 0.5
#: Scheduling slack on a shared CI machine.
MARGIN = 1.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """A server of this test alone: it gets frozen."""
    with LocalRedis(tmp_path / "redis", appendonly=False) as server:
        yield server


class frozen:
    """SIGSTOP the server for the block (SIGCONT on the way out, whatever happens)."""

    def __init__(self, server: LocalRedis) -> None:
        self.pid = server.pid

    def __enter__(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def __exit__(self, *exc: object) -> None:
        os.kill(self.pid, signal.SIGCONT)


def _config(server: int | RedisServer, **overrides: object) -> RedisConfig:
    return redis_config(
        server, key_prefix=f"t{uuid.uuid4().hex[:8]}", command_timeout=TIMEOUT, **overrides
    )


async def test_frozen_redis_fails_pipelined_commands_within_the_timeout_then_recovers(
    own_redis: LocalRedis,
) -> None:
    async with RedisStore(_config(own_redis.port)) as store:
        first_id = await store.execute("CLIENT", "ID")
        with frozen(own_redis):
            started = time.monotonic()
            async with asyncio.timeout(TIMEOUT + 5):  # before the change: waits forever
                replies = await asyncio.gather(
                    store.execute("SET", store.key("a"), "1"),
                    store.execute("GET", store.key("a")),
                    store.execute_many([("INCR", store.key("n")), ("PING",)]),
                    return_exceptions=True,
                )
            elapsed = time.monotonic() - started
            assert isinstance(replies[0], StorageUnavailableError)
            assert "did not answer within 0.5 s" in str(replies[0])
            assert isinstance(replies[1], StorageUnavailableError)
            batch = replies[2]
            assert isinstance(batch, list)
            assert all(isinstance(reply, StorageUnavailableError) for reply in batch)
            assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + MARGIN
            # Still frozen: the re-opened connection times out again, it does not hang.
            started = time.monotonic()
            with pytest.raises(StorageUnavailableError):
                async with asyncio.timeout(TIMEOUT + 5):
                    await store.execute("PING")
            assert time.monotonic() - started < TIMEOUT + MARGIN
        async with asyncio.timeout(5):
            assert await store.execute("PING") == b"PONG"
            assert await store.execute("SET", store.key("b"), "2") == b"OK"
            assert await store.execute("GET", store.key("b")) == b"2"
            # The replies belong to their own requests on a new connection.
            assert await store.execute("CLIENT", "ID") != first_id


async def test_frozen_redis_fails_redis_py_commands_within_the_timeout(
    own_redis: LocalRedis,
) -> None:
    async with RedisStore(_config(own_redis.port)) as store:
        assert await store.guarded(store.client.ping())
        with frozen(own_redis):
            started = time.monotonic()
            with pytest.raises(StorageUnavailableError):
                async with asyncio.timeout(15):  # before the change: the 10 s socket timeout
                    await store.guarded(store.client.get(store.key("a")))
            assert time.monotonic() - started < TIMEOUT + MARGIN
        async with asyncio.timeout(5):
            assert await store.guarded(store.client.set(store.key("a"), b"1"))
            assert await store.guarded(store.client.get(store.key("a"))) == b"1"


async def test_a_blocking_stream_read_gets_its_block_time_on_top_of_the_timeout(
    redis_server: RedisServer,
) -> None:
    async with RedisStore(_config(redis_server)) as store:
        stream = store.key("work")
        await store.guarded(store.client.xgroup_create(stream, "g", id="0", mkstream=True))
        started = time.monotonic()
        reply = await store.guarded(
            store.client.xreadgroup("g", "c", {stream: ">"}, count=1, block=1500)
        )
        elapsed = time.monotonic() - started
        assert not reply  # the block ran out, nothing arrived; no timeout error
        assert 1.4 <= elapsed < 1.5 + MARGIN
        # An entry arriving during the block is delivered.
        reader = asyncio.create_task(
            store.guarded(store.client.xreadgroup("g", "c", {stream: ">"}, count=1, block=3000))
        )
        await asyncio.sleep(1.0)  # longer than the command timeout
        await store.execute("XADD", stream, "*", "f", "v")
        entries = await asyncio.wait_for(reader, 5)
        assert entries and entries[0][1][0][1] == {b"f": b"v"}


def test_block_times_are_read_from_the_command() -> None:
    assert block_seconds(("XREADGROUP", b"GROUP", "g", "c", b"BLOCK", "1500")) == 1.5
    assert block_seconds(("XREAD", "BLOCK", 0, "STREAMS", "s", "$")) == float("inf")
    assert block_seconds(("GET", "k")) is None


#: ACL users are created with ACL SETUSER on the one server (a cluster needs it on every node).
acl = single_redis("ACL users set on one server")


@pytest.fixture
def acl_user(redis_server: LocalRedis) -> Iterator[tuple[str, str]]:
    """A user created through a plain admin connection, removed afterwards."""
    name, password = f"app{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin = redis.Redis(host="127.0.0.1", port=redis_server.port)
    admin.execute_command("ACL", "SETUSER", name, "on", f">{password}", "~*", "&*", "+@all")
    try:
        yield name, password
    finally:
        admin.execute_command("ACL", "DELUSER", name)
        admin.close()


@acl
async def test_the_store_logs_in_as_an_acl_user(
    redis_server: LocalRedis, acl_user: tuple[str, str]
) -> None:
    name, password = acl_user
    async with RedisStore(_config(redis_server.port, username=name, password=password)) as store:
        assert await store.execute("ACL", "WHOAMI") == name.encode()
        assert await store.guarded(store.client.execute_command("ACL", "WHOAMI")) == name.encode()
        assert await store.execute("SET", store.key("k"), "v") == b"OK"


@acl
async def test_a_wrong_password_stops_the_start_up_with_an_error_naming_the_user(
    redis_server: LocalRedis, acl_user: tuple[str, str]
) -> None:
    name, _ = acl_user
    config = _config(redis_server.port, username=name, password="wrong")
    with pytest.raises(ConfigurationError) as raised:
        async with asyncio.timeout(5), RedisStore(config):
            pass
    assert name in str(raised.value)
    assert "APP_REDIS_PASSWORD" in str(raised.value)
    assert "WRONGPASS" in str(raised.value)


@acl
async def test_a_refused_login_later_is_storage_unavailable_naming_the_user(
    redis_server: LocalRedis, acl_user: tuple[str, str]
) -> None:
    """The password changed while running: unavailable (retried), with the user named."""
    name, password = acl_user
    async with RedisStore(_config(redis_server.port, username=name, password=password)) as store:
        admin = redis.Redis(host="127.0.0.1", port=redis_server.port)
        admin.execute_command("ACL", "SETUSER", name, "resetpass", ">other")
        admin.execute_command("CLIENT", "KILL", "USER", name)
        admin.close()
        await asyncio.sleep(0.2)  # the store notices its connection was closed
        with pytest.raises(StorageUnavailableError, match=name):
            async with asyncio.timeout(5):
                await store.execute("PING")
        with pytest.raises(StorageUnavailableError, match=name):
            async with asyncio.timeout(5):
                await store.guarded(store.client.ping())


def test_command_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="APP_REDIS_COMMAND_TIMEOUT"):
        RedisConfig(command_timeout=0)


def test_the_settings_are_read_from_the_environment() -> None:
    config = load_config({"APP_REDIS_COMMAND_TIMEOUT": "0.7", "APP_REDIS_USERNAME": "plant"})
    assert config.redis.command_timeout == 0.7
    assert config.redis.username == "plant"
    assert load_config({}).redis.command_timeout == 2.0
    assert load_config({}).redis.username is None
