"""Echo throughput: the microdcs greeting processor vs a bare aiomqtt echo loop.

Both servers run in their own process against the same local Mosquitto (and Redis, which
microdcs uses for dedupe), driven by the same load generator process with a fixed number
of requests in flight. Every request must get its response: lost responses are counted.
Also reports the RSS of an idle runtime.

    python bench/bench_echo.py [--seconds 10] [--inflight 64] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadgen import rss_kb, run_load, start_runtime, wait_ready

from microdcs.app.devstack import LocalMosquitto, LocalRedis

BARE_ECHO = r"""
import asyncio, socket, sys, orjson, aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

async def main(port):
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]) as client:
        await client.subscribe("bench/bare/+/commands", qos=1)
        print("ready", flush=True)
        async for message in client.messages:
            request = orjson.loads(message.payload)
            props = Properties(PacketTypes.PUBLISH)
            props.CorrelationData = message.properties.CorrelationData
            props.ContentType = "application/json"
            body = orjson.dumps({"greeting": f"Hello, {request['name']}!", "name": request["name"]})
            await client.publish(message.properties.ResponseTopic, body, qos=1, properties=props)

asyncio.run(main(int(sys.argv[1])))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--json", default="bench/results/bench_echo.json")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalMosquitto(Path(tmp) / "broker") as broker,
        LocalRedis(Path(tmp) / "redis", appendonly=False) as redis,
    ):
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE_ECHO, str(broker.port)], stdout=subprocess.PIPE
        )
        try:
            assert bare.stdout is not None
            bare.stdout.readline()
            topic = "bench/bare/cell/commands"
            wait_ready(broker.port, topic)
            results["bare aiomqtt echo"] = run_load(broker.port, topic, args.seconds, args.inflight)
        finally:
            bare.terminate()
            bare.wait()

        for label, extra in (
            ("microdcs greeting (dedupe on)", {}),
            ("microdcs greeting (dedupe off)", {"APP_DEDUPE_ENABLED": "false"}),
        ):
            runtime = start_runtime(broker.port, redis.port, extra)
            try:
                topic = "app/greeting/cell/commands"
                wait_ready(broker.port, topic)
                time.sleep(1.0)
                idle_rss_mb = rss_kb(runtime.pid) / 1024
                results[label] = run_load(broker.port, topic, args.seconds, args.inflight)
                results[label]["idle_rss_mb"] = idle_rss_mb
            finally:
                runtime.terminate()
                runtime.wait()

    print(f"\nEcho request/response, {args.inflight} in flight, {args.seconds:.0f} s each")
    print(f"{'server':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6}")
    for name, r in results.items():
        print(
            f"{name:34} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {int(r['lost']):6d}"
        )
    print(f"idle runtime RSS: {idle_rss_mb:.1f} MB")
    bare_rps = results["bare aiomqtt echo"]["rps"]
    ours = results["microdcs greeting (dedupe on)"]
    print(f"microdcs / bare throughput: {ours['rps'] / bare_rps:.2f}x")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {"inflight": args.inflight, "seconds": args.seconds, "results": results}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
