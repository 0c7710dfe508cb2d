"""Job management throughput: Store -> response with 1 and 2 replicas vs a naive baseline.

The baseline is the naive pipeline of the issue: one aiomqtt client handling requests one
after the other, each with one EVALSHA (a compare-and-swap store) and one XADD, then the
answer. All servers run in their own processes against the same local Mosquitto and
Redis, driven by one load generator process keeping a fixed number of Stores in flight
(each in-flight slot stores into its own scope). Also reports Redis memory per stored job
and the runtime's RSS over many Store/Cancel cycles (flat = no leak).

    python bench/bench_jobs.py [--seconds 10] [--inflight 64] [--cycles 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from microdcs.devstack import LocalMosquitto, LocalRedis, LocalService
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient

JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"
ORDER = (
    b'{"JobOrder": {"JobOrderID": "%s", "Description": [{"Locale": "en", "Text": "bench job"}],'
    b' "Priority": 3, "JobOrderParameters": [{"ID": "RunsPlanned", "Value": 10}]}}'
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


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def load(
    port: int, prefix: str, seconds: float, inflight: int, cycle: bool
) -> dict[str, float]:
    """Keep ``inflight`` Stores outstanding (or Store+Cancel pairs with ``cycle``)."""
    loop = asyncio.get_running_loop()
    response_topic = f"bench/responses/{uuid.uuid4().hex}"
    waiting: dict[bytes, tuple[float, asyncio.Future[bytes]]] = {}
    latencies: list[float] = []
    lost = failed = 0

    def on_message(message: codec.Publish) -> None:
        entry = waiting.pop(message.correlation_data or b"", None)
        if entry is not None:
            latencies.append(time.perf_counter() - entry[0])
            if not entry[1].done():
                entry[1].set_result(message.payload or b"")
        client.ack(message.packet_id, client.epoch)

    client = MqttClient(
        ClientOptions(host="127.0.0.1", port=port, client_id=f"load-{uuid.uuid4().hex[:8]}",
                      clean_start=True, receive_maximum=max(inflight * 2, 64)),
        on_message,
    )  # fmt: skip
    await client.connect()
    await client.subscribe([(response_topic, 1)])
    run_id = uuid.uuid4().hex[:8]
    counter = iter(range(1 << 62))

    async def call(slot: int, method: str, body: bytes) -> bytes | None:
        nonlocal lost
        n = next(counter)
        key = n.to_bytes(8, "big")
        props = codec.encode_publish_properties(
            payload_format=1, content_type="application/json", response_topic=response_topic,
            correlation_data=key,
            user_properties=[("specversion", "1.0"), ("id", f"{run_id}-{n}"),
                             ("source", "bench/mes"), ("type", f"{JC}.{method}.v2")],
        )  # fmt: skip
        done: asyncio.Future[bytes] = loop.create_future()
        waiting[key] = (time.perf_counter(), done)
        client.publish(f"{prefix}/cell{slot}/commands", body, props, qos=1)
        timer = loop.call_later(10, done.cancel)
        try:
            return await done
        except asyncio.CancelledError:
            waiting.pop(key, None)
            lost += 1
            return None
        finally:
            timer.cancel()

    async def requester(slot: int, deadline: float) -> None:
        nonlocal failed
        while time.perf_counter() < deadline:
            job_id = f"{run_id}-{next(counter)}"
            reply = await call(slot, "Store", ORDER % job_id.encode())
            if reply is not None and b'"ReturnStatus":1' not in reply.replace(b" ", b""):
                failed += 1
            if cycle:
                await call(slot, "Cancel", b'{"JobOrderID": "%s"}' % job_id.encode())

    if not cycle:  # warm-up, not measured
        await asyncio.gather(*(requester(s, time.perf_counter() + 1.0) for s in range(inflight)))
    latencies.clear()
    started = time.perf_counter()
    await asyncio.gather(*(requester(s, started + seconds) for s in range(inflight)))
    elapsed = time.perf_counter() - started
    await client.disconnect()
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n, "lost": lost, "failed": failed, "rps": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else float("nan"),
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
    }  # fmt: skip


def pid_of(service: LocalService) -> int:
    assert service.process is not None
    return service.process.pid


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(
    port: int,
    prefix: str,
    seconds: float,
    inflight: int,
    cycle: bool = False,
    watch: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The load generator in its own process, so it does not share the server's core.

    With ``watch`` (name -> pid), also the CPU share of each process (and of the load
    generator) during the measured part of the run: on 2 cores shared by broker, Redis,
    load generator and replicas this shows what a configuration is bound by.
    """
    here = str(Path(__file__).parent)
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import bench_jobs as b; import uvloop; "
        f"print(json.dumps(uvloop.run(b.load({port}, {prefix!r}, {seconds}, {inflight}, {cycle}))))"
    )
    gen = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    cpu: dict[str, float] = {}
    if watch and seconds > 2:
        pids = {**watch, "load generator": gen.pid}
        time.sleep(1.5)  # start-up and the 1 s warm-up
        before, started = {n: cpu_seconds(p) for n, p in pids.items()}, time.monotonic()
        time.sleep(seconds - 1.0)
        elapsed = time.monotonic() - started
        cpu = {n: round(100 * (cpu_seconds(p) - before[n]) / elapsed) for n, p in pids.items()}
    out, _ = gen.communicate()
    if gen.returncode:
        raise subprocess.CalledProcessError(gen.returncode, "load generator")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if cpu:
        result["cpu_percent"] = cpu
    return result


def start_runtime(broker: int, redis: int, key_prefix: str, n: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        APP_MQTT_HOSTNAME="127.0.0.1", APP_MQTT_PORT=str(broker), APP_REDIS_HOSTNAME="127.0.0.1",
        APP_REDIS_PORT=str(redis), APP_INSTANCE_ID=f"bench-{key_prefix}-{n}",
        APP_REDIS_KEY_PREFIX=key_prefix, APP_LOG_LEVEL="WARNING",
        APP_MQTT_SHARED_SUBSCRIPTION=key_prefix, APP_HTTP_PORT="0",
    )  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "microdcs.cli", "run"], env=env)


def wait_ready(port: int, prefix: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if run_load(port, prefix, 0.2, 1)["requests"] > 0:
                return
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not answer")


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


def replicas(broker: int, redis: int, count: int) -> tuple[list[subprocess.Popen[bytes]], str]:
    key_prefix = f"b{uuid.uuid4().hex[:6]}"
    procs = [start_runtime(broker, redis, key_prefix, n) for n in range(count)]
    wait_ready(broker, "app/jobs")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--cycles", type=int, default=100_000)
    parser.add_argument("--json", default="bench/results/bench_jobs.json")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalMosquitto(Path(tmp) / "broker") as broker,
        LocalRedis(Path(tmp) / "redis", appendonly=False) as redis,
    ):
        naive = subprocess.Popen([sys.executable, "-c", NAIVE, str(broker.port), str(redis.port)],
                                 stdout=subprocess.PIPE)  # fmt: skip
        try:
            assert naive.stdout is not None
            naive.stdout.readline()
            wait_ready(broker.port, "bench/naive")
            watch = {"broker": pid_of(broker), "redis": pid_of(redis), "server": naive.pid}
            results["naive baseline"] = run_load(
                broker.port, "bench/naive", args.seconds, args.inflight, watch=watch
            )
        finally:
            naive.terminate()
            naive.wait()
        for count in (1, 2):
            procs, key_prefix = replicas(broker.port, redis.port, count)
            try:
                before = redis_memory(redis.port)
                label = f"microdcs {count} replica{'s' if count > 1 else ''}"
                watch = {"broker": pid_of(broker), "redis": pid_of(redis)}
                watch.update({f"replica {n}": p.pid for n, p in enumerate(procs)})
                results[label] = run_load(
                    broker.port, "app/jobs", args.seconds, args.inflight, watch=watch
                )
                jobs = redis_count(redis.port, f"{key_prefix}:jobs:*:job:*")
                dedupe = redis_count(redis.port, f"{key_prefix}:dedupe:*")
                results[label]["jobs_stored"] = jobs
                results[label]["redis_bytes_per_job_incl_dedupe"] = (
                    redis_memory(redis.port) - before
                ) / max(jobs, 1)
                results[label]["dedupe_keys"] = dedupe
                results[label]["redis_bytes_per_dedupe_record"] = redis_key_bytes(
                    redis.port, f"{key_prefix}:dedupe:*"
                )
            finally:
                stop(procs)
        # Leak check: RSS over Store/Cancel cycles (each cycle = 2 requests).
        procs, _ = replicas(broker.port, redis.port, 1)
        samples = []
        try:
            # Sized from the measured rate, but at most 2.5 minutes in all.
            rate = max(results["microdcs 1 replica"]["rps"], 500.0)
            chunk_seconds = min(2 * args.cycles / rate / 5, 30.0)
            for _ in range(5):
                r = run_load(broker.port, "app/jobs", chunk_seconds, args.inflight, cycle=True)
                samples.append({"requests": r["requests"], "rss_mb": rss_kb(procs[0].pid) / 1024})
        finally:
            stop(procs)
        results["store/cancel cycles"] = {
            "cycles": sum(s["requests"] for s in samples) / 2,
            "rss_mb_samples": [round(s["rss_mb"], 1) for s in samples],
        }
    base = results["naive baseline"]
    print(f"\nStore -> response, {args.inflight} in flight, {args.seconds:.0f} s each")
    print(
        f"{'server':22} {'req/s':>9} {'x base':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'lost':>5} {'fail':>5}"
    )
    for name, r in results.items():
        if "rps" in r:
            print(
                f"{name:22} {r['rps']:9.0f} {r['rps'] / base['rps']:7.2f} {r['p50_ms']:8.2f} "
                f"{r['p99_ms']:8.2f} {int(r['lost']):5d} {int(r.get('failed', 0)):5d}"
            )
    for name, r in results.items():
        if "cpu_percent" in r:
            print(f"{name}: CPU % of one core: {r['cpu_percent']}")
    for name in ("microdcs 1 replica", "microdcs 2 replicas"):
        r = results[name]
        print(f"{name}: Redis bytes per stored job: {r['redis_bytes_per_job_incl_dedupe']:.0f} "
              f"incl. the dedupe record of its request (about "
              f"{r['redis_bytes_per_dedupe_record']:.0f})")  # fmt: skip
    cyc = results["store/cancel cycles"]
    print(f"RSS over {cyc['cycles']:.0f} Store/Cancel cycles (MB): {cyc['rss_mb_samples']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"inflight": args.inflight, "seconds": args.seconds,
                                           "results": results}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
