"""The retained-topic publisher: restart from the stored cursor, lease failover, jobs that
cannot be published, and the lag metric."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from dataclasses import replace
from pathlib import Path

import orjson

from microdcs.app.config import AppConfig
from microdcs.app.devstack import LocalMosquitto, LocalRedis
from microdcs.app.runtime import Runtime
from microdcs.jobs.keys import ScopeKeys
from microdcs.jobs.statemachine import STORED
from microdcs.jobs.storage import JobStore
from microdcs.storage.redis import RedisStore
from microdcs_models.machinery_jobs import ISA95JobOrderDataType
from tests.conftest import make_config, running
from tests.integration.test_jobs_helpers import (
    SCOPE,
    Station,
    retained_until,
    start_replica,
    wait_logged,
)
from tests.mesclient import MesClient, Received


async def retained_state(port: int, base: str) -> dict[str, Received]:
    """Every retained message under ``base`` right now (a fresh subscription's view)."""
    async with MesClient(port) as mes:
        seen = await mes.watch(f"{base}/#")
        marker = f"{base}/marker/{uuid.uuid4().hex}"
        await mes.publish(marker, b"m")
        found: dict[str, Received] = {}
        async with asyncio.timeout(5):
            while True:
                message = await seen.get()
                if message.topic == marker:
                    return found
                found[message.topic] = message


def index_jobs(message: Received) -> dict[str, str]:
    """``job_order_id -> state`` of a state-index publication."""
    return {j["job_order_id"]: j["state"] for j in message.json()["jobs"]}


async def indexes_until(queue: asyncio.Queue[Received], jobs: dict[str, str]) -> list[Received]:
    """Every index publication up to the first one listing exactly ``jobs`` (5 s at most)."""
    seen: list[Received] = []
    async with asyncio.timeout(5):
        while True:
            seen.append(await queue.get())
            if index_jobs(seen[-1]) == jobs:
                return seen


def revisions(messages: list[Received]) -> list[int]:
    return [m.json()["seq"] for m in messages]


async def test_restarted_publisher_catches_up_without_stale_topics(config: AppConfig) -> None:
    base = f"{config.jobs_prefix}/{SCOPE}"
    ready = "NotAllowedToStart.Ready"
    async with MesClient(config.mqtt.port) as watcher:
        index = await watcher.watch(f"{base}/state-index")
        async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
            station = Station(mes, config.jobs_prefix, runtime)
            for job_id in ("J1", "J2", "J3"):
                assert await station.store(job_id) == 1
            assert await station.do("Start", "J2") == 1  # runs at once
            before = await indexes_until(index, {"J1": ready, "J2": "Running", "J3": ready})
        # The publisher is down; another replica (not a publisher) keeps serving.
        other = replace(config, instance_id=config.instance_id + "-b", is_publisher_instance=False)
        async with running(other) as runtime, MesClient(config.mqtt.port) as mes:
            station = Station(mes, config.jobs_prefix, runtime)
            assert await station.do("Cancel", "J1") == 1
            assert await station.store("J3", "Update", Priority=9) == 1
            assert await station.do("Stop", "J2") == 1
        assert index.empty()  # nobody published meanwhile
        async with running(config):
            after = await indexes_until(index, {"J2": "Ended.Completed", "J3": ready})
    # One revision per publication, none skipped, across the restart; the three changes
    # made while the publisher was down are covered by the one revision after it.
    assert revisions(before) == list(range(1, len(before) + 1))
    assert revisions(after) == [len(before) + 1]
    retained = await retained_state(config.mqtt.port, base)
    assert sorted(t.removeprefix(base + "/") for t in retained) == [
        "order/J2", "order/J3", "result/J2", "state-index",
    ]  # fmt: skip
    assert retained[f"{base}/order/J3"].json()["JobOrder"]["Priority"] == 9
    assert retained[f"{base}/result/J2"].json()["JobState"][0]["StateNumber"] == 5
    assert index_jobs(retained[f"{base}/state-index"]) == {
        "J2": "Ended.Completed",
        "J3": "NotAllowedToStart.Ready",
    }


async def test_a_burst_of_changes_is_coalesced_into_few_consecutive_revisions(
    config: AppConfig,
) -> None:
    config = replace(config, publisher_interval_seconds=1.0)
    ready = "NotAllowedToStart.Ready"
    jobs = [f"J{n}" for n in range(40)]
    async with MesClient(config.mqtt.port) as watcher:
        index = await watcher.watch(f"{config.jobs_prefix}/{SCOPE}/state-index")
        async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
            station = Station(mes, config.jobs_prefix, runtime)
            for job_id in jobs:  # one after the other: a pass could follow each change
                assert await station.store(job_id) == 1
            seen = await indexes_until(index, dict.fromkeys(jobs, ready))
    assert revisions(seen) == list(range(1, len(seen) + 1))
    assert len(seen) <= 3  # 40 changes within about an interval: not 40 indexes


async def _store_directly(config: AppConfig, job_id: str) -> None:
    """A change made by some replica (written straight to Redis, no MQTT involved)."""
    async with RedisStore(config.redis) as store:
        jobs = JobStore(store, retention=60, maxlen=1000)
        order = ISA95JobOrderDataType(job_order_id=job_id)
        change = await jobs.put_order(SCOPE, order, orjson.dumps(order.to_raw()), new=STORED)
        assert change.ok


async def test_publisher_role_fails_over_within_the_lease_time(
    config: AppConfig, tmp_path: Path
) -> None:
    lease = 1.5
    config = replace(config, publisher_lease_seconds=lease)
    replicas = {
        name: start_replica(replace(config, instance_id=f"{config.instance_id}-{name}"), tmp_path)
        for name in ("a", "b")
    }
    base = f"{config.jobs_prefix}/{SCOPE}"
    try:
        await wait_logged(tmp_path, "connected to", count=2)
        async with MesClient(config.mqtt.port) as mes, RedisStore(config.redis) as store:
            first = await mes.watch(f"{base}/order/J1")
            await _store_directly(config, "J1")
            await retained_until(first, lambda m: m.payload)
            key = store.key("jobs", "publisher", "lease")
            holder = (await store.execute("GET", key)).decode()
            victim = replicas[holder.rsplit("-", 1)[1]]
            victim.send_signal(signal.SIGKILL)
            victim.wait(5)
            killed_at = time.monotonic()
            second = await mes.watch(f"{base}/order/J2")
            await _store_directly(config, "J2")
            await retained_until(second, lambda m: m.payload)
            assert time.monotonic() - killed_at < lease + 0.5
            assert (await store.execute("GET", key)).decode() != holder
            seq = int(await store.execute("GET", ScopeKeys.of(store, SCOPE).seq))
            assert seq == 2
    finally:
        for process in replicas.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in replicas.values():
            process.wait(20)


def metric(runtime: Runtime, name: str) -> float:
    """The current value of one of the replica's instruments (summed over attributes)."""
    data = runtime.metrics.collect()
    assert data is not None
    return sum(
        point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for instrument in scope.metrics
        if instrument.name == name
        for point in instrument.data.data_points  # type: ignore[union-attr]
    )


async def test_a_job_whose_topic_cannot_be_sent_is_skipped_and_the_others_publish(
    config: AppConfig,
) -> None:
    base = f"{config.jobs_prefix}/{SCOPE}"
    huge = "X" * 70_000  # an MQTT topic holds at most 65,535 bytes
    ready = "NotAllowedToStart.Ready"
    async with running(config) as runtime, MesClient(config.mqtt.port) as watcher:
        index = await watcher.watch(f"{base}/state-index")
        for job_id in ("J1", huge, "J2"):  # written past any input limit, as if by a bug
            await _store_directly(config, job_id)
        await indexes_until(index, {"J1": ready, huge: ready, "J2": ready})
        retained = await retained_state(config.mqtt.port, base)
        assert {t.removeprefix(f"{base}/") for t in retained} == {
            "order/J1", "order/J2", "state-index",
        }  # fmt: skip
        assert metric(runtime, "microdcs.publisher.skipped") == 1
        # The pass succeeded for everything that can be sent: nothing is left pending.
        async with asyncio.timeout(2):  # once the cursor is stored after the PUBACKs
            while metric(runtime, "microdcs.publisher.lag_seconds") != 0:
                await asyncio.sleep(0.02)
        await _store_directly(config, "J3")  # and later passes go on as usual
        await indexes_until(index, {"J1": ready, huge: ready, "J2": ready, "J3": ready})


async def test_lag_grows_while_passes_fail_and_the_task_resumes_after_the_outage(
    mosquitto: LocalMosquitto, tmp_path: Path
) -> None:
    ready = "NotAllowedToStart.Ready"
    with LocalRedis(tmp_path / "redis", appendonly=True) as redis_server:
        config = make_config(mosquitto.port, redis_server.port, publisher_interval_seconds=2.0)
        async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
            station = Station(mes, config.jobs_prefix, runtime)
            index = await station.watch("state-index")
            for jobs in (["J0"], ["J0", "J1"]):  # the second one by a pass of its own
                assert await station.store(jobs[-1]) == 1
                await indexes_until(index, dict.fromkeys(jobs, ready))
            assert await station.store("J2") == 1  # the next pass is due in about 2 s
            await asyncio.to_thread(redis_server.stop)  # kept on disk (AOF)
            await asyncio.sleep(3.0)  # the pass came and failed
            first = metric(runtime, "microdcs.publisher.lag_seconds")
            await asyncio.sleep(0.5)
            second = metric(runtime, "microdcs.publisher.lag_seconds")
            assert 2.5 < first < second  # from the change on, not reset by failing passes
            await asyncio.to_thread(redis_server.start)
            await indexes_until(index, {"J0": ready, "J1": ready, "J2": ready})
            async with asyncio.timeout(2):  # once the cursor is stored after the PUBACKs
                while metric(runtime, "microdcs.publisher.lag_seconds") != 0:
                    await asyncio.sleep(0.02)
            assert metric(runtime, "microdcs.publisher.leader") == 1
