"""SFC engine throughput: recipe steps per second with 1 and 3 replicas.

200 jobs of a 10-step recipe (one push_command per step) run against the equipment
simulator at 0 ms delay. Every server runs in its own process against one local
Mosquitto and Redis; the MES here only configures, starts the jobs and counts Ended
events. Steps/s = jobs x steps / (first StoreAndStart -> last job Ended).

    python bench/bench_sfc.py [--jobs 200] [--steps 10] [--replicas 1 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microdcs.devstack import LocalMosquitto, LocalRedis
from microdcs.jobs.startpolicy import SFC_RECIPE_SCHEMA

JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"
CFG = "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.workmaster.v1"
QUERY = "org.opcfoundation.Machinery.Jobs.RequestJobResponseByJobOrderID.v1"


def recipe(steps: int) -> dict[str, Any]:
    names = [f"S{i}" for i in range(steps)]
    return {
        "Steps": [{"Name": n, "Initial": i == 0} for i, n in enumerate(names)],
        "Actions": [{"Name": f"a{i}", "Step": n, "Qualifier": "N", "Interaction": "push_command",
                     "TypeId": "com.example.step.v1"} for i, n in enumerate(names)],
        "Transitions": [{"Source": a, "Target": b} for a, b in itertools.pairwise(names)],
    }  # fmt: skip


def props(ce_type: str, response_topic: str | None = None) -> Properties:
    p = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    p.UserProperty = [("specversion", "1.0"), ("id", str(uuid.uuid4())), ("source", "bench"),
                      ("type", ce_type)]  # fmt: skip
    p.ContentType = "application/json"
    if response_topic:
        p.ResponseTopic = response_topic
        p.CorrelationData = uuid.uuid4().bytes
    return p


async def run_jobs(port: int, prefix: str, jobs: int, steps: int) -> float:
    """Configure, start ``jobs`` jobs, return the seconds until the last one Ended."""
    commands, responses = f"{prefix}/bench/commands", f"bench/{uuid.uuid4().hex}/r"
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as mes:
        await mes.subscribe(responses, qos=1)
        await mes.subscribe(f"{prefix}/bench/events", qos=1)
        while True:  # until the replicas answer
            await mes.publish(
                commands, b'{"JobOrderID": "x"}', qos=1, properties=props(QUERY, responses)
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    async for _ in mes.messages:
                        break
                    break
        wm = {"ID": "WM", "data": recipe(steps), "dataschema": SFC_RECIPE_SCHEMA}
        await mes.publish(commands, orjson.dumps(wm), qos=1, properties=props(CFG))
        await asyncio.sleep(0.5)  # configuration has no response
        start = time.perf_counter()
        for i in range(jobs):
            order = {"JobOrder": {"JobOrderID": f"J{i}", "WorkMasterID": [{"ID": "WM"}]}}
            await mes.publish(commands, orjson.dumps(order), qos=1,
                              properties=props(f"{JC}.StoreAndStart.v2", responses))  # fmt: skip
        ended: set[str] = set()
        async with asyncio.timeout(120):
            async for message in mes.messages:
                if str(message.topic) == responses:
                    continue
                data = orjson.loads(message.payload)  # type: ignore[arg-type]
                if data["JobState"][0]["StateNumber"] in (5, 6):
                    ended.add(data["JobOrder"]["JobOrderID"])
                    if data["JobState"][0]["StateNumber"] == 6:
                        print("aborted:", data.get("JobResponse"), file=sys.stderr)
                    if len(ended) == jobs:
                        break
        return time.perf_counter() - start


def measure(replicas: int, jobs: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, LocalMosquitto(Path(tmp) / "m") as broker, \
            LocalRedis(Path(tmp) / "r", appendonly=False) as redis:  # fmt: skip
        env = dict(os.environ, APP_MQTT_HOSTNAME="127.0.0.1", APP_MQTT_PORT=str(broker.port),
                   APP_REDIS_HOSTNAME="127.0.0.1", APP_REDIS_PORT=str(redis.port),
                   APP_LOG_LEVEL="WARNING", APP_JOBS_TOPIC_PREFIX="bench/jobs",
                   APP_EQUIPMENT_TOPIC_PREFIX="bench/eq")  # fmt: skip
        cli = [sys.executable, "-m", "microdcs.cli"]
        procs = [subprocess.Popen([*cli, "simulate-equipment", "--delay-ms", "0"], env=env)]
        procs += [
            subprocess.Popen([*cli, "run"], env=dict(env, APP_INSTANCE_ID=f"bench-{n}"))
            for n in range(replicas)
        ]
        try:
            seconds = asyncio.run(run_jobs(broker.port, "bench/jobs", jobs, steps))
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
    return jobs * steps / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    results = {}
    for n in args.replicas:
        rate = measure(n, args.jobs, args.steps)
        results[f"{n}_replicas_steps_per_second"] = round(rate)
        print(f"{n} replica(s): {rate:.0f} SFC steps/s ({args.jobs} jobs x {args.steps} steps)")
    out = Path(__file__).parent / "results" / "sfc.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
