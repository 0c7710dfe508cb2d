"""The shared load generator of the request/response benchmarks.

``run_load`` runs the generator in its own process, so every server measured in a run faces
the same generator and does not share its event loop. Two implementations behave the same
and print the same JSON line:

- ``mqttload.c``, in C: compiled on first use with ``cc``/``gcc`` into
  ``bench/.build/mqttload`` (again whenever the source is newer). It needs a fraction of the
  CPU of the Python one, which on a 2-core box shared with Mosquitto, Redis and the server
  under test would otherwise distort the measured latency.
- :func:`load`, in Python with microdcs's lean MQTT client on uvloop: the reference, and the
  fallback when no compiler is there or the build fails (with a one-line notice on stderr).

``BENCH_LOADGEN=python`` forces the Python generator, ``BENCH_LOADGEN=c`` requires the C one
(an error if it cannot be built). The result says which one ran (``generator``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient

GREETING_TYPE = "com.github.aschamberger.microdcs.greeting.v1"
C_SOURCE = Path(__file__).resolve().parent / "mqttload.c"
C_BINARY = C_SOURCE.parent / ".build" / "mqttload"


#: One request of an iteration: CloudEvent type and a payload template (``{n}`` = the
#: iteration's unique id, shared by all its requests, e.g. Store J-n then Cancel J-n).
Call = tuple[str, str]
GREETING: list[Call] = [(GREETING_TYPE, '{{"name": "bench"}}')]


class _Slot:
    """One requester: which call of its sequence is in flight, until when it goes on."""

    __slots__ = ("deadline", "destination", "iteration", "step")

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.step = 0
        self.iteration = ""
        self.deadline = 0.0


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
    not contain ``expect`` counts as failed; a request unanswered for 10 s as lost (and
    its requester goes on). Requesters are callbacks, not tasks: a reply sends the next
    request right in the receive callback, so the generator spends its CPU on MQTT and
    not on task switches, leaving the 2 cores to the servers it measures. It uses
    microdcs's lean MQTT client on uvloop, and every server measured faces the same
    generator.
    """
    sequence = [(ce_type, template) for ce_type, template in (calls or GREETING)]
    loop = asyncio.get_running_loop()
    response_topic = f"bench/responses/{uuid.uuid4().hex}"
    run_id = uuid.uuid4().hex[:8]
    waiting: dict[bytes, tuple[float, _Slot]] = {}
    latencies: list[float] = []
    counter = iter(range(1 << 62))
    busy = 0
    idle: asyncio.Future[None] | None = None
    lost = failed = 0

    def send(slot: _Slot) -> None:
        if slot.step == 0:
            slot.iteration = f"{run_id}-{next(counter)}"
        ce_type, template = sequence[slot.step]
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
        waiting[key] = (time.perf_counter(), slot)
        body = template.format(n=slot.iteration).encode()
        client.publish(slot.destination, body, props, qos=1)

    def advance(slot: _Slot, now: float) -> None:
        """The slot's call is over (answered or lost): the next one, or rest."""
        nonlocal busy
        slot.step = (slot.step + 1) % len(sequence)
        if now < slot.deadline:
            send(slot)
            return
        busy -= 1
        if busy == 0 and idle is not None and not idle.done():
            idle.set_result(None)

    def on_message(message: codec.Publish) -> None:
        nonlocal failed
        client.ack(message.packet_id, client.epoch)
        entry = waiting.pop(message.correlation_data or b"", None)
        if entry is None:
            return
        now = time.perf_counter()
        sent, slot = entry
        latencies.append(now - sent)
        if slot.step == 0 and expect is not None:
            text = (message.payload or b"").decode("utf-8", "replace").replace(" ", "")
            if expect not in text:
                failed += 1
        advance(slot, now)

    async def run_phase(length: float) -> None:
        nonlocal busy, idle
        idle = loop.create_future()
        deadline = time.perf_counter() + length
        busy = inflight
        for slot in slots:
            slot.deadline = deadline
            send(slot)
        await idle

    async def sweep_lost() -> None:
        """Give up on requests unanswered for 10 s (one sweep, not a timer per request)."""
        nonlocal lost
        while True:
            await asyncio.sleep(0.5)
            now = time.perf_counter()
            for key, (sent, slot) in list(waiting.items()):
                if sent < now - 10:
                    del waiting[key]
                    lost += 1
                    advance(slot, now)

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
    slots = [_Slot(topic.format(slot=n)) for n in range(inflight)]
    async with asyncio.TaskGroup() as tasks:
        sweeper = tasks.create_task(sweep_lost())
        if warmup:  # not measured
            await run_phase(1.0)
        latencies.clear()
        lost = failed = 0
        started = time.perf_counter()
        await run_phase(seconds)
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


def build_c_generator() -> Path:
    """The C generator's binary, compiled first if missing or older than its source.

    Raises ``RuntimeError`` when there is no compiler (``cc`` or ``gcc``) or the build fails.
    """
    if C_BINARY.exists() and C_BINARY.stat().st_mtime >= C_SOURCE.stat().st_mtime:
        return C_BINARY
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc or gcc) on PATH")
    C_BINARY.parent.mkdir(exist_ok=True)
    partial = C_BINARY.with_name(f".mqttload-{os.getpid()}")  # concurrent builds don't clash
    build = subprocess.run(
        [compiler, "-O2", "-Wall", "-Wextra", "-o", str(partial), str(C_SOURCE)],
        capture_output=True,
        text=True,
    )
    if build.returncode:
        partial.unlink(missing_ok=True)
        lines = build.stderr.strip().splitlines()
        detail = next((line for line in lines if "error" in line), lines[0] if lines else "")
        raise RuntimeError(f"{Path(compiler).name} failed to compile {C_SOURCE.name}: {detail}")
    os.replace(partial, C_BINARY)
    return C_BINARY


_c_unavailable: str | None = None  # why the C generator could not be built, once noticed


def _c_generator() -> Path | None:
    """The C generator to run, or ``None`` for the Python one (``BENCH_LOADGEN`` decides)."""
    global _c_unavailable
    choice = os.environ.get("BENCH_LOADGEN", "").strip().lower()
    if choice == "python":
        return None
    if choice not in ("", "auto", "c"):
        raise ValueError(f"BENCH_LOADGEN={choice!r}: use 'c' or 'python' (or leave it unset)")
    if _c_unavailable is not None and choice != "c":
        return None  # the build failed before: don't try (and notify) on every run
    try:
        return build_c_generator()
    except (RuntimeError, OSError) as exc:
        if choice == "c":
            raise RuntimeError(
                f"BENCH_LOADGEN=c: cannot build the C load generator: {exc}"
            ) from exc
        _c_unavailable = str(exc)
        print(f"loadgen: using the Python load generator ({exc})", file=sys.stderr, flush=True)
        return None


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
    """The load generator (:func:`load` or its C twin) in its own process.

    With ``watch`` (name -> pid), also the CPU share of each process (and of the load
    generator) during the measured part: on 2 cores shared by broker, Redis, generator
    and servers this shows what a configuration is bound by.
    """
    binary = _c_generator()
    command: list[str]
    if binary is not None:
        command = [str(binary), str(port), topic, repr(float(seconds)), str(inflight)]
        command.append("1" if warmup else "0")
        if expect is not None:
            command += ["--expect", expect]
        for ce_type, template in calls or GREETING:
            command += ["--call", ce_type, template]
    else:
        here = str(Path(__file__).parent)
        arguments = json.dumps([port, topic, seconds, inflight, calls, expect, warmup])
        code = (
            f"import json, sys; sys.path.insert(0, {here!r}); import loadgen as g; "
            f"import uvloop; print(json.dumps(uvloop.run(g.load(*json.loads({arguments!r})))))"
        )
        command = [sys.executable, "-c", code]
    gen = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
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
    result["generator"] = "python" if binary is None else "c"
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
        APP_GREETING_ENABLED="true",  # the echo benchmark talks to it
    )
    env.update(env_extra or {})
    command = os.environ.get("BENCH_RUNTIME_CMD", "-m microdcs.app.cli run").split()
    return subprocess.Popen([sys.executable, *command], env=env)


def context_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of a process so far: a process that waits
    more often per unit of work batches less; one preempted more often shares its cores."""
    counts = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in counts:
            counts[name] = int(value)
    return counts["voluntary_ctxt_switches"], counts["nonvoluntary_ctxt_switches"]


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
