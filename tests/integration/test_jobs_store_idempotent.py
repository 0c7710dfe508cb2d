"""Store and StoreAndStart are idempotent by the job they store, not by the dedupe registry.

The job keeps the origin (CloudEvent ``source`` + ``id``) of the Store that stored it, so a
copy of that Store, arriving at once on two replicas or long after, is answered Good again
without a second effect (no second status event), and without the two Redis round trips of
a dedupe claim and record. Another request for the same JobOrderID is still refused; a
copy of a Store whose job was cancelled (deleted) or cleared (archived) stays a copy.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from microdcs.app.config import AppConfig
from microdcs.jobs.keys import ScopeKeys
from microdcs.storage.redis import RedisStore
from tests.conftest import running
from tests.integration.test_jobs_helpers import STATUS_EVENT, Station, two_replicas
from tests.mesclient import MesClient, Received


async def _dedupe_keys(config: AppConfig) -> list[bytes]:
    async with RedisStore(config.redis) as store:
        pattern = store.key("dedupe", "*")
        keys: list[bytes] = await store.execute("KEYS", pattern)
        return keys


async def _stored(config: AppConfig, scope: str, *job_ids: str) -> int:
    """How many of ``job_ids`` are stored (listed) jobs of ``scope``."""
    async with RedisStore(config.redis) as store:
        keys = ScopeKeys.of(store, scope)
        count: int = await store.execute("EXISTS", *(keys.job(j) for j in job_ids))
        return count


async def _status_events(queue: asyncio.Queue[Received], job_id: str) -> int:
    """Status events for ``job_id`` seen so far (after a moment for late ones)."""
    await asyncio.sleep(0.3)
    count = 0
    while not queue.empty():
        message = queue.get_nowait()
        if message.attributes.get("type") == STATUS_EVENT:
            count += message.json()["JobOrder"]["JobOrderID"] == job_id
    return count


async def test_two_copies_of_one_store_on_two_replicas_store_once_and_both_answer_good(
    config: AppConfig,
) -> None:
    async with two_replicas(config) as (first, second, station):
        events = await station.watch("events")
        before = [first.mqtt.stats.received, second.mqtt.stats.received]
        order = {"JobOrder": {"JobOrderID": "J1"}}
        copies = await asyncio.gather(
            *(station.call_raw("Store", order, event_id="store-J1") for _ in range(2))
        )
        received = [first.mqtt.stats.received - before[0], second.mqtt.stats.received - before[1]]
        duplicates = first.mqtt.stats.duplicates + second.mqtt.stats.duplicates
        announced = await _status_events(events, "J1")
        other_request = await station.call_raw("Store", order, event_id="store-J1-other")
    assert received == [1, 1], f"each replica must have had a copy: {received}"
    assert [c.json()["ReturnStatus"] for c in copies] == [1, 1]
    assert duplicates == 1
    assert announced == 1, "the copy must not announce the job a second time"
    assert other_request.json()["ReturnStatus"] == 16  # another request: the id is taken
    assert await _dedupe_keys(config) == [], "a Store needs no dedupe claim or record"


async def test_a_late_copy_of_a_store_is_a_copy_after_its_job_was_cancelled_or_cleared(
    config: AppConfig,
) -> None:
    # The registry off: only the job's own memory of its Store can tell a copy here.
    config = replace(config, redis=replace(config.redis, dedupe_enabled=False))
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        cancelled = {"JobOrder": {"JobOrderID": "C1"}}
        assert (await station.call_raw("Store", cancelled, event_id="s-C1")).json()[
            "ReturnStatus"
        ] == 1
        assert await station.do("Cancel", "C1") == 1  # never started: the job is deleted
        cleared = {"JobOrder": {"JobOrderID": "A1"}}
        assert (await station.call_raw("StoreAndStart", cleared, event_id="s-A1")).json()[
            "ReturnStatus"
        ] == 1
        # No recipe: it runs at once; ended and cleared, the job is archived.
        assert [await station.do(method, "A1") for method in ("Stop", "Clear")] == [1, 1]
        events = await station.watch("events")
        late = [
            await station.call_raw("Store", cancelled, event_id="s-C1"),
            await station.call_raw("StoreAndStart", cleared, event_id="s-A1"),
        ]
        announced = await _status_events(events, "C1") + await _status_events(events, "A1")
        jobs = await _stored(config, station.scope, "C1", "A1")
        # A new request for a cancelled job's id is a new job.
        fresh = await station.call_raw("Store", cancelled, event_id="s-C1-new")
    assert [r.json()["ReturnStatus"] for r in late] == [1, 1]
    assert announced == 0
    assert jobs == 0, "a late copy must not store the job again"
    assert fresh.json()["ReturnStatus"] == 1
