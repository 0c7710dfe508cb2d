"""The operator pages under load: how fast a change reaches an open page, and what the
pages cost the runtime.

One ``microdcs run`` (real Mosquitto and Redis, its real HTTP server) with 1,000 float
tags and 500 stored jobs in one scope; a paho client changes the tags at 1,000 changes/s
(data events of 10 samples, QoS 1) and stores 10 more jobs a second; 20 pages (10 on the
tags page's live stream, 10 on the jobs page's) read Server-Sent Events as a browser's
EventSource does, anonymous viewers (``APP_WEB_ANONYMOUS_VIEWER``).

- **latency**: for tags, from a sample's timestamp (set when it is published) to the
  update that carries it on each page; for jobs, from publishing the Store to the update
  that first carries the job's row; p50 / p99 / max over every page;
- **CPU**: the runtime's CPU (``/proc``) over the same load without pages and then with
  the 20 pages; the difference is the web part, as a share of one core.

    python bench/bench_web.py [--seconds 15] [--json bench/results/bench_web.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import cpu_seconds

from microdcs.app.devstack import LocalMosquitto, LocalRedis, free_port

SCOPE = "line1"
TAGS = 1000
JOBS = 500
CHANGES_PER_SECOND = 1000
SAMPLES_PER_EVENT = 10
JOBS_PER_SECOND = 10
PAGES = 20
PLANT, JOBS_PREFIX = "bench/plant", "bench/jobs"
DATA_TYPE = "com.github.aschamberger.microdcs.tag.data.v1"
STORE_TYPE = "org.opcfoundation.ISA95-JOBCONTROL_V2.Store.v2"
WORKMASTER_TYPE = "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.workmaster.v1"


def tag(n: int) -> str:
    return f"TI-{n:04d}"


def start_runtime(
    broker: int, redis_port: int, tags_file: Path, http: int
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        APP_MQTT_HOSTNAME="127.0.0.1", APP_MQTT_PORT=str(broker),
        APP_REDIS_HOSTNAME="127.0.0.1", APP_REDIS_PORT=str(redis_port),
        APP_INSTANCE_ID=f"bench-web-{uuid.uuid4().hex[:6]}", APP_LOG_LEVEL="WARNING",
        APP_HTTP_HOST="127.0.0.1", APP_HTTP_PORT=str(http), APP_PLANT_TOPIC_PREFIX=PLANT,
        APP_JOBS_TOPIC_PREFIX=JOBS_PREFIX, APP_PLANT_TAGS_FILE=str(tags_file),
        APP_GREETING_ENABLED="false", APP_WEB_ANONYMOUS_VIEWER="true",
    )  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "microdcs.app.cli", "run"], env=env)


def props(ce_type: str) -> Properties:
    p = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    p.ContentType = "application/json"
    p.UserProperty = [("specversion", "1.0"), ("id", uuid.uuid4().hex),
                      ("source", "bench/web"), ("type", ce_type)]  # fmt: skip
    return p


class Plant:
    """A paho client in its own thread: the tag changes and the job stores."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=f"bench-web-{uuid.uuid4().hex[:6]}")  # fmt: skip
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        sock = self.client.socket()
        assert isinstance(sock, socket.socket)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        self.stored_at: dict[str, float] = {}
        self.jobs = 0
        self.value = 0

    def command(self, ce_type: str, data: Any) -> None:
        p = props(ce_type)
        p.ResponseTopic = "bench/web/responses"
        p.CorrelationData = uuid.uuid4().bytes
        self.client.publish(f"{JOBS_PREFIX}/{SCOPE}/commands", orjson.dumps(data), 1,
                            properties=p)  # fmt: skip

    def store_job(self) -> None:
        job_id = f"J{self.jobs:06d}"
        self.jobs += 1
        self.stored_at[job_id] = time.time()
        self.command(STORE_TYPE, {"JobOrder": {"JobOrderID": job_id,
                                               "WorkMasterID": [{"ID": "WM"}]}})  # fmt: skip

    def samples(self) -> None:
        now = time.time()
        base = self.value
        self.value += SAMPLES_PER_EVENT
        samples = [{"Tag": tag((base + i) % TAGS), "Value": float((base + i) // TAGS % 97),
                    "Timestamp": now} for i in range(SAMPLES_PER_EVENT)]  # fmt: skip
        self.client.publish(f"{PLANT}/{SCOPE}/data", orjson.dumps({"Samples": samples}), 1,
                            properties=props(DATA_TYPE))  # fmt: skip

    def load(self, stop: threading.Event) -> None:
        """1,000 tag changes and 10 job stores a second until ``stop``."""
        events_per_second = CHANGES_PER_SECOND / SAMPLES_PER_EVENT
        start = time.perf_counter()
        n = 0
        while not stop.is_set():
            due = start + n / events_per_second
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.samples()
            if n % int(events_per_second / JOBS_PER_SECOND) == 0:
                self.store_job()
            n += 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def page(port: int, path: str, plant: Plant, out: list[float], stop: asyncio.Event) -> int:
    """One EventSource: the latency of every change it is shown; returns its updates."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
                 .encode())  # fmt: skip
    buffer = b""
    updates = 0
    seen: set[str] = set()
    pattern = re.compile(rb"event: (\w+)\ndata: (.*)\n\n")
    try:
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 20), 0.5)
            except TimeoutError:
                continue
            if not chunk:
                break
            buffer += chunk
            now = time.time()
            end = 0
            for match in pattern.finditer(buffer):
                end = match.end()
                data = orjson.loads(match.group(2))
                if match.group(1) == b"snapshot":
                    seen.update(r["id"] for r in data.get("rows", ()))
                    continue
                updates += 1
                for sample in data.get("tags", ()):
                    out.append(now - sample["time"])
                for row in data.get("rows", ()):
                    if row["id"] not in seen and row["id"] in plant.stored_at:
                        seen.add(row["id"])
                        out.append(now - plant.stored_at[row["id"]])
            buffer = buffer[end:]
    finally:
        writer.close()
    return updates


def percentiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"changes": 0}
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"changes": len(values), "p50_ms": round(q[49] * 1000, 1),
            "p99_ms": round(q[98] * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1)}  # fmt: skip


async def with_pages(port: int, plant: Plant, seconds: float) -> dict[str, Any]:
    stop = asyncio.Event()
    tag_lat: list[float] = []
    job_lat: list[float] = []
    tasks = [
        asyncio.create_task(page(port, f"/live/scopes/{SCOPE}/tags", plant, tag_lat, stop))
        for _ in range(PAGES // 2)
    ] + [
        asyncio.create_task(page(port, f"/live/scopes/{SCOPE}/jobs", plant, job_lat, stop))
        for _ in range(PAGES // 2)
    ]
    await asyncio.sleep(2.0)  # every page has its snapshot
    tag_lat.clear()
    job_lat.clear()
    await asyncio.sleep(seconds)
    stop.set()
    updates = await asyncio.gather(*tasks)
    per_page = sum(updates) / len(updates) / (seconds + 2)
    return {
        "tags_page": percentiles(tag_lat),
        "jobs_page": percentiles(job_lat),
        "updates_per_page_per_second": round(per_page, 1),
    }


def cpu_share(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def wait_http(port: int, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.time() > deadline:
            raise RuntimeError("the runtime did not get ready")
        time.sleep(0.2)


def listed_jobs(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/scopes/{SCOPE}/jobs", timeout=10) as r:
        return r.read().decode().count('<tr id="job-')


def run(seconds: float) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalMosquitto(Path(tmp) / "broker") as broker,
        LocalRedis(Path(tmp) / "redis", appendonly=False) as redis_server,
    ):
        tags_file = Path(tmp) / "tags.json"
        definitions = [{"Name": tag(n), "DataType": "float", "Unit": "degC"} for n in range(TAGS)]
        tags_file.write_bytes(orjson.dumps({SCOPE: definitions}))
        http = free_port()
        proc = start_runtime(broker.port, redis_server.port, tags_file, http)
        plant = Plant(broker.port)
        stop = threading.Event()
        try:
            wait_http(http)
            plant.command(WORKMASTER_TYPE, {"ID": "WM"})
            time.sleep(0.5)
            for _ in range(JOBS):
                plant.store_job()
            deadline = time.time() + 30
            while listed_jobs(http) < JOBS and time.time() < deadline:
                time.sleep(0.5)
            jobs_before = listed_jobs(http)
            loader = threading.Thread(target=plant.load, args=(stop,), daemon=True)
            loader.start()
            time.sleep(2.0)  # warm-up
            idle = cpu_share(proc.pid, seconds)
            before = cpu_seconds(proc.pid)
            started = time.perf_counter()
            pages = asyncio.run(with_pages(http, plant, seconds))
            busy = (cpu_seconds(proc.pid) - before) / (time.perf_counter() - started)
            stop.set()
            loader.join(5)
        finally:
            stop.set()
            plant.close()
            proc.terminate()
            proc.wait(30)
    return {
        "tags": TAGS, "jobs_listed_at_start": jobs_before, "tag_changes_per_second":
        CHANGES_PER_SECOND, "jobs_stored_per_second": JOBS_PER_SECOND, "pages": PAGES,
        "seconds": seconds, "runtime_cpu_without_pages": round(idle, 3),
        "runtime_cpu_with_pages": round(busy, 3), "web_cpu_share_of_a_core": round(busy - idle, 3),
        **pages,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--json", type=Path, default=Path("bench/results/bench_web.json"))
    args = parser.parse_args()
    r = run(args.seconds)
    print(f"{r['tags']} tags at {r['tag_changes_per_second']} changes/s, "
          f"{r['jobs_listed_at_start']} jobs (+{r['jobs_stored_per_second']}/s), "
          f"{r['pages']} pages (half tags, half jobs)")  # fmt: skip
    print(f"{'page':<8}{'changes':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name in ("tags", "jobs"):
        row = r[f"{name}_page"]
        print(f"{name:<8}{row['changes']:>10}{row.get('p50_ms', '-'):>9}"
              f"{row.get('p99_ms', '-'):>9}{row.get('max_ms', '-'):>9}")  # fmt: skip
    print(f"updates per page per second: {r['updates_per_page_per_second']}")
    print(f"runtime CPU (share of a core): {r['runtime_cpu_without_pages']:.1%} without "
          f"pages, {r['runtime_cpu_with_pages']:.1%} with them: web part "
          f"{r['web_cpu_share_of_a_core']:.1%}")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(r, indent=2) + "\n")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
