"""Readiness: transports ready and Redis answering, with the Redis ping cached."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from microdcs.app.telemetry.health import Readiness


@dataclass
class FakeHandler:
    name: str
    ready: bool = True


class FakeRedis:
    def __init__(self, answers: bool = True, delay: float = 0.0) -> None:
        self.answers = answers
        self.delay = delay
        self.pings = 0

    async def ping(self) -> bool:
        self.pings += 1
        await asyncio.sleep(self.delay)
        return self.answers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_ready_when_every_transport_and_redis_are() -> None:
    redis = FakeRedis()
    readiness = Readiness([FakeHandler("mqtt"), FakeHandler("rpc")], redis.ping)
    assert await readiness.check() == (True, {"mqtt": True, "rpc": True, "redis": True})
    assert readiness.last is True


async def test_not_ready_while_a_transport_is_disconnected() -> None:
    mqtt = FakeHandler("mqtt", ready=False)
    ready, parts = await Readiness([mqtt], FakeRedis().ping).check()
    assert not ready
    assert parts["mqtt"] is False


async def test_not_ready_while_redis_does_not_answer_and_failures_are_counted() -> None:
    readiness = Readiness([FakeHandler("mqtt")], FakeRedis(answers=False).ping, cache_seconds=0)
    assert (await readiness.check())[0] is False
    await readiness.check()
    assert readiness.ping_failures == 2


async def test_a_hanging_ping_counts_as_down() -> None:
    redis = FakeRedis(delay=10)
    readiness = Readiness([], redis.ping, ping_timeout=0.05)
    assert await readiness.redis_ok() is False


async def test_redis_is_pinged_at_most_once_per_cache_period() -> None:
    redis, clock = FakeRedis(), Clock()
    readiness = Readiness([FakeHandler("mqtt")], redis.ping, cache_seconds=1.0, clock=clock)
    await asyncio.gather(*(readiness.check() for _ in range(10)))
    clock.now += 0.5
    await readiness.check()
    assert redis.pings == 1
    clock.now += 0.6
    await readiness.check()
    assert redis.pings == 2


async def test_a_recovered_redis_is_noticed_after_the_cache_period() -> None:
    redis, clock = FakeRedis(answers=False), Clock()
    readiness = Readiness([], redis.ping, cache_seconds=1.0, clock=clock)
    assert await readiness.redis_ok() is False
    redis.answers = True
    assert await readiness.redis_ok() is False
    clock.now += 1.0
    assert await readiness.redis_ok() is True
