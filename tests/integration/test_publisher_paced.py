"""The paced state-index of a large scope: correct, retained and consecutive after a
stream of changes, and published no more often than its pacing allows."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from microdcs.app.config import AppConfig
from tests.conftest import running
from tests.integration.test_jobs_helpers import SCOPE, Station
from tests.integration.test_publisher import index_jobs, retained_state, revisions
from tests.mesclient import MesClient, Received

READY = "NotAllowedToStart.Ready"


async def settled(queue: asyncio.Queue[Received], jobs: dict[str, str]) -> list[Received]:
    """Index publications up to the first one listing exactly ``jobs`` (10 s at most)."""
    seen: list[Received] = []
    async with asyncio.timeout(10):
        while True:
            seen.append(await queue.get())
            if index_jobs(seen[-1]) == jobs:
                return seen


async def test_a_large_scopes_paced_index_settles_on_the_job_list(config: AppConfig) -> None:
    # 300 jobs at 1,000 entries a second: the index at most every 0.3 s (interval 0.02 s).
    config = replace(
        config, publisher_interval_seconds=0.02, publisher_index_entries_per_second=1_000
    )
    base = f"{config.jobs_prefix}/{SCOPE}"
    jobs = [f"J{n}" for n in range(300)]
    async with MesClient(config.mqtt.port) as watcher:
        index = await watcher.watch(f"{base}/state-index")
        async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
            station = Station(mes, config.jobs_prefix, runtime)
            for job_id in jobs:
                assert await station.store(job_id) == 1
            expected = dict.fromkeys(jobs, READY)
            first = await settled(index, expected)
            # Changes one after the other, each its own pass: the paced index coalesces them.
            started = time.monotonic()
            for job_id in jobs[:40]:
                assert await station.do("Cancel", job_id) == 1
                del expected[job_id]
            for job_id in ("K1", "K2", "K3"):
                assert await station.store(job_id) == 1
                expected[job_id] = READY
            assert await station.store("J100", "Update", Priority=9) == 1
            changes_took = time.monotonic() - started
            # The last change may fall into a pause: its index follows without another one.
            later = await settled(index, expected)
            settled_after = time.monotonic() - started
            retained = await retained_state(config.mqtt.port, base)
    seen = first + later
    assert revisions(seen) == list(range(1, len(seen) + 1))  # consecutive, none skipped
    assert index_jobs(retained[f"{base}/state-index"]) == expected
    assert retained[f"{base}/state-index"].json()["seq"] == len(seen)
    order = retained[f"{base}/order/J100"].json()
    assert order["JobOrder"]["Priority"] == 9
    assert f"{base}/order/J0" not in retained and f"{base}/order/K3" in retained
    # 44 changes, each a pass of its own at 0.02 s: paced to one index per 0.26-0.3 s.
    assert len(later) <= changes_took / 0.25 + 2, (len(later), changes_took)
    assert settled_after < changes_took + 1.0


async def test_an_index_still_due_at_shutdown_is_published_by_the_next_holder_at_once(
    config: AppConfig,
) -> None:
    # 20 jobs at 5 entries a second: after the first index, the next one 4 s later at best.
    config = replace(config, publisher_index_entries_per_second=5)
    base = f"{config.jobs_prefix}/{SCOPE}"
    async with MesClient(config.mqtt.port) as watcher:
        index = await watcher.watch(f"{base}/state-index")
        orders = await watcher.watch(f"{base}/order/LAST")
        async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
            station = Station(mes, config.jobs_prefix, runtime)
            assert await station.store("J0") == 1
            first = await settled(index, {"J0": READY})
            for n in range(1, 20):
                assert await station.store(f"J{n}") == 1
            assert await station.store("LAST") == 1
            await asyncio.wait_for(orders.get(), 2)  # its order/ is out, the index is due
        stale = [index.get_nowait() for _ in range(index.qsize())]
        expected = dict.fromkeys([f"J{n}" for n in range(20)] + ["LAST"], READY)
        assert all(index_jobs(m) != expected for m in stale)
        started = time.monotonic()
        async with running(config):
            later = await settled(index, expected)
            took = time.monotonic() - started
    assert revisions(first + stale + later) == list(range(1, len(first + stale + later) + 1))
    assert took < 3.0  # not after the 4 s pause: the cursor said the index was behind
