"""A background task in a crash loop makes the replica not ready (it used to stay ready
while the SFC engine and the publisher crashed and restarted against a Redis Cluster)."""

from __future__ import annotations

import asyncio

from microdcs.app.application import TASK_HEALTHY_AFTER, AdditionalTask, Application
from microdcs.app.config import AppConfig
from microdcs.app.telemetry.health import Readiness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _redis_ok() -> bool:
    return True


async def test_a_crashing_task_is_unhealthy_until_it_has_run_a_while_after_its_restart() -> None:
    clock = Clock()
    app = Application(AppConfig(), clock=clock)
    crashes = 0
    running = asyncio.Event()

    async def flaky(shutdown: asyncio.Event) -> None:
        nonlocal crashes
        if crashes == 0:
            crashes += 1
            raise RuntimeError("MOVED 1234 127.0.0.1:7001")
        running.set()
        await shutdown.wait()

    async def steady(shutdown: asyncio.Event) -> None:
        await shutdown.wait()

    app.add_task(AdditionalTask("sfc-engine", flaky))
    app.add_task(AdditionalTask("http", steady))
    readiness = Readiness([], _redis_ok, tasks=app.task_health)
    assert app.task_health() == {"sfc-engine": True, "http": True}

    runner = asyncio.create_task(app.run(install_signal_handlers=False))
    await asyncio.sleep(0.05)  # crashed, waiting out its back-off
    assert await readiness.check() == (
        False,
        {"redis": True, "task sfc-engine": False, "task http": True},
    )
    await asyncio.wait_for(running.wait(), 5)  # restarted
    clock.now += TASK_HEALTHY_AFTER - 1
    assert app.task_health()["sfc-engine"] is False
    clock.now += 1
    assert (await readiness.check())[0] is True
    app.request_shutdown()
    await asyncio.wait_for(runner, 5)
