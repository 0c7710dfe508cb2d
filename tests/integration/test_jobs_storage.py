"""Job storage on a real Redis: the Lua scripts enforce the state machine atomically."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from microdcs.app.config import AppConfig
from microdcs.jobs.keys import ScopeKeys
from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.statemachine import STORED, STORED_AND_STARTED, Command
from microdcs.jobs.states import JobState
from microdcs.jobs.storage import JobStore
from microdcs.storage.redis import RedisStore
from microdcs_models.machinery_jobs import ISA95JobOrderDataType

SCOPE = "plant.line"


@pytest.fixture
async def jobs(config: AppConfig) -> AsyncIterator[JobStore]:
    async with RedisStore(config.redis) as store:
        yield JobStore(store, retention=60, maxlen=1000)


def order(job_id: str, **extra: object) -> tuple[ISA95JobOrderDataType, bytes]:
    model = ISA95JobOrderDataType.from_raw({"JobOrderID": job_id, **extra})
    return model, orjson.dumps(model.to_raw())


async def store(jobs: JobStore, job_id: str, **extra: object) -> ReturnStatus:
    model, raw = order(job_id, **extra)
    return (await jobs.put_order(SCOPE, model, raw, new=STORED)).status


async def test_store_twice_keeps_the_first_and_rejects_the_second(jobs: JobStore) -> None:
    assert await store(jobs, "J1", Priority=1) == ReturnStatus.OK
    assert await store(jobs, "J1", Priority=2) == ReturnStatus.UNABLE_TO_ACCEPT_JOB_ORDER
    found = await jobs.job(SCOPE, "J1")
    assert found is not None
    assert found[0].order_raw()["Priority"] == 1


async def test_concurrent_conflicting_commands_have_one_winner(jobs: JobStore) -> None:
    model, raw = order("J2")
    await jobs.put_order(SCOPE, model, raw, new=STORED_AND_STARTED)
    await jobs.transition(SCOPE, "J2", Command.SYSTEM_START)
    results = await asyncio.gather(
        *(jobs.transition(SCOPE, "J2", c) for c in [Command.STOP, Command.ABORT] * 10)
    )
    assert sum(r.ok for r in results) == 1


async def test_expected_version_is_a_compare_and_swap(jobs: JobStore) -> None:
    await store(jobs, "J3")
    found = await jobs.job(SCOPE, "J3")
    assert found is not None
    version = found[1]
    first = await jobs.transition(SCOPE, "J3", Command.START, expected_version=version)
    assert first.ok and first.version == version + 1
    stale = await jobs.transition(SCOPE, "J3", Command.ABORT, expected_version=version)
    assert stale.status == ReturnStatus.INVALID_JOB_ORDER_STATUS


async def test_every_change_appends_to_the_stream_with_increasing_seq(jobs: JobStore) -> None:
    await store(jobs, "J4")
    await jobs.transition(SCOPE, "J4", Command.START)
    await jobs.transition(SCOPE, "J4", Command.CANCEL)
    k = ScopeKeys.of(jobs.redis, SCOPE)
    entries = await jobs.redis.execute("XRANGE", k.changes, "-", "+")
    fields = [e[1] if isinstance(e[1], dict) else dict(zip(e[1][::2], e[1][1::2], strict=True))
              for e in entries]  # fmt: skip
    assert [f[b"op"] for f in fields] == [b"upsert", b"upsert", b"remove"]
    assert [int(f[b"seq"]) for f in fields] == [1, 2, 3]


async def test_cancelled_job_is_gone_without_response(jobs: JobStore) -> None:
    await store(jobs, "J5")
    assert (await jobs.transition(SCOPE, "J5", Command.CANCEL)).removed
    assert await jobs.job(SCOPE, "J5") is None
    k = ScopeKeys.of(jobs.redis, SCOPE)
    assert await jobs.redis.execute("ZCARD", k.list) == 0


async def test_cleared_job_keeps_its_response_for_the_retention(jobs: JobStore) -> None:
    await store(jobs, "J6")
    await jobs.transition(SCOPE, "J6", Command.ABORT)
    assert (await jobs.transition(SCOPE, "J6", Command.CLEAR)).removed
    found = await jobs.job(SCOPE, "J6")
    assert found is not None and found[0].has_response
    assert found[0].status.state is JobState.ABORTED
    ttl = await jobs.redis.execute("TTL", ScopeKeys.of(jobs.redis, SCOPE).archived("J6"))
    assert 0 < ttl <= 60
    assert [r.job_id for r in await jobs.responses(SCOPE)] == ["J6"]


async def test_full_job_list_rejects_and_frees_up_on_cancel(jobs: JobStore) -> None:
    await jobs.set_max_jobs(SCOPE, 1)
    assert await store(jobs, "A") == ReturnStatus.OK
    assert await store(jobs, "B") == ReturnStatus.UNABLE_TO_ACCEPT_JOB_ORDER
    await jobs.transition(SCOPE, "A", Command.CANCEL)
    assert await store(jobs, "B") == ReturnStatus.OK


async def test_references_must_be_allowed_by_station_configuration(jobs: JobStore) -> None:
    needs = {"EquipmentRequirements": [{"ID": "EQ-1"}], "WorkMasterID": [{"ID": "WM-1"}]}
    assert await store(jobs, "R1", **needs) == ReturnStatus.UNABLE_TO_ACCEPT_JOB_ORDER
    await jobs.allow_id(SCOPE, "equipment", "EQ-1", allowed=True)
    await jobs.put_work_master(SCOPE, "WM-1", b'{"ID": "WM-1"}', "urn:recipe")
    model, raw = order("R1", **needs)
    change = await jobs.put_order(SCOPE, model, raw, new=STORED)
    assert change.ok and change.recipe == "urn:recipe"
    await jobs.allow_id(SCOPE, "equipment", "EQ-1", allowed=False)
    assert await store(jobs, "R2", **needs) == ReturnStatus.UNABLE_TO_ACCEPT_JOB_ORDER


async def test_update_keeps_state_and_is_refused_once_running(jobs: JobStore) -> None:
    model, raw = order("U1")
    await jobs.put_order(SCOPE, model, raw, new=STORED_AND_STARTED)
    updated, raw2 = order("U1", Priority=5)
    change = await jobs.put_order(SCOPE, updated, raw2, new=None)
    assert change.ok and change.record is not None
    assert change.record.status == STORED_AND_STARTED
    await jobs.transition(SCOPE, "U1", Command.SYSTEM_START)
    refused = await jobs.put_order(SCOPE, updated, raw2, new=None)
    assert refused.status == ReturnStatus.INVALID_JOB_ORDER_STATUS
    unknown, raw3 = order("nope")
    missing = await jobs.put_order(SCOPE, unknown, raw3, new=None)
    assert missing.status == ReturnStatus.UNKNOWN_JOB_ORDER_ID
