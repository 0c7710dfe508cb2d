"""The job's retained step state is paced: a state, not a stream (app/wiring/progress.py)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from microdcs.app.wiring.progress import JobProgress
from microdcs.sfc.engine.progress import StepState
from microdcs.transports.mqtt.topics import TopicLayout


class RetainedLog:
    """Records what JobProgress hands the MQTT handler (the outlet half it uses)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def _done(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def publish_retained_nowait(
        self, topic: str, payload: bytes, expiry: int | None = None
    ) -> asyncio.Future[None]:
        self.sent.append((topic, payload))
        return self._done()

    def delete_retained_nowait(self, topic: str) -> asyncio.Future[None]:
        self.sent.append((topic, b""))
        return self._done()


def progress(log: RetainedLog, interval: float) -> JobProgress:
    return JobProgress(
        cast(Any, None), cast(Any, log), TopicLayout("app/jobs", 1), state_interval=interval
    )


def state(job: str, step: str, version: int) -> StepState:
    return StepState(job, version, ((step, 1.0),), 1.0)


async def test_steps_passed_within_the_interval_publish_only_the_latest_state() -> None:
    log = RetainedLog()
    paced = progress(log, 0.05)
    for version, step in enumerate(["S1", "S2", "S3"], start=1):
        await paced.step_state("line1", state("J1", step, version))
    await paced.step_state("line1", state("J2", "S1", 1))
    assert log.sent == []
    await asyncio.sleep(0.1)
    assert sorted(topic for topic, _ in log.sent) == [
        "app/jobs/line1/steps/J1",
        "app/jobs/line1/steps/J2",
    ]
    assert b'"S3"' in dict(log.sent)["app/jobs/line1/steps/J1"]
    assert paced.coalesced_states == 2


async def test_the_end_of_a_job_removes_its_state_at_once_and_drops_a_waiting_one() -> None:
    log = RetainedLog()
    paced = progress(log, 0.05)
    await paced.step_state("line1", state("J1", "S1", 1))
    await paced.step_state("line1", StepState("J1", 2, (), 1.0))
    assert log.sent == [("app/jobs/line1/steps/J1", b"")]
    await asyncio.sleep(0.1)
    assert log.sent == [("app/jobs/line1/steps/J1", b"")]


async def test_interval_zero_publishes_every_state() -> None:
    log = RetainedLog()
    paced = progress(log, 0.0)
    await paced.step_state("line1", state("J1", "S1", 1))
    await paced.step_state("line1", state("J1", "S2", 2))
    assert len(log.sent) == 2
