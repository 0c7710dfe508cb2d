"""The fault suite of issue 12: crashes, overload and hostile input against real servers.

Every scenario runs runtime replicas as real ``microdcs run`` processes against a real
Mosquitto (persistence on) and a real Redis (AOF on), drives them with an MES load client,
injects one fault, and then checks the promise the runtime makes to the MES: a Store
answered Good is kept (readable afterwards), whatever crashed. The short form runs in
``make test``; ``make chaos`` sets ``CHAOS_SECONDS`` for the long form.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from pathlib import Path

import pytest
import redis

from microdcs.app.config import RpcConfig
from microdcs.app.devstack import LocalMosquitto, LocalRedis, free_port
from tests.chaos.fuzz import fuzz_mqtt, fuzz_rpc, rpc_heartbeat
from tests.chaos.harness import (
    Outcome,
    Replica,
    RssSampler,
    chaos_seconds,
    long_run,
    new_tag,
    replica_config,
    wait_answering,
)
from tests.chaos.mesload import OK, MesLoad, Request, summary

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

#: Bound of a recovery (fault to first Good Store): broker reconnect back-off and Redis
#: restart included.
RECOVERY_BOUND_SECONDS = 15.0
#: The documented memory bound of a replica under 10x overload (issue 12).
OVERLOAD_RSS_BOUND_MB = 300.0
FUZZ_MESSAGES = 10_000
FUZZ_FRAMES = 10_000


def commands(tag: str) -> str:
    return f"chaos{tag}/jobs/cell1/commands"


def start_group(
    broker: int, redis_port: int, tmp: Path, count: int, **overrides: object
) -> tuple[str, list[Replica]]:
    tag = new_tag()
    replicas = [
        Replica(replica_config(broker, redis_port, tag, n, **overrides), tmp) for n in range(count)
    ]
    for replica in replicas:
        replica.start()
    return tag, replicas


async def ready(broker: int, tag: str, replicas: list[Replica]) -> None:
    """Every replica is up and subscribed (the shared group then spreads the load)."""
    await wait_answering(broker, commands(tag))
    deadline = time.monotonic() + 20
    # A replica that answered its readiness probe logs nothing at WARNING; give the others
    # the time a start takes, then check they are still alive.
    await asyncio.sleep(1.5 if len(replicas) > 1 else 0.2)
    while time.monotonic() < deadline and not all(r.alive() for r in replicas):
        await asyncio.sleep(0.1)
    for replica in replicas:
        assert replica.alive(), replica.log_tail()


def job_keys(redis_port: int, tag: str) -> set[str]:
    """The parts (split at ``:``, ``{``, ``}``) of every job key of the scenario's prefix:
    a job id of the suite (``J-run-n``) is one of them when its job is stored."""
    client = redis.Redis(host="127.0.0.1", port=redis_port)
    try:
        parts: set[str] = set()
        for key in client.scan_iter(match=f"chaos{tag}:*job*", count=5000):
            parts.update(re.split(r"[:{}]", key.decode(errors="replace")))
        return parts
    finally:
        client.close()


async def lost_jobs(
    mes: MesLoad, redis_port: int, tag: str, sample: int = 300
) -> tuple[list[str], list[str]]:
    """Acknowledged Stores whose job the runtime does not know afterwards.

    Every acknowledged job is looked for among the Redis keys; those not found there (a key
    layout that encodes ids), and a random sample of the others, are asked of the runtime
    itself, so "stored" also means "readable through the API". Returns the lost jobs and
    those the runtime did not answer about (still busy, e.g. after an overload).
    """
    keys = job_keys(redis_port, tag)
    acked = [r.job_id for r in mes.acknowledged()]
    unseen = [job for job in acked if job not in keys]
    seen = [job for job in acked if job in keys]
    checked = unseen + random.sample(seen, min(sample, len(seen)))
    if not checked:
        return [], []
    missing, unverified = await mes.missing_jobs(checked)
    # Not found among the keys and not answered about: counted lost, it cannot be shown kept.
    return missing + [job for job in unverified if job in unseen], unverified


async def finish(mes: MesLoad, settle: float = 5.0) -> int:
    """Let answers arrive; then send the unanswered once more, as an MES retries."""
    await mes.settle(settle)
    resent = mes.resend_unanswered()
    if resent:
        await mes.settle(3 * settle)
    return resent


def slowest_after(mes: MesLoad, moment: float, until: float) -> float:
    """Longest wait of a Store sent between ``moment`` and ``until`` (a stall)."""
    waits = [
        r.answers[0][0] - r.sent
        for r in mes.requests.values()
        if moment <= r.sent <= until and r.answered
    ]
    return max(waits, default=0.0)


async def probe_recovery(mes: MesLoad, fault: float, within: float = 30.0) -> float | None:
    """Seconds from ``fault`` to the first Good answer to a probe Store sent after it.

    Probes are sent every 0.25 s beside the load, so the figure does not depend on when
    the load's slots happen to free up.
    """
    probes: list[Request] = []
    deadline = fault + within
    while time.monotonic() < deadline:
        probes.append(mes.send())
        good = [p.answers[0][0] for p in probes if p.status == OK]
        if good:
            return min(good) - fault
        await asyncio.sleep(0.25)
    return None


async def test_sigkill_of_one_of_two_replicas_loses_no_acknowledged_job(
    broker: LocalMosquitto, redis_aof: LocalRedis, tmp_path: Path, report: list[Outcome]
) -> None:
    seconds = chaos_seconds()
    tag, replicas = start_group(broker.port, redis_aof.port, tmp_path, 2)
    try:
        await ready(broker.port, tag, replicas)
        async with MesLoad(broker.port, commands(tag)) as mes:
            pids = {f"replica {n}": r.pid for n, r in enumerate(replicas)}
            async with RssSampler(pids) as rss:
                load = asyncio.create_task(mes.closed_loop(seconds * 3, inflight=16))
                await asyncio.sleep(seconds)
                fault = time.monotonic()
                replicas[0].kill()
                probe = asyncio.create_task(probe_recovery(mes, fault))
                await asyncio.sleep(seconds)
                restarted = time.monotonic()
                replicas[0].start()
                rss.pids["replica 0 restarted"] = replicas[0].pid
                rss.peak["replica 0 restarted"] = 0.0
                await load
                recovered = await probe
                resent = await finish(mes)
            lost, unverified = await lost_jobs(mes, redis_aof.port, tag)
            outcome = Outcome(
                "replica SIGKILL",
                seconds * 3,
                lost=len(lost),
                duplicates=mes.duplicates(),
                recovery_seconds=recovered,
                peak_rss_mb=max(rss.peak.values()),
                alive=all(r.alive() for r in replicas),
                details={
                    **summary(mes),
                    "resent_by_mes": resent,
                    "longest_wait_while_down_s": round(slowest_after(mes, fault, restarted), 2),
                    "lost_job_ids": lost[:20],
                    "unverified_by_api": len(unverified),
                },
            )
            report.append(outcome)
            assert outcome.lost == 0, outcome
            assert outcome.alive, [r.log_tail() for r in replicas]
            assert not mes.unanswered(), outcome
            assert outcome.recovery_seconds is not None, outcome
            assert outcome.recovery_seconds < RECOVERY_BOUND_SECONDS, outcome
    finally:
        for replica in replicas:
            replica.stop()


async def test_broker_sigkill_with_persistence_loses_no_acknowledged_job(
    broker: LocalMosquitto, redis_aof: LocalRedis, tmp_path: Path, report: list[Outcome]
) -> None:
    seconds = chaos_seconds()
    tag, replicas = start_group(broker.port, redis_aof.port, tmp_path, 2)
    try:
        await ready(broker.port, tag, replicas)
        async with MesLoad(broker.port, commands(tag)) as mes:
            pids = {f"replica {n}": r.pid for n, r in enumerate(replicas)}
            async with RssSampler(pids) as rss:
                load = asyncio.create_task(mes.closed_loop(seconds * 2 + 1, inflight=16))
                await asyncio.sleep(seconds)
                fault = time.monotonic()
                probe = asyncio.create_task(probe_recovery(mes, fault))
                await asyncio.to_thread(broker.crash_restart, 1.0)
                await load
                recovered = await probe
                resent = await finish(mes)
            lost, unverified = await lost_jobs(mes, redis_aof.port, tag)
            outcome = Outcome(
                "broker SIGKILL",
                seconds * 2 + 1,
                lost=len(lost),
                duplicates=mes.duplicates(),
                recovery_seconds=recovered,
                peak_rss_mb=max(rss.peak.values()),
                alive=all(r.alive() for r in replicas),
                details={
                    **summary(mes),
                    "resent_by_mes": resent,
                    "lost_job_ids": lost[:20],
                    "unverified_by_api": len(unverified),
                },
            )
            report.append(outcome)
            assert outcome.lost == 0, outcome
            assert outcome.alive, [r.log_tail() for r in replicas]
            assert not mes.unanswered(), outcome
            assert outcome.recovery_seconds is not None, outcome
            assert outcome.recovery_seconds < RECOVERY_BOUND_SECONDS, outcome
    finally:
        for replica in replicas:
            replica.stop()


def fill_redis(port: int, keys: int) -> None:
    """Unrelated data, so that a restarted Redis spends a while LOADING its AOF."""
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        value = b"v" * 200
        for start in range(0, keys, 2000):
            client.mset({f"filler:{n}": value for n in range(start, min(start + 2000, keys))})
    finally:
        client.close()


async def test_redis_sigkill_with_aof_loses_no_acknowledged_job(
    broker: LocalMosquitto, redis_aof: LocalRedis, tmp_path: Path, report: list[Outcome]
) -> None:
    seconds = chaos_seconds()
    filler = 1_000_000 if long_run() else 200_000
    await asyncio.to_thread(fill_redis, redis_aof.port, filler)
    tag, replicas = start_group(broker.port, redis_aof.port, tmp_path, 2)
    try:
        await ready(broker.port, tag, replicas)
        tracebacks_before = sum(r.tracebacks() for r in replicas)
        async with MesLoad(broker.port, commands(tag)) as mes:
            pids = {f"replica {n}": r.pid for n, r in enumerate(replicas)}
            async with RssSampler(pids) as rss:
                load = asyncio.create_task(mes.closed_loop(seconds * 2 + 1, inflight=16))
                await asyncio.sleep(seconds)
                fault = time.monotonic()
                probe = asyncio.create_task(probe_recovery(mes, fault))
                await asyncio.to_thread(redis_aof.crash_restart, 0.5)
                await load
                recovered = await probe
                resent = await finish(mes)
            lost, unverified = await lost_jobs(mes, redis_aof.port, tag)
            kinds = mes.error_kinds()
            outcome = Outcome(
                "Redis SIGKILL (AOF)",
                seconds * 2 + 1,
                lost=len(lost),
                duplicates=mes.duplicates(),
                recovery_seconds=recovered,
                peak_rss_mb=max(rss.peak.values()),
                alive=all(r.alive() for r in replicas),
                details={
                    **summary(mes),
                    "resent_by_mes": resent,
                    "filler_keys": filler,
                    "new_tracebacks": sum(r.tracebacks() for r in replicas) - tracebacks_before,
                    "lost_job_ids": lost[:20],
                    "unverified_by_api": len(unverified),
                },
            )
            report.append(outcome)
            assert outcome.lost == 0, outcome
            assert outcome.alive, [r.log_tail() for r in replicas]
            assert not mes.unanswered(), outcome
            assert outcome.recovery_seconds is not None, outcome
            assert outcome.recovery_seconds < RECOVERY_BOUND_SECONDS, outcome
            # Issue 12 (8): LOADING is waited out like an outage, not answered as an error,
            # and background tasks (publisher, SFC engine) survive it without crashing.
            assert "internal_error" not in kinds, outcome
            assert outcome.details["new_tracebacks"] == 0, outcome
    finally:
        for replica in replicas:
            replica.stop()


def _late(r: Request) -> float:
    """Seconds from the broker taking the request to the runtime building its answer."""
    if r.produced_wall is not None and r.accepted_wall is not None:
        return r.produced_wall - r.accepted_wall
    return r.answers[0][0] - (r.accepted or r.sent)


def classify(requests: list[Request], slack: float = 1.0) -> dict[str, int]:
    """What became of each overload request, against its Message Expiry."""
    counts = {"ok_in_time": 0, "ok_after_expiry": 0, "expired": 0, "other_error": 0,
              "unanswered": 0}  # fmt: skip
    for r in requests:
        if not r.answered:
            counts["unanswered"] += 1
        elif r.error_kind == "expired":
            counts["expired"] += 1
        elif r.error_kind is not None or r.status != OK:
            counts["other_error"] += 1
        elif r.expiry is not None and _late(r) > r.expiry + slack:
            counts["ok_after_expiry"] += 1
        else:
            counts["ok_in_time"] += 1
    return counts


async def test_tenfold_overload_keeps_memory_bounded_and_answers_every_request(
    broker: LocalMosquitto, redis_aof: LocalRedis, tmp_path: Path, report: list[Outcome]
) -> None:
    seconds = chaos_seconds()
    expiry = 20 if long_run() else 5
    tag, replicas = start_group(broker.port, redis_aof.port, tmp_path, 1)
    try:
        await ready(broker.port, tag, replicas)
        async with MesLoad(broker.port, commands(tag)) as mes:
            calibration = time.monotonic()
            await mes.closed_loop(2.0, inflight=32)
            await mes.settle(5)
            capacity = len(mes.acknowledged()) / (time.monotonic() - calibration)
            rate = min(10 * capacity, 30_000.0)
            before = set(mes.requests)
            async with RssSampler({"replica": replicas[0].pid, "broker": broker.pid}) as rss:
                started = time.monotonic()
                await mes.open_loop(seconds, rate, expiry=expiry)
                sent_for = time.monotonic() - started
                phases = {"send_s": round(sent_for, 1)}
                # Every request is answered or expired by now (plus processing slack).
                await mes.settle(expiry + 10, still_arriving=60)
                overload = [r for c, r in mes.requests.items() if c not in before]
                counts = classify(overload)
                phases["settle_s"] = round(time.monotonic() - started - sent_for, 1)
            # An unanswered request must not have been processed: its expiry passed and it
            # was dropped (by the broker or the runtime), which the MES sees and may retry.
            keys = job_keys(redis_aof.port, tag)
            stored_unanswered = sum(1 for r in overload if not r.answered and r.job_id in keys)
            checking = time.monotonic()
            # Keys only: the runtime may still be working off the backlog.
            lost, unverified = await lost_jobs(mes, redis_aof.port, tag, sample=0)
            phases["check_s"] = round(time.monotonic() - checking, 1)
            outcome = Outcome(
                "10x overload",
                seconds,
                lost=len(lost),
                duplicates=mes.duplicates(),
                recovery_seconds=None,
                peak_rss_mb=rss.peak["replica"],
                alive=replicas[0].alive(),
                details={
                    **summary(mes),
                    **counts,
                    "capacity_per_s": round(capacity),
                    "offered_per_s": round(len(overload) / sent_for),
                    "overload_factor": round(len(overload) / sent_for / max(capacity, 1), 1),
                    "expiry_s": expiry,
                    "broker_peak_rss_mb": round(rss.peak["broker"], 1),
                    "stored_but_unanswered": stored_unanswered,
                    "phases": phases,
                    "replica_tracebacks": replicas[0].tracebacks(),
                    "replica_first_errors": replicas[0].first_errors(),
                    "replica_log_tail": replicas[0].log_tail(8),
                    "lost_job_ids": lost[:20],
                    "unverified_by_api": len(unverified),
                },
            )
            report.append(outcome)
            assert outcome.lost == 0, outcome
            assert outcome.alive, replicas[0].log_tail()
            assert outcome.peak_rss_mb < OVERLOAD_RSS_BOUND_MB, outcome
            # Requests the runtime saw expire were answered `expired`, not processed. A Good
            # answer built more than 1 s after the request's expiry (`ok_after_expiry`) is
            # reported, not asserted: Mosquitto 2.0.11 pushes beyond our Receive Maximum,
            # and a request that waits in the broker's own send queue arrives with the
            # expiry it had when queued, so the runtime cannot see that time.
            # Answered, answered 'expired', or dropped unprocessed after its expiry (the
            # MES may send it again): none is processed and then left unanswered.
            assert stored_unanswered == 0, outcome
    finally:
        for replica in replicas:
            replica.kill()  # a graceful drain of the backlog is not what is measured here


async def test_fuzzed_mqtt_messages_and_rpc_frames_leave_the_runtime_answering(
    broker: LocalMosquitto, redis_aof: LocalRedis, tmp_path: Path, report: list[Outcome]
) -> None:
    seed = random.SystemRandom().randrange(2**32)
    rpc_port = free_port()
    rpc = RpcConfig(enabled=True, host="127.0.0.1", port=rpc_port)
    tag, replicas = start_group(broker.port, redis_aof.port, tmp_path, 1, rpc=rpc)
    replica = replicas[0]
    try:
        await ready(broker.port, tag, replicas)
        async with RssSampler({"replica": replica.pid}) as rss:
            started = time.monotonic()
            mqtt_stats = await fuzz_mqtt(broker.port, f"chaos{tag}/jobs", FUZZ_MESSAGES, seed)
            rpc_stats = await fuzz_rpc(rpc_port, FUZZ_FRAMES, seed)
            fuzzed = time.monotonic()
            alive_after_fuzz = replica.alive()
            answering = None
            if alive_after_fuzz:
                answering = await wait_answering(broker.port, commands(tag), within=30)
            heartbeat = await rpc_heartbeat(rpc_port) if replica.alive() else None
        outcome = Outcome(
            "fuzz MQTT + RPC",
            fuzzed - started,
            recovery_seconds=answering,
            peak_rss_mb=rss.peak["replica"],
            alive=replica.alive(),
            details={
                "seed": seed,
                **mqtt_stats,
                **rpc_stats,
                "tracebacks": replica.tracebacks(),
                "rpc_heartbeat_answered": heartbeat is not None,
            },
        )
        report.append(outcome)
        assert alive_after_fuzz and outcome.alive, replica.log_tail()
        assert answering is not None and answering < RECOVERY_BOUND_SECONDS, outcome
        assert heartbeat is not None and heartbeat[2] is None, outcome
    finally:
        replica.stop()
