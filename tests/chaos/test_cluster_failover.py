"""Failover of a Redis Cluster primary under a Store load, with WAIT acknowledgement.

Three primaries with one replica each (node timeout 1 s), two runtime replicas with
``APP_REDIS_WAIT_REPLICAS=1``: a Store is answered Good only once the replica of its
scope's primary has the job. The primary that holds the load's scope is SIGKILLed; its
replica is promoted, and the killed node is started again (as a rescheduled pod would be)
and rejoins as the new primary's replica. Until then the promoted primary has no replica,
so WAIT cannot be satisfied and Stores are answered as storage unavailable, never Good.
Afterwards every Store that was answered Good must be in the cluster.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from microdcs.app.devstack import LocalMosquitto, LocalRedisCluster, LocalRedisNode
from tests.chaos.harness import (
    Outcome,
    Replica,
    RssSampler,
    chaos_seconds,
    new_tag,
    replica_config,
)
from tests.chaos.mesload import MesLoad, summary
from tests.chaos.test_faults import (
    RECOVERY_BOUND_SECONDS,
    commands,
    finish,
    probe_recovery,
    ready,
    slowest_after,
)

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def start_group(
    broker: int, cluster: LocalRedisCluster, tmp: Path, count: int, wait_replicas: int
) -> tuple[str, list[Replica]]:
    tag = new_tag()
    replicas = []
    for n in range(count):
        config = replica_config(broker, cluster, tag, n)
        config = replace(config, redis=replace(config.redis, wait_replicas=wait_replicas))
        replicas.append(Replica(config, tmp))
    for replica in replicas:
        replica.start()
    return tag, replicas


def job_keys(nodes: list[LocalRedisNode], tag: str) -> dict[str, LocalRedisNode]:
    """Every job key of the scenario's prefix on the given nodes, with its node."""
    found: dict[str, LocalRedisNode] = {}
    for node in nodes:
        client = redis.Redis(host="127.0.0.1", port=node.port)
        try:
            for key in client.scan_iter(match=f"chaos{tag}:*job*", count=5000):
                found[key.decode(errors="replace")] = node
        finally:
            client.close()
    return found


def key_parts(keys: dict[str, LocalRedisNode]) -> set[str]:
    """The parts (split at ``:``, ``{``, ``}``) of the keys: a stored job's id is one."""
    parts: set[str] = set()
    for key in keys:
        parts.update(re.split(r"[:{}]", key))
    return parts


#: Written to the victim primary while its replica is frozen: more than the loopback
#: socket buffers hold, so what follows stays in the primary's replication buffer and is
#: lost with it (a replica behind, as on a loaded network).
FILLER_MB = 24
#: How long Stores go on against the primary while its replica is frozen.
LAGGING_SECONDS = 1.0


def fill(node: LocalRedisNode, tag: str, megabytes: int) -> None:
    """Filler in the victim's own slot (``tag`` is the job keys' hash tag)."""
    client = redis.Redis(host="127.0.0.1", port=node.port)
    try:
        value = b"f" * 1_000_000
        for n in range(megabytes):
            client.set(f"filler:{tag}:{n}", value)
    finally:
        client.close()


def hash_tag_of(key: str) -> str:
    return key[key.index("{") : key.index("}") + 1]


async def failover_under_load(
    broker: LocalMosquitto, tmp_path: Path, wait_replicas: int
) -> tuple[Outcome, MesLoad, list[Replica]]:
    """Load, freeze the replica of the scope's primary, fill the primary's replication
    buffer, SIGKILL the primary, thaw the replica (promoted), start the killed node again."""
    seconds = chaos_seconds()
    with LocalRedisCluster(tmp_path / "cluster", 3, 1, node_timeout_ms=1000) as cluster:
        tag, replicas = start_group(broker.port, cluster, tmp_path, 2, wait_replicas)
        try:
            await ready(broker.port, tag, replicas)
            async with MesLoad(broker.port, commands(tag)) as mes:
                pids = {f"replica {n}": r.pid for n, r in enumerate(replicas)}
                async with RssSampler(pids) as rss:
                    load = asyncio.create_task(mes.closed_loop(seconds * 3, inflight=16))
                    await asyncio.sleep(seconds)
                    stored = await asyncio.to_thread(job_keys, cluster.primaries, tag)
                    assert stored, "the load stored nothing before the fault"
                    key = next(iter(stored))
                    victim = stored[key]
                    (lagging,) = cluster.replicas_of(victim)
                    cluster.pause(lagging)
                    await asyncio.to_thread(fill, victim, hash_tag_of(key), FILLER_MB)
                    await asyncio.sleep(LAGGING_SECONDS)
                    fault = time.monotonic()
                    cluster.kill(victim)
                    cluster.resume(lagging)
                    probe = asyncio.create_task(probe_recovery(mes, fault, within=45))
                    promotion = await asyncio.to_thread(cluster.wait_failover, key, victim)
                    # The promoted primary has no replica: WAIT 1 cannot be met until the
                    # killed node is back and in sync with it.
                    await asyncio.to_thread(cluster.start, victim)
                    await asyncio.to_thread(cluster.wait_ok)
                    resynced = time.monotonic() - fault
                    await load
                    recovered = await probe
                    resent = await finish(mes)
                    until = time.monotonic()
                keys = await asyncio.to_thread(job_keys, cluster.primaries, tag)
                parts = key_parts(keys)
                acknowledged = [r.job_id for r in mes.acknowledged()]
                unseen = [job for job in acknowledged if job not in parts]
                # Not among the keys: asked of the runtime as well (stored means readable
                # through the API); one it does not answer about cannot be shown kept.
                missing, unverified = await mes.missing_jobs(unseen) if unseen else ([], [])
                lost = missing + unverified
                outcome = Outcome(
                    f"cluster failover WAIT {wait_replicas}",
                    seconds * 3,
                    lost=len(lost),
                    duplicates=mes.duplicates(),
                    recovery_seconds=recovered,
                    peak_rss_mb=max(rss.peak.values()),
                    alive=all(r.alive() for r in replicas),
                    details={
                        **summary(mes),
                        "resent_by_mes": resent,
                        "wait_replicas": wait_replicas,
                        "replica_frozen_s": LAGGING_SECONDS,
                        "filler_mb": FILLER_MB,
                        "promotion_s": round(promotion, 2),
                        "killed_node_back_in_sync_s": round(resynced, 2),
                        "longest_wait_after_fault_s": round(slowest_after(mes, fault, until), 2),
                        "lost_job_ids": lost[:20],
                    },
                )
                return outcome, mes, replicas
        finally:
            for replica in replicas:
                replica.stop()


async def test_primary_sigkill_in_a_cluster_with_wait_loses_no_acknowledged_job(
    broker: LocalMosquitto, tmp_path: Path, report: list[Outcome]
) -> None:
    outcome, mes, replicas = await failover_under_load(broker, tmp_path, wait_replicas=1)
    report.append(outcome)
    assert outcome.lost == 0, outcome
    assert outcome.alive, [r.log_tail() for r in replicas]
    assert not mes.unanswered(), outcome
    assert outcome.recovery_seconds is not None, outcome
    assert outcome.recovery_seconds < RECOVERY_BOUND_SECONDS, outcome


async def test_without_wait_the_same_failover_loses_acknowledged_jobs(
    broker: LocalMosquitto, tmp_path: Path, report: list[Outcome]
) -> None:
    """The control: the same failover without WAIT loses Stores that were answered Good
    (acknowledged by the primary alone while its replica was behind), so the scenario above
    does put acknowledged jobs at risk and its count of 0 is WAIT's doing."""
    outcome, _, _ = await failover_under_load(broker, tmp_path, wait_replicas=0)
    report.append(outcome)
    assert outcome.lost > 0, outcome
