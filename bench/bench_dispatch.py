"""The station dispatcher's cost: Store -> Start -> Running latency beside waiting jobs.

One runtime process against a local Mosquitto and Redis; the MES here is a plain aiomqtt
client. Per sample it sends Store, then Start, of a new job into a scope with a free slot
and waits for that job's Running status event; then Stop frees the slot again. Measured
from the Store to the Running event (``Store+Cancel``: two requests that dispatch nothing,
the floor of the others), for a scope

- ``empty``: no other job;
- ``1000 due``: 1,000 AllowedToStart jobs waiting for a StartTime tomorrow;
- ``1000 queued``: 1,000 AllowedToStart jobs waiting for the slot (lower Priority than
  the sample job); the slot is held by the previous sample, so the time includes its Stop,
  which frees the slot, and the decision against the full queue.

    python bench/bench_dispatch.py [--samples 200] [--waiting 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microdcs.app.devstack import LocalMosquitto, LocalRedis

JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"
CFG = "com.github.aschamberger.ISA95-JOBCONTROL_V2.config"
PREFIX = "bench/jobs"


def props(ce_type: str, response_topic: str | None = None, corr: bytes | None = None) -> Any:
    p = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    p.UserProperty = [("specversion", "1.0"), ("id", str(uuid.uuid4())), ("source", "bench"),
                      ("type", ce_type)]  # fmt: skip
    p.ContentType = "application/json"
    if response_topic:
        p.ResponseTopic = response_topic
        p.CorrelationData = corr
    return p


class Mes:
    """Requests with responses matched by Correlation Data; status events by job."""

    def __init__(self, client: aiomqtt.Client, scope: str) -> None:
        self.client = client
        self.commands = f"{PREFIX}/{scope}/commands"
        self.events = f"{PREFIX}/{scope}/events"
        self.responses = f"bench/{uuid.uuid4().hex}/r"
        self.pending: dict[bytes, asyncio.Future[Any]] = {}
        self.running: dict[str, asyncio.Future[float]] = {}

    async def route(self) -> None:
        async for message in self.client.messages:
            data = orjson.loads(message.payload)  # type: ignore[arg-type]
            if str(message.topic) == self.responses:
                corr = message.properties.CorrelationData  # type: ignore[union-attr]
                future = self.pending.pop(corr, None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif data["JobState"][0]["StateNumber"] == 3:
                waiter = self.running.get(data["JobOrder"]["JobOrderID"])
                if waiter is not None and not waiter.done():
                    waiter.set_result(time.perf_counter())

    async def call(self, method: str, data: Any) -> int:
        corr = uuid.uuid4().bytes
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[corr] = future
        properties = props(f"{JC}.{method}.v2", self.responses, corr)
        await self.client.publish(self.commands, orjson.dumps(data), qos=1, properties=properties)
        async with asyncio.timeout(10):
            reply = await future
        return int(reply["ReturnStatus"])

    async def configure(self, kind: str, data: Any) -> None:
        await self.client.publish(self.commands, orjson.dumps(data), qos=1,
                                  properties=props(f"{CFG}.{kind}.v1"))  # fmt: skip


async def scenario(port: int, scope: str, waiting: int, kind: str, samples: int) -> list[float]:
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        # paho leaves Nagle on: without this every request waits for a delayed ACK (40 ms).
        client._client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mes = Mes(client, scope)
        await client.subscribe(mes.responses, qos=1)
        await client.subscribe(mes.events, qos=1)
        router = asyncio.create_task(mes.route())
        try:
            async with asyncio.timeout(30):
                while True:  # until the runtime answers
                    with contextlib.suppress(TimeoutError):
                        await mes.call("Cancel", {"JobOrderID": "nope"})
                        break
            await mes.configure("jobacceptance", {"max_downloadable_job_orders": 0})
            tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
            previous = None
            if kind == "queued":  # the slot is held: each sample waits for the Stop before
                previous = "hold"
                assert await mes.call("StoreAndStart", {"JobOrder": {"JobOrderID": "hold"}}) == 1
            for i in range(waiting):
                order: dict[str, Any] = {"JobOrderID": f"W{i}", "Priority": 100}
                if kind == "due":
                    order["StartTime"] = tomorrow
                assert await mes.call("StoreAndStart", {"JobOrder": order}) == 1
            latencies = []
            for n in range(samples):
                job = f"S{n}"
                mes.running[job] = asyncio.get_running_loop().create_future()
                t0 = time.perf_counter()
                stored = await mes.call("Store", {"JobOrder": {"JobOrderID": job, "Priority": 1}})
                assert stored == 1
                if kind == "baseline":  # two requests, no dispatch: the floor of the others
                    assert await mes.call("Cancel", {"JobOrderID": job}) == 1
                    latencies.append(time.perf_counter() - t0)
                    continue
                assert await mes.call("Start", {"JobOrderID": job}) == 1
                if previous is not None:  # queued: the sample is next; free the slot
                    assert await mes.call("Stop", {"JobOrderID": previous}) == 1
                async with asyncio.timeout(10):
                    t1 = await mes.running.pop(job)
                latencies.append(t1 - t0)
                if kind == "queued":
                    previous = job
                else:
                    assert await mes.call("Stop", {"JobOrderID": job}) == 1
            return latencies
        finally:
            router.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--waiting", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalMosquitto(Path(tmp) / "m") as broker, \
            LocalRedis(Path(tmp) / "r", appendonly=False) as redis:  # fmt: skip
        env = dict(os.environ, APP_MQTT_HOSTNAME="127.0.0.1", APP_MQTT_PORT=str(broker.port),
                   APP_REDIS_HOSTNAME="127.0.0.1", APP_REDIS_PORT=str(redis.port),
                   APP_LOG_LEVEL="WARNING", APP_JOBS_TOPIC_PREFIX=PREFIX, APP_HTTP_PORT="0",
                   APP_INSTANCE_ID="bench-dispatch")  # fmt: skip
        runtime = subprocess.Popen([sys.executable, "-m", "microdcs.app.cli", "run"], env=env)
        try:
            n = args.waiting
            cases = [("Store+Cancel", 0, "baseline"), ("empty", 0, "empty"),
                     (f"{n} due", n, "due"), (f"{n} queued", n, "queued")]  # fmt: skip
            print(f"{'scope':<16}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
            for name, waiting, kind in cases:
                scope = f"{kind}{uuid.uuid4().hex[:4]}"
                lat = asyncio.run(scenario(broker.port, scope, waiting, kind, args.samples))
                ms = sorted(x * 1000 for x in lat)
                q = statistics.quantiles(ms, n=100)
                row = {"p50_ms": round(q[49], 2), "p90_ms": round(q[89], 2),
                       "p99_ms": round(q[98], 2), "max_ms": round(ms[-1], 2),
                       "samples": len(ms)}  # fmt: skip
                results[name] = row
                print(f"{name:<16}{row['p50_ms']:>9}{row['p90_ms']:>9}{row['p99_ms']:>9}"
                      f"{row['max_ms']:>9}")  # fmt: skip
        finally:
            runtime.terminate()
            runtime.wait(30)
    out = Path(__file__).parent / "results" / "dispatch.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"store_start_running_latency": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
