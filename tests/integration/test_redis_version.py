"""The dedupe claim needs Redis 7 (``SET ... NX GET``): an older server stops the
start-up with an error naming the version instead of answering every request
``internal_error``. No Redis 6 is packaged here, so a scripted RESP server plays one; the
real Redis 7 of the suite must pass the same check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from microdcs.app.devstack import LocalRedis
from microdcs.core.errors import ConfigurationError
from microdcs.storage.options import RedisConfig
from microdcs.storage.redis import RedisStore, redis_version
from tests.conftest import redis_config


def test_the_version_is_read_from_info_server() -> None:
    assert redis_version(b"# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n") == (7, 0)
    assert redis_version(b"redis_version:6.2.14\r\n") == (6, 2)
    assert redis_version(b"redis_version:x\r\n") is None
    assert redis_version(b"# Server\r\n") is None


def _bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


@pytest.fixture
async def redis6() -> AsyncIterator[int]:
    """Answers INFO like a Redis 6.2 standalone server, everything else +OK."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if not line.startswith(b"*"):
                continue
            args = [
                (await reader.readline(), await reader.readline())[1].strip()
                for _ in range(int(line[1:]))
            ]
            if args[0].upper() == b"INFO":
                section = args[1].lower() if len(args) > 1 else b""
                body = (
                    "# Cluster\r\ncluster_enabled:0\r\n"
                    if section == b"cluster"
                    else "# Server\r\nredis_version:6.2.14\r\n"
                )
                writer.write(_bulk(body))
            else:
                writer.write(b"+OK\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_redis_6_stops_the_start_naming_the_version(redis6: int) -> None:
    with pytest.raises(ConfigurationError) as refused:
        async with RedisStore(RedisConfig(hostname="127.0.0.1", port=redis6)):
            pass  # before the change: started, then every request failed
    assert "6.2" in str(refused.value) and "7.0 or newer" in str(refused.value)


async def test_the_suites_redis_passes_the_check(redis_server: LocalRedis) -> None:
    async with RedisStore(redis_config(redis_server)) as store:
        assert await store.ping()
