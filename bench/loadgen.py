"""The shared load generator of the request/response benchmarks.

Runs in its own process (``run_load``) with microdcs's lean MQTT client on uvloop, so it is
never the bottleneck and every server measured in a run faces the same generator.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient

GREETING_TYPE = "com.github.aschamberger.microdcs.greeting.v1"


#: One request of an iteration: CloudEvent type and a payload template (``{n}`` = the
#: iteration's unique id, shared by all its requests, e.g. Store J-n then Cancel J-n).
Call = tuple[str, str]
GREETING: list[Call] = [(GREETING_TYPE, '{{"name": "bench"}}')]


async def load(
    port: int,
    topic: str,
    seconds: float,
    inflight: int,
    calls: list[Call] | None = None,
    expect: str | None = None,
    warmup: bool = True,
) -> dict[str, float]:
    """Keep ``inflight`` requesters busy for ``seconds``; measure every round trip.

    Each requester repeats the sequence ``calls`` (default: one greeting) on ``topic``,
    where ``{slot}`` becomes the requester's number. A reply to the first call that does
    not contain ``expect`` counts as failed; a request unanswered for 10 s as lost. Uses
    microdcs's lean MQTT client on uvloop so the generator is not the bottleneck, and
    every server measured faces the same generator.
    """
    sequence = calls or GREETING
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
        ClientOptions(
            host="127.0.0.1",
            port=port,
            client_id=f"load-{uuid.uuid4().hex[:8]}",
            clean_start=True,
            receive_maximum=max(inflight * 2, 64),
        ),
        on_message,
    )
    await client.connect()
    await client.subscribe([(response_topic, 1)])
    run_id = uuid.uuid4().hex[:8]
    counter = iter(range(1 << 62))

    async def call(destination: str, ce_type: str, body: bytes) -> bytes | None:
        nonlocal lost
        n = next(counter)
        key = n.to_bytes(8, "big")
        props = codec.encode_publish_properties(
            payload_format=1,
            content_type="application/json",
            response_topic=response_topic,
            correlation_data=key,
            user_properties=[
                ("specversion", "1.0"),
                ("id", f"{run_id}-{n}"),
                ("source", "bench/mes"),
                ("type", ce_type),
            ],
        )
        done: asyncio.Future[bytes] = loop.create_future()
        waiting[key] = (time.perf_counter(), done)
        client.publish(destination, body, props, qos=1)
        try:
            return await done
        except asyncio.CancelledError:  # by the sweeper: unanswered for 10 s
            waiting.pop(key, None)
            lost += 1
            return None

    async def sweep_lost() -> None:
        """Cancel requests unanswered for 10 s (one sweep, not a timer per request)."""
        while True:
            await asyncio.sleep(0.5)
            limit = time.perf_counter() - 10
            for sent, future in list(waiting.values()):
                if sent < limit and not future.done():
                    future.cancel()

    async def requester(slot: int, deadline: float) -> None:
        nonlocal failed
        destination = topic.format(slot=slot)
        while time.perf_counter() < deadline:
            iteration = f"{run_id}-{next(counter)}"
            for i, (ce_type, template) in enumerate(sequence):
                reply = await call(destination, ce_type, template.format(n=iteration).encode())
                text = reply.decode("utf-8", "replace") if reply is not None else None
                if (
                    i == 0
                    and expect is not None
                    and text is not None
                    and (expect not in text.replace(" ", ""))
                ):
                    failed += 1

    async with asyncio.TaskGroup() as tasks:
        sweeper = tasks.create_task(sweep_lost())
        if warmup:  # not measured
            await asyncio.gather(
                *(requester(s, time.perf_counter() + 1.0) for s in range(inflight))
            )
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(requester(s, started + seconds) for s in range(inflight)))
        elapsed = time.perf_counter() - started
        sweeper.cancel()
    await client.disconnect()
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "lost": lost,
        "failed": failed,
        "rps": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else float("nan"),
        "p90_ms": latencies[min(n - 1, int(n * 0.90))] * 1000 if n else float("nan"),
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        "p999_ms": latencies[min(n - 1, int(n * 0.999))] * 1000 if n else float("nan"),
        "max_ms": latencies[-1] * 1000 if n else float("nan"),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(
    port: int,
    topic: str,
    seconds: float,
    inflight: int,
    calls: list[Call] | None = None,
    *,
    expect: str | None = None,
    warmup: bool = True,
    watch: dict[str, int] | None = None,
) -> dict[str, Any]:
    """:func:`load` in its own process, so it does not share the server's core.

    With ``watch`` (name -> pid), also the CPU share of each process (and of the load
    generator) during the measured part: on 2 cores shared by broker, Redis, generator
    and servers this shows what a configuration is bound by.
    """
    here = str(Path(__file__).parent)
    arguments = json.dumps([port, topic, seconds, inflight, calls, expect, warmup])
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import loadgen as g; import uvloop; "
        f"print(json.dumps(uvloop.run(g.load(*json.loads({arguments!r})))))"
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


def start_runtime(
    broker: int, redis: int, env_extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``microdcs run`` against the given broker and Redis, isolated by random ids.

    ``env_extra`` adds or overrides ``APP_*`` settings (e.g. a known key prefix).
    ``BENCH_RUNTIME_CMD`` replaces the Python arguments, e.g. with a script that runs the
    runtime under a profiler.
    """
    env = dict(os.environ)
    env.update(
        APP_MQTT_HOSTNAME="127.0.0.1",
        APP_MQTT_PORT=str(broker),
        APP_REDIS_HOSTNAME="127.0.0.1",
        APP_REDIS_PORT=str(redis),
        APP_INSTANCE_ID=f"bench-{uuid.uuid4().hex[:6]}",
        APP_REDIS_KEY_PREFIX=f"bench{uuid.uuid4().hex[:6]}",
        APP_LOG_LEVEL="WARNING",
        APP_HTTP_PORT="0",
    )
    env.update(env_extra or {})
    command = os.environ.get("BENCH_RUNTIME_CMD", "-m microdcs.cli run").split()
    return subprocess.Popen([sys.executable, *command], env=env)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_ready(port: int, topic: str, calls: list[Call] | None = None) -> None:
    """Until one request gets its response (the server subscribed)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            result = run_load(port, topic, 0.2, 1, calls, warmup=False)
            if result["requests"] > 0:
                return
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not answer")
