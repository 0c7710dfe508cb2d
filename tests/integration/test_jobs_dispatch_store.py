"""The dispatcher's scripts on a real Redis, without a broker: a start is announced
again when the replica that made it died before telling anyone, and the decision with a
fake clock meets a StartTime to the millisecond."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import orjson
import pytest

from microdcs.app.config import AppConfig
from microdcs.jobs.dispatcher import Move, StationDispatcher
from microdcs.jobs.statemachine import STORED_AND_STARTED
from microdcs.jobs.states import JobState
from microdcs.jobs.storage import JobStore
from microdcs.storage.redis import RedisStore
from microdcs_models.machinery_jobs import ISA95JobOrderDataType

SCOPE = "cell"


@pytest.fixture
async def jobs(config: AppConfig) -> AsyncIterator[JobStore]:
    async with RedisStore(config.redis) as store:
        yield JobStore(store, retention=60, maxlen=1000)


async def store_and_start(jobs: JobStore, job_id: str, **extra: object) -> None:
    model = ISA95JobOrderDataType.from_raw({"JobOrderID": job_id, **extra})
    change = await jobs.put_order(
        SCOPE, model, orjson.dumps(model.to_raw()), new=STORED_AND_STARTED
    )
    assert change.ok


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_start_nobody_announced_is_announced_again_after_the_grace(
    jobs: JobStore,
) -> None:
    clock = Clock(1_800_000_000.0)
    told: list[tuple[str, str]] = []

    async def dies(scope: str, moves: Sequence[Move]) -> None:
        raise ConnectionError("the replica died after the decision")

    async def announce(scope: str, moves: Sequence[Move]) -> None:
        told.extend((m.kind, m.job_id) for m in moves)

    crashed = StationDispatcher(jobs, dies, handover_grace=10.0, clock=clock)
    await store_and_start(jobs, "J1")
    with pytest.raises(ConnectionError):
        await crashed.dispatch(SCOPE)
    record = await jobs.listed(SCOPE, "J1")
    assert record is not None and record.status.state is JobState.RUNNING  # stored, untold
    survivor = StationDispatcher(jobs, announce, handover_grace=10.0, clock=clock)
    clock.now += 5
    assert await survivor.dispatch(SCOPE) == pytest.approx(clock.now + 5)  # due: the grace
    assert told == []
    clock.now += 5
    await survivor.dispatch(SCOPE)
    assert told == [("handover", "J1")]  # the processor raises its event and tells the engine
    clock.now += 60
    await survivor.dispatch(SCOPE)
    assert told == [("handover", "J1")]  # announced once it is announced


async def test_a_start_time_is_met_by_the_first_decision_at_or_after_it(jobs: JobStore) -> None:
    clock = Clock(0.0)
    told: list[tuple[str, str]] = []

    async def announce(scope: str, moves: Sequence[Move]) -> None:
        told.extend((m.kind, m.job_id) for m in moves)

    dispatcher = StationDispatcher(jobs, announce, clock=clock)
    # Stored by the real clock, for which the StartTime lies ahead (the due set); the
    # decision compares the due time with the dispatcher's own (fake) clock.
    await store_and_start(jobs, "J1", StartTime="2027-01-15T08:00:00Z")
    clock.now = 1_799_999_999.999  # a millisecond before 2027-01-15T08:00:00Z
    await dispatcher.dispatch(SCOPE)
    assert told == [("sub", "J1")]  # AllowedToStart/Waiting for its StartTime
    clock.now = 1_800_000_000.0
    await dispatcher.dispatch(SCOPE)
    assert told == [("sub", "J1"), ("start", "J1")]


async def test_max_running_zero_starts_every_queued_job(jobs: JobStore) -> None:
    told: list[str] = []

    async def announce(scope: str, moves: Sequence[Move]) -> None:
        told.extend(m.job_id for m in moves if m.kind == "start")

    dispatcher = StationDispatcher(jobs, announce, max_running=0)
    for n in range(5):
        await store_and_start(jobs, f"J{n}")
    await dispatcher.dispatch(SCOPE)
    assert sorted(told) == [f"J{n}" for n in range(5)]
