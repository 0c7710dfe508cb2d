"""Job management throughput: Store -> response with 1 and 2 replicas vs a naive baseline.

The baseline is the naive pipeline of the issue: one aiomqtt client handling requests one
after the other, each with one EVALSHA (a compare-and-swap store) and one XADD, then the
answer. All servers run in their own processes against the same local Mosquitto and
Redis, driven by one load generator process keeping a fixed number of Stores in flight
(each in-flight slot stores into its own scope). Also reports Redis memory per stored job
and the runtime's RSS over many Store/Cancel cycles (flat = no leak).

``--redis cluster`` runs the microdcs rows against a local 3-primary Redis Cluster as well
(APP_REDIS_MODE=cluster), reported next to the single Redis.

The Store rows put every in-flight slot into one scope and never cancel, as an MES loading
one busy cell does, so the scope's job list (and its retained state-index) keeps growing:
"store, empty scope" starts from nothing, "store, N prefilled" from ``--prefill`` jobs
stored first (through the runtime, by Stores). The two alternate over ``--rounds`` rounds,
each with a fresh runtime and key prefix (the machine is shared and noisy), and the table
shows the medians; the JSON has every round. ``--mode store`` runs only these rows.

    python bench/bench_jobs.py [--seconds 10] [--inflight 64] [--cycles 100000]
                               [--redis single|cluster] [--mode all|store]
                               [--prefill 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from loadgen import Call, cpu_seconds, rss_kb, run_load, wait_ready
from loadgen import start_runtime as start_microdcs

from microdcs.app.devstack import LocalMosquitto, LocalRedis, LocalRedisCluster, LocalService

JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"
ORDER = (
    '{{"JobOrder": {{"JobOrderID": "{n}", "Description": [{{"Locale": "en", "Text": "bench '
    'job"}}], "Priority": 3, "JobOrderParameters": [{{"ID": "RunsPlanned", "Value": 10}}]}}}}'
)
STORE: list[Call] = [(f"{JC}.Store.v2", ORDER)]
STORE_CANCEL: list[Call] = [*STORE, (f"{JC}.Cancel.v2", '{{"JobOrderID": "{n}"}}')]
STORED = '"ReturnStatus":1'


def commands(prefix: str) -> str:
    """One scope per requester, as an MES with many stations would load it."""
    return f"{prefix}/cell{{slot}}/commands"


class Target:
    """The Redis the microdcs rows run against: one server or a cluster's primaries."""

    def __init__(self, name: str, ports: list[int], pids: list[int], env: dict[str, str]):
        self.name = name
        self.ports = ports
        self.pids = pids
        #: ``APP_REDIS_*`` of the runtime (its mode and seed nodes for a cluster).
        self.env = env

    @classmethod
    def single(cls, redis: LocalRedis) -> Target:
        return cls("", [redis.port], [pid_of(redis)], {})

    @classmethod
    def cluster(cls, cluster: LocalRedisCluster) -> Target:
        primaries = cluster.primaries
        return cls(
            " (cluster)",
            [node.port for node in primaries],
            [pid_of(node) for node in primaries],
            {"APP_REDIS_MODE": "cluster", "APP_REDIS_NODES": cluster.nodes},
        )

    def watch(self) -> dict[str, int]:
        if len(self.pids) == 1:
            return {"redis": self.pids[0]}
        return {f"redis {n}": pid for n, pid in enumerate(self.pids)}

    def memory(self) -> int:
        return sum(redis_memory(port) for port in self.ports)

    def count(self, pattern: str) -> int:
        return sum(redis_count(port, pattern) for port in self.ports)


def start_runtime(broker: int, target: Target, key_prefix: str, n: int) -> subprocess.Popen[bytes]:
    return start_microdcs(
        broker,
        target.ports[0],
        {
            "APP_INSTANCE_ID": f"bench-{key_prefix}-{n}",
            "APP_REDIS_KEY_PREFIX": key_prefix,
            "APP_MQTT_SHARED_SUBSCRIPTION": key_prefix,
            # Each scope takes thousands of Stores, beyond the default job list limit.
            "APP_JOBS_MAX_DOWNLOADABLE": "0",
            **target.env,
        },
    )


NAIVE = r"""
import asyncio, socket, sys, orjson, aiomqtt, redis.asyncio as aioredis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
CAS = '''
if redis.call('EXISTS', KEYS[1]) == 1 then return 16 end
redis.call('HSET', KEYS[1], 'order', ARGV[1], 'st', 1, 'sub', 2, 'v', 1)
return 1
'''
async def main(port, redis_port):
    r = aioredis.Redis(port=redis_port)
    sha = await r.script_load(CAS)
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]) as client:
        await client.subscribe("bench/naive/+/commands", qos=1)
        print("ready", flush=True)
        async for message in client.messages:
            scope = str(message.topic).split("/")[2]
            order = orjson.loads(message.payload)["JobOrder"]
            key = "naive:{%s}:job:%s" % (scope, order["JobOrderID"])
            status = await r.evalsha(sha, 1, key, message.payload)
            await r.xadd("naive:{%s}:changes" % scope, {"id": order["JobOrderID"]},
                         maxlen=100000, approximate=True)
            props = Properties(PacketTypes.PUBLISH)
            props.CorrelationData = message.properties.CorrelationData
            props.ContentType = "application/json"
            await client.publish(message.properties.ResponseTopic,
                                 orjson.dumps({"ReturnStatus": int(status)}), qos=1,
                                 properties=props)
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


def pid_of(service: LocalService) -> int:
    assert service.process is not None
    return service.process.pid


def redis_memory(port: int) -> int:
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "memory"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return int(
        next(line for line in out.splitlines() if line.startswith("used_memory:")).split(":")[1]
    )


def redis_count(port: int, pattern: str) -> int:
    out = subprocess.run(["redis-cli", "-p", str(port), "--scan", "--pattern", pattern],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return len(out.split())


def redis_key_bytes(port: int, pattern: str, sample: int = 50) -> float:
    """Average MEMORY USAGE of (up to ``sample``) keys matching ``pattern``."""
    out = subprocess.run(["redis-cli", "-p", str(port), "--scan", "--pattern", pattern],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    keys = out.split()[:sample]
    sizes = [
        int(subprocess.run(["redis-cli", "-p", str(port), "MEMORY", "USAGE", key],
                           capture_output=True, text=True, check=True).stdout.strip() or 0)
        for key in keys
    ]  # fmt: skip
    return sum(sizes) / max(len(sizes), 1)


def replicas(broker: int, target: Target, count: int) -> tuple[list[subprocess.Popen[bytes]], str]:
    key_prefix = f"b{uuid.uuid4().hex[:6]}"
    procs = [start_runtime(broker, target, key_prefix, n) for n in range(count)]
    wait_ready(broker, commands("app/jobs"), STORE)
    time.sleep(1.0)
    return procs, key_prefix


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            print(f"replica {p.pid} ignored SIGTERM for 20 s; killing it", file=sys.stderr)
            p.kill()
            p.wait()


def measure(
    broker: LocalMosquitto, target: Target, args: argparse.Namespace, results: dict[str, Any]
) -> None:
    """The microdcs rows (1 and 2 replicas) against ``target``, with Redis memory per job."""
    for count in (1, 2):
        procs, key_prefix = replicas(broker.port, target, count)
        try:
            before = target.memory()
            label = f"microdcs {count} replica{'s' if count > 1 else ''}{target.name}"
            watch = {"broker": pid_of(broker), **target.watch()}
            watch.update({f"replica {n}": p.pid for n, p in enumerate(procs)})
            results[label] = run_load(
                broker.port, commands("app/jobs"), args.seconds, args.inflight, STORE,
                expect=STORED, watch=watch,
            )  # fmt: skip
            jobs = target.count(f"{key_prefix}:jobs:*:job:*")
            dedupe = target.count(f"{key_prefix}:dedupe:*")
            results[label]["jobs_stored"] = jobs
            results[label]["redis_bytes_per_job_incl_dedupe"] = (target.memory() - before) / max(
                jobs, 1
            )
            results[label]["dedupe_keys"] = dedupe
            # Dedupe keys of one MES share a hash tag: all on one primary of a cluster.
            results[label]["redis_bytes_per_dedupe_record"] = max(
                redis_key_bytes(port, f"{key_prefix}:dedupe:*") for port in target.ports
            )
        finally:
            stop(procs)


#: What a Store row reports as the median of its rounds.
MEDIANS = ("rps", "p50_ms", "p99_ms", "lost", "failed", "jobs_before", "jobs_after")
MEDIANS += ("runtime_cpu_us_per_request", "idle_cpu_percent")


def one_scope(prefix: str, scope: str = "cell0") -> str:
    """Every requester into the same scope (the Store rows)."""
    return f"{prefix}/{scope}/commands"


def stored_in(target: Target, key_prefix: str, scope: str = "cell0") -> int:
    return target.count(f"{key_prefix}:jobs:*{scope}*:job:*")


def prefill(broker: int, target: Target, key_prefix: str, jobs: int, scope: str) -> int:
    """Store about ``jobs`` jobs into ``scope``, by Stores through the runtime."""
    while stored_in(target, key_prefix, scope) < jobs:
        topic = one_scope("app/jobs", scope)
        run_load(broker, topic, 1.0, 64, STORE, expect=STORED, warmup=False)
    time.sleep(1.0)  # the publisher catches up with the prefill before the measurement
    return stored_in(target, key_prefix)


def measure_store(
    broker: LocalMosquitto, target: Target, args: argparse.Namespace, results: dict[str, Any]
) -> None:
    """Store without Cancel into one scope: empty, and ``--prefill`` jobs stored first.

    The two alternate, a fresh runtime each, and each row is the median of the rounds.
    The empty row's runtime stores as many jobs into another scope first, so both rows
    measure a runtime warmed up alike.
    """
    labels = {0: f"store, empty scope{target.name}"}
    labels[args.prefill] = f"store, {args.prefill} prefilled{target.name}"
    rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in labels.values()}
    for _ in range(args.rounds):
        for jobs, label in labels.items():
            procs, key_prefix = replicas(broker.port, target, 1)
            try:
                warm = "cell0" if jobs else "warmup"
                before = prefill(broker.port, target, key_prefix, args.prefill, warm)
                watch = {"broker": pid_of(broker), **target.watch(), "replica 0": procs[0].pid}
                r = run_load(
                    broker.port, one_scope("app/jobs"), args.seconds, args.inflight, STORE,
                    expect=STORED, watch=watch,
                )  # fmt: skip
                r["jobs_before"] = before
                runtime_cpu = r.get("cpu_percent", {}).get("replica 0", 0.0)
                r["runtime_cpu_us_per_request"] = runtime_cpu * 1e4 / max(r["rps"], 1.0)
                r["jobs_after"] = stored_in(target, key_prefix)
                if jobs and args.idle > 0:
                    r["idle_cpu_percent"] = idle_cpu(procs[0].pid, args.idle)
                rounds[label].append(r)
            finally:
                stop(procs)
    for label, runs in rounds.items():
        row: dict[str, Any] = {
            key: statistics.median(r[key] for r in runs)
            for key in MEDIANS
            if all(key in r for r in runs)
        }
        row["rounds"] = runs
        results[label] = row


def idle_cpu(pid: int, seconds: float) -> float:
    """The replica's CPU share (% of one core) over ``seconds`` without requests, its
    scope full of the round's jobs: its background tasks must block, not poll."""
    time.sleep(2.0)  # the publisher finishes the load's last pass first
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - started)


def leak_check(
    broker: LocalMosquitto, target: Target, args: argparse.Namespace, results: dict[str, Any]
) -> None:
    """RSS over Store/Cancel cycles (each cycle = 2 requests): flat = no leak."""
    procs, _ = replicas(broker.port, target, 1)
    samples = []
    try:
        # Sized from the measured rate, but at most 2.5 minutes in all.
        rate = max(results["microdcs 1 replica"]["rps"], 500.0)
        chunk_seconds = min(2 * args.cycles / rate / 5, 30.0)
        for _ in range(5):
            r = run_load(
                broker.port, commands("app/jobs"), chunk_seconds, args.inflight,
                STORE_CANCEL, expect=STORED, warmup=False,
            )  # fmt: skip
            samples.append({"requests": r["requests"], "rss_mb": rss_kb(procs[0].pid) / 1024})
    finally:
        stop(procs)
    results["store/cancel cycles"] = {
        "cycles": sum(s["requests"] for s in samples) / 2,
        "rss_mb_samples": [round(s["rss_mb"], 1) for s in samples],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--cycles", type=int, default=100_000)
    parser.add_argument("--json", default="bench/results/bench_jobs.json")
    parser.add_argument(
        "--redis",
        choices=("single", "cluster"),
        default="single",
        help="cluster: also run the microdcs rows against a local 3-primary Redis Cluster",
    )
    parser.add_argument(
        "--mode",
        choices=("all", "store"),
        default="all",
        help="store: only the Store rows into one scope (empty and prefilled), no Cancel",
    )
    parser.add_argument("--prefill", type=int, default=10_000, help="jobs stored first")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (Store rows)")
    parser.add_argument(
        "--idle", type=float, default=20.0,
        help="seconds the prefilled Store row's replica is then measured idle (0: not)",
    )  # fmt: skip
    parser.add_argument(
        "--appendfsync", choices=("off", "no", "everysec", "always"), default="off",
        help="the Redis append-only file: off (none, the default) or its fsync policy",
    )  # fmt: skip
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalMosquitto(Path(tmp) / "broker") as broker,
        LocalRedis(
            Path(tmp) / "redis",
            appendonly=args.appendfsync != "off",
            appendfsync="everysec" if args.appendfsync == "off" else args.appendfsync,
        ) as redis,
    ):
        naive = subprocess.Popen([sys.executable, "-c", NAIVE, str(broker.port), str(redis.port)],
                                 stdout=subprocess.PIPE)  # fmt: skip
        try:
            assert naive.stdout is not None
            naive.stdout.readline()
            wait_ready(broker.port, commands("bench/naive"), STORE)
            watch = {"broker": pid_of(broker), "redis": pid_of(redis), "server": naive.pid}
            results["naive baseline"] = run_load(
                broker.port, commands("bench/naive"), args.seconds, args.inflight, STORE,
                expect=STORED, watch=watch,
            )  # fmt: skip
        finally:
            naive.terminate()
            naive.wait()
        if args.mode == "all":
            measure(broker, Target.single(redis), args, results)
        measure_store(broker, Target.single(redis), args, results)
        if args.redis == "cluster":
            with LocalRedisCluster(Path(tmp) / "cluster", 3) as cluster:
                if args.mode == "all":
                    measure(broker, Target.cluster(cluster), args, results)
                measure_store(broker, Target.cluster(cluster), args, results)
        if args.mode == "all":
            leak_check(broker, Target.single(redis), args, results)
    base = results["naive baseline"]
    print(f"\nStore -> response, {args.inflight} in flight, {args.seconds:.0f} s each")
    print(
        f"{'server':34} {'req/s':>9} {'x base':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'lost':>5} {'fail':>5}"
    )
    for name, r in results.items():
        if "rps" in r:
            print(
                f"{name:34} {r['rps']:9.0f} {r['rps'] / base['rps']:7.2f} {r['p50_ms']:8.2f} "
                f"{r['p99_ms']:8.2f} {int(r['lost']):5d} {int(r.get('failed', 0)):5d}"
            )
    for name, r in results.items():
        if "jobs_before" in r:
            print(f"{name}: jobs in the scope {r['jobs_before']:.0f} -> {r['jobs_after']:.0f}, "
                  f"runtime CPU {r['runtime_cpu_us_per_request']:.0f} µs per Store")  # fmt: skip
        if "idle_cpu_percent" in r:
            print(f"{name}: then idle for {args.idle:.0f} s: {r['idle_cpu_percent']:.2f}% "
                  f"of a core")  # fmt: skip
    for name, r in results.items():
        if "cpu_percent" in r:
            print(f"{name}: CPU % of one core: {r['cpu_percent']}")
    for name in (n for n, r in results.items() if "redis_bytes_per_job_incl_dedupe" in r):
        r = results[name]
        print(f"{name}: Redis bytes per stored job: {r['redis_bytes_per_job_incl_dedupe']:.0f} "
              f"incl. the dedupe record of its request (about "
              f"{r['redis_bytes_per_dedupe_record']:.0f})")  # fmt: skip
    if (cyc := results.get("store/cancel cycles")) is not None:
        print(f"RSS over {cyc['cycles']:.0f} Store/Cancel cycles (MB): {cyc['rss_mb_samples']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"inflight": args.inflight, "seconds": args.seconds,
                                           "redis": args.redis, "mode": args.mode,
                                           "prefill": args.prefill, "rounds": args.rounds,
                                           "idle_seconds": args.idle,
                                           "appendfsync": args.appendfsync,
                                           "results": results},
                                          indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
