"""The job store's change feed on a real Redis, and scripts surviving a flushed cache."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from microdcs.app.config import AppConfig
from microdcs.jobs.statemachine import STORED, Command
from microdcs.jobs.storage import JobStore
from microdcs.sfc.engine.store import EngineStore
from microdcs.storage.redis import RedisStore
from microdcs_models.machinery_jobs import ISA95JobOrderDataType


@pytest.fixture
async def jobs(config: AppConfig) -> AsyncIterator[JobStore]:
    async with RedisStore(config.redis) as store:
        yield JobStore(store, retention=60, maxlen=1000)


async def store(jobs: JobStore, scope: str, job_id: str) -> None:
    model = ISA95JobOrderDataType.from_raw({"JobOrderID": job_id})
    change = await jobs.put_order(scope, model, orjson.dumps(model.to_raw()), new=STORED)
    assert change.ok


async def test_read_returns_each_scopes_changes_after_its_position(jobs: JobStore) -> None:
    await store(jobs, "a", "J1")
    await store(jobs, "b", "J2")
    await jobs.transition("b", "J2", Command.CANCEL)
    a, b = await jobs.changes.read([("a", "0-0"), ("b", "0-0")], count=10)
    assert [(e.job_id, e.seq, e.removed) for e in a] == [("J1", 1, False)]
    assert [e.job_id for e in b] == ["J2", "J2"]
    (after,) = await jobs.changes.read([("b", b[0].entry_id)], count=10)
    assert after == b[1:]


async def test_read_stops_at_count_and_is_empty_past_the_end(jobs: JobStore) -> None:
    for n in range(3):
        await store(jobs, "c", f"J{n}")
    (two,) = await jobs.changes.read([("c", "0-0")], count=2)
    assert [e.seq for e in two] == [1, 2]
    (rest,) = await jobs.changes.read([("c", two[-1].entry_id)], count=2)
    (none,) = await jobs.changes.read([("c", rest[-1].entry_id)], count=2)
    assert [e.seq for e in rest] == [3] and none == []


async def test_saved_cursors_are_read_back_as_saved(jobs: JobStore) -> None:
    assert await jobs.changes.cursor("d") is None
    await jobs.changes.save({"d": "1-0 2 3", "e": "4-0 5 6"})
    assert await jobs.changes.cursor("d") == "1-0 2 3"
    assert await jobs.changes.cursor("e") == "4-0 5 6"


async def test_scripts_load_themselves_again_after_a_script_flush(jobs: JobStore) -> None:
    await store(jobs, "f", "J1")
    await jobs.redis.execute("SCRIPT", "FLUSH")
    await store(jobs, "f", "J2")
    engine = EngineStore(jobs.redis, maxlen=100)
    await jobs.redis.execute("SCRIPT", "FLUSH")
    assert await engine.claim_timers("f", 0.0) == 0
    assert sorted(job for job, _, _ in (await jobs.snapshot("f")).jobs) == ["J1", "J2"]
