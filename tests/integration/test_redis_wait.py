"""APP_REDIS_WAIT_REPLICAS: a job change is answered only once a replica has it.

A primary with one replica of its own (``replicaof``); freezing the replica (SIGSTOP) is
what a replica that cannot keep up looks like to ``WAIT``.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
import redis

from microdcs.app.devstack import LocalRedis
from microdcs.core.errors import StorageUnavailableError
from microdcs.jobs.keys import ScopeKeys
from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.statemachine import STORED, Command
from microdcs.jobs.storage import JobStore
from microdcs.storage.options import RedisConfig
from microdcs.storage.redis import RedisStore
from microdcs_models.machinery_jobs import ISA95JobOrderDataType

SCOPE = "plant.line"
TIMEOUT = 2.0
#: Scheduling slack on a shared CI machine.
MARGIN = 1.0


class ReplicaRedis(LocalRedis):
    """A replica of the server on ``primary``."""

    def __init__(self, workdir: Path, primary: int) -> None:
        super().__init__(workdir, appendonly=False)
        self.primary = primary

    def command(self) -> list[str]:
        return [*super().command(), "--replicaof", "127.0.0.1", str(self.primary)]


def no_sync_delay(primary: LocalRedis) -> LocalRedis:
    """The replica's first sync starts at once, not after the 5 s default delay."""
    client = redis.Redis(port=primary.port)
    try:
        client.config_set("repl-diskless-sync-delay", 0)
    finally:
        client.close()
    return primary


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LocalRedis, ReplicaRedis]]:
    with (
        LocalRedis(tmp_path / "primary", appendonly=False) as primary,
        ReplicaRedis(tmp_path / "replica", no_sync_delay(primary).port) as replica,
    ):
        deadline = time.monotonic() + 10
        client = redis.Redis(port=primary.port)
        try:
            # Online as the primary sees it: what WAIT counts.
            while client.info("replication").get("slave0", {}).get("state") != "online":
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.02)
        finally:
            client.close()
        yield primary, replica


def jobs_of(store: RedisStore) -> JobStore:
    return JobStore(store, retention=60, maxlen=1000)


def config(port: int, wait_replicas: int) -> RedisConfig:
    return RedisConfig(
        hostname="127.0.0.1",
        port=port,
        key_prefix=f"t{uuid.uuid4().hex[:8]}",
        command_timeout=TIMEOUT,
        wait_replicas=wait_replicas,
    )


def order(job_id: str) -> tuple[ISA95JobOrderDataType, bytes]:
    model = ISA95JobOrderDataType.from_raw({"JobOrderID": job_id})
    return model, orjson.dumps(model.to_raw())


@pytest.fixture
async def waiting_store(pair: tuple[LocalRedis, ReplicaRedis]) -> AsyncIterator[RedisStore]:
    async with RedisStore(config(pair[0].port, wait_replicas=1)) as store:
        yield store


async def test_a_stored_job_is_on_the_replica_when_the_store_is_answered(
    pair: tuple[LocalRedis, ReplicaRedis], waiting_store: RedisStore
) -> None:
    jobs = jobs_of(waiting_store)
    replica = redis.Redis(port=pair[1].port)
    try:
        for n in range(20):
            model, raw = order(f"J{n}")
            assert (await jobs.put_order(SCOPE, model, raw, new=STORED)).ok
            # Read the replica right after the answer: the job must already be there.
            assert replica.exists(ScopeKeys.of(waiting_store, SCOPE).job(f"J{n}"))
    finally:
        replica.close()


async def test_a_frozen_replica_answers_job_changes_as_storage_unavailable(
    pair: tuple[LocalRedis, ReplicaRedis], waiting_store: RedisStore
) -> None:
    jobs = jobs_of(waiting_store)
    model, raw = order("J-stored")
    assert (await jobs.put_order(SCOPE, model, raw, new=STORED)).ok
    os.kill(pair[1].pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        model, raw = order("J-frozen")
        with pytest.raises(StorageUnavailableError, match="APP_REDIS_WAIT_REPLICAS"):
            await jobs.put_order(SCOPE, model, raw, new=STORED)
        with pytest.raises(StorageUnavailableError, match="APP_REDIS_WAIT_REPLICAS"):
            await jobs.transition(SCOPE, "J-stored", Command.ABORT)
        assert time.monotonic() - started < 2 * TIMEOUT + MARGIN
    finally:
        os.kill(pair[1].pid, signal.SIGCONT)
    # Thawed, the replica catches up and changes are answered again.
    model, raw = order("J-thawed")
    assert (await jobs.put_order(SCOPE, model, raw, new=STORED)).status is ReturnStatus.OK


async def test_without_wait_replicas_a_change_does_not_wait_for_the_replica(
    pair: tuple[LocalRedis, ReplicaRedis],
) -> None:
    async with RedisStore(config(pair[0].port, wait_replicas=0)) as store:
        jobs = jobs_of(store)
        os.kill(pair[1].pid, signal.SIGSTOP)
        try:
            model, raw = order("J-async")
            assert (await jobs.put_order(SCOPE, model, raw, new=STORED)).ok
        finally:
            os.kill(pair[1].pid, signal.SIGCONT)
