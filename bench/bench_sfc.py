"""SFC engine throughput with 1 and 3 replicas, and recovery from a killed replica.

Throughput: 200 jobs of a 10-step recipe (one push_command per step) run against the
equipment simulator at 0 ms delay. Every server runs in its own process against one
local Mosquitto and Redis; the MES here only configures, starts the jobs and counts Ended
events. Steps/s = jobs x steps / (first StoreAndStart -> last job Ended). Each replica
count runs with the default settings (step progress events on) and again with
``APP_SFC_STEP_EVENTS=false``: the events are one more message per stored change for the
broker and the MES, which share the two cores, so only the second figure compares with
runs from before step events existed. Each run also prints the CPU per step of the
replicas, the simulator and this load generator (``/proc`` times over the same interval),
and the replicas' context switches per step: on two cores the load generator's CPU is
taken from the runtime's, so a rate alone does not say whose cost an extra message is.

Failover: 3 replicas with default settings, the simulator answering after 1 s. The
replica that sent a job's first command is killed (SIGKILL); measured is the time until
the next step's command goes out, i.e. until another replica finished the killed
replica's action (the 1 s equipment delay included).

    python bench/bench_sfc.py [--jobs 200] [--steps 10] [--replicas 1 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from loadgen import context_switches, cpu_seconds
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microdcs.app.devstack import LocalMosquitto, LocalRedis
from microdcs.jobs.contract import SFC_RECIPE_SCHEMA

JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"
CFG = "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.workmaster.v1"
QUERY = "org.opcfoundation.Machinery.Jobs.RequestJobResponseByJobOrderID.v1"
OK = 1  # ReturnStatus of an accepted job method call (OPC 10031-4)
#: The settings of the rows that compare with runs from before step events existed.
WITHOUT_STEP_EVENTS = {"APP_SFC_STEP_EVENTS": "false"}


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


async def until_answering(mes: aiomqtt.Client, commands: str, responses: str) -> None:
    """Query until a replica answers: the runtimes are up and subscribed."""
    while True:
        await mes.publish(
            commands, b'{"JobOrderID": "x"}', qos=1, properties=props(QUERY, responses)
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                async for _ in mes.messages:
                    return


@dataclass(frozen=True)
class Run:
    """One measured run: its rate, and the CPU each part used per step while it ran."""

    steps_per_second: float
    #: CPU microseconds per step, first StoreAndStart to last Ended: all replicas together,
    #: the equipment simulator, and this load generator (the paho MES).
    replicas_us: float
    simulator_us: float
    mes_us: float
    #: The replicas' context switches per step (summed): waits, and preemptions.
    voluntary_switches: float
    involuntary_switches: float

    def cpu(self) -> str:
        return (f"CPU per step: replicas {self.replicas_us:.0f} µs, simulator "
                f"{self.simulator_us:.0f} µs, the paho MES {self.mes_us:.0f} µs; replicas' "
                f"context switches per step: {self.voluntary_switches:.2f} voluntary, "
                f"{self.involuntary_switches:.2f} involuntary")  # fmt: skip


def counters(replicas: list[int], simulator: int) -> tuple[float, ...]:
    """What a run is measured by, so far: CPU seconds of the replicas (summed), of the
    simulator and of this process, and the replicas' voluntary and involuntary switches."""
    switches = [context_switches(pid) for pid in replicas]
    return (sum(cpu_seconds(pid) for pid in replicas), cpu_seconds(simulator),
            time.process_time(), sum(v for v, _ in switches),
            sum(i for _, i in switches))  # fmt: skip


async def run_jobs(
    port: int, prefix: str, jobs: int, steps: int, replicas: list[int], simulator: int
) -> Run:
    """Configure, start ``jobs`` jobs, measure until the last one Ended."""
    commands, responses = f"{prefix}/bench/commands", f"bench/{uuid.uuid4().hex}/r"
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as mes:
        await mes.subscribe(responses, qos=1)
        await mes.subscribe(f"{prefix}/bench/events", qos=1)
        await until_answering(mes, commands, responses)
        wm = {"ID": "WM", "data": recipe(steps), "dataschema": SFC_RECIPE_SCHEMA}
        await mes.publish(commands, orjson.dumps(wm), qos=1, properties=props(CFG))
        # Every job at once: the station dispatcher's default is one running job.
        await mes.publish(commands, b'{"max_running_jobs": 0}', qos=1,
                          properties=props(CFG.replace("workmaster", "dispatch")))  # fmt: skip
        await asyncio.sleep(0.5)  # configuration has no response
        start = time.perf_counter()
        at_start = counters(replicas, simulator)
        stores: set[bytes] = set()  # correlation data of our StoreAndStart requests
        for i in range(jobs):
            order = {"JobOrder": {"JobOrderID": f"J{i}", "WorkMasterID": [{"ID": "WM"}]}}
            properties = props(f"{JC}.StoreAndStart.v2", responses)
            stores.add(properties.CorrelationData)
            await mes.publish(commands, orjson.dumps(order), qos=1, properties=properties)
        ended: set[str] = set()
        async with asyncio.timeout(120):
            async for message in mes.messages:
                if str(message.topic) == responses:
                    refused(message, stores)
                    continue
                if b'"JobState"' not in message.payload:  # type: ignore[operator]
                    continue  # a step progress event
                data = orjson.loads(message.payload)  # type: ignore[arg-type]
                if data["JobState"][0]["StateNumber"] in (5, 6):
                    ended.add(data["JobOrder"]["JobOrderID"])
                    if data["JobState"][0]["StateNumber"] == 6:
                        print("aborted:", data.get("JobResponse"), file=sys.stderr)
                    if len(ended) == jobs:
                        break
        seconds = time.perf_counter() - start
        used = [b - a for a, b in zip(at_start, counters(replicas, simulator), strict=True)]
    cpu, switches = used[:3], used[3:]
    per_step = [1e6 * used_seconds / (jobs * steps) for used_seconds in cpu]
    return Run(jobs * steps / seconds, *per_step, *(n / (jobs * steps) for n in switches))


def refused(message: aiomqtt.Message, stores: set[bytes]) -> None:
    """Stop the run at the first StoreAndStart the runtime refused: its job never ends, so
    waiting for every Ended event would only run into the timeout."""
    correlation = getattr(message.properties, "CorrelationData", None)
    if correlation not in stores:
        return  # the start-up query's answer
    status = orjson.loads(message.payload).get("ReturnStatus")  # type: ignore[arg-type]
    if status != OK:
        raise RuntimeError(f"a StoreAndStart was refused (ReturnStatus {status})")


def bench_env(broker: int, redis: int) -> dict[str, str]:
    # No job list limit: beyond the default 1000 jobs per scope a StoreAndStart is refused,
    # and a run with --jobs above it would wait for Ended events that never come.
    return dict(os.environ, APP_MQTT_HOSTNAME="127.0.0.1", APP_MQTT_PORT=str(broker),
                APP_REDIS_HOSTNAME="127.0.0.1", APP_REDIS_PORT=str(redis),
                APP_LOG_LEVEL="WARNING", APP_JOBS_TOPIC_PREFIX="bench/jobs",
                APP_EQUIPMENT_TOPIC_PREFIX="bench/eq", APP_HTTP_PORT="0",
                APP_JOBS_MAX_DOWNLOADABLE="0")  # fmt: skip


async def kill_sender(port: int, replicas: dict[str, subprocess.Popen[bytes]]) -> float:
    """Start one job, SIGKILL the replica that sent its first command, time the recovery."""
    commands, responses = "bench/jobs/bench/commands", f"bench/{uuid.uuid4().hex}/r"
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as mes:
        await mes.subscribe(responses, qos=1)
        await mes.subscribe("bench/eq/bench/commands", qos=1)
        await until_answering(mes, commands, responses)
        wm = {"ID": "WM", "data": recipe(3), "dataschema": SFC_RECIPE_SCHEMA}
        await mes.publish(commands, orjson.dumps(wm), qos=1, properties=props(CFG))
        await asyncio.sleep(0.5)
        order = {"JobOrder": {"JobOrderID": "F1", "WorkMasterID": [{"ID": "WM"}]}}
        await mes.publish(commands, orjson.dumps(order), qos=1,
                          properties=props(f"{JC}.StoreAndStart.v2", responses))  # fmt: skip
        first: str | None = None
        killed_at = 0.0
        async with asyncio.timeout(60):
            async for message in mes.messages:
                if not str(message.topic).startswith("bench/eq/"):
                    continue
                attributes = dict(message.properties.UserProperty)  # type: ignore[union-attr]
                if first is None:
                    first = attributes["correlationid"]
                    sender = attributes["source"].removeprefix("microdcs/")
                    replicas[sender].send_signal(signal.SIGKILL)
                    killed_at = time.perf_counter()
                elif attributes["correlationid"] != first:
                    return time.perf_counter() - killed_at
    raise RuntimeError("no recovery")


def measure_failover() -> float:
    with tempfile.TemporaryDirectory() as tmp, LocalMosquitto(Path(tmp) / "m") as broker, \
            LocalRedis(Path(tmp) / "r", appendonly=False) as redis:  # fmt: skip
        env = bench_env(broker.port, redis.port)
        cli = [sys.executable, "-m", "microdcs.app.cli"]
        simulator = subprocess.Popen([*cli, "simulate-equipment", "--delay-ms", "1000"], env=env)
        replicas = {
            f"bench-{n}": subprocess.Popen(
                [*cli, "run"], env=dict(env, APP_INSTANCE_ID=f"bench-{n}")
            )
            for n in range(3)
        }
        try:
            return asyncio.run(kill_sender(broker.port, replicas))
        finally:
            for p in (simulator, *replicas.values()):
                if p.poll() is None:
                    p.terminate()
            for p in (simulator, *replicas.values()):
                p.wait(30)


def measure(replicas: int, jobs: int, steps: int, extra: dict[str, str] | None = None) -> Run:
    with tempfile.TemporaryDirectory() as tmp, LocalMosquitto(Path(tmp) / "m") as broker, \
            LocalRedis(Path(tmp) / "r", appendonly=False) as redis:  # fmt: skip
        env = dict(bench_env(broker.port, redis.port), **(extra or {}))
        cli = [sys.executable, "-m", "microdcs.app.cli"]
        procs = [subprocess.Popen([*cli, "simulate-equipment", "--delay-ms", "0"], env=env)]
        procs += [
            subprocess.Popen([*cli, "run"], env=dict(env, APP_INSTANCE_ID=f"bench-{n}"))
            for n in range(replicas)
        ]
        try:
            pids = [p.pid for p in procs]
            return asyncio.run(run_jobs(broker.port, "bench/jobs", jobs, steps, pids[1:], pids[0]))
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--step-events", type=int, default=0, metavar="ROUNDS",
                        help="only compare 1 replica without and with step progress events "
                        "(QoS 0 and 1), ROUNDS interleaved runs each (medians)")  # fmt: skip
    args = parser.parse_args()
    if args.step_events:
        return compare_step_events(args.step_events, args.jobs, args.steps)
    results: dict[str, float] = {}
    for n in args.replicas:
        with_events = measure(n, args.jobs, args.steps)
        without = measure(n, args.jobs, args.steps, WITHOUT_STEP_EVENTS)
        for run, suffix in ((with_events, ""), (without, "_without_step_events")):
            results[f"{n}_replicas_steps_per_second{suffix}"] = round(run.steps_per_second)
            results[f"{n}_replicas_cpu_us_per_step{suffix}"] = round(run.replicas_us)
            results[f"{n}_replicas_simulator_cpu_us_per_step{suffix}"] = round(run.simulator_us)
            results[f"{n}_replicas_mes_cpu_us_per_step{suffix}"] = round(run.mes_us)
            results[f"{n}_replicas_voluntary_switches_per_step{suffix}"] = round(
                run.voluntary_switches, 2
            )
            results[f"{n}_replicas_involuntary_switches_per_step{suffix}"] = round(
                run.involuntary_switches, 2
            )
        print(f"{n} replica(s), {args.jobs} jobs x {args.steps} steps:\n"
              f"  with step events    {with_events.steps_per_second:5.0f} SFC steps/s; "
              f"{with_events.cpu()}\n"
              f"  without step events {without.steps_per_second:5.0f} SFC steps/s; "
              f"{without.cpu()}")  # fmt: skip
    recovery = measure_failover()
    results["failover_seconds_incl_1s_equipment_delay"] = round(recovery, 2)
    print(f"SIGKILL of the sending replica -> its action finished by another: {recovery:.2f} s "
          "(includes the simulator's 1.0 s answer delay)")  # fmt: skip
    out = Path(__file__).parent / "results" / "sfc.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def compare_step_events(rounds: int, jobs: int, steps: int) -> int:
    """Step events off, on (at the default QoS 0) and on at QoS 1, interleaved in the same
    run (same machine load)."""
    configs = {
        "off": WITHOUT_STEP_EVENTS,
        "on": {"APP_SFC_STEP_EVENTS": "true"},
        "on, QoS 1": {"APP_SFC_STEP_EVENTS": "true", "APP_SFC_STEP_EVENTS_QOS": "1"},
        "on, every state": {
            "APP_SFC_STEP_EVENTS": "true",
            "APP_SFC_STEP_STATE_INTERVAL_SECONDS": "0",
        },
    }
    rates: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, extra in configs.items():
            run = measure(1, jobs, steps, extra)
            rates[name].append(run.steps_per_second)
            print(f"step events {name:15}: {run.steps_per_second:.0f} SFC steps/s; {run.cpu()}")
    off = statistics.median(rates["off"])
    print(f"median: {off:.0f} steps/s without step events", end="")
    for name in list(configs)[1:]:
        on = statistics.median(rates[name])
        print(f", {on:.0f} {name} ({(on - off) / off:+.1%})", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
