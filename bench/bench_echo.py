"""Echo throughput: the microdcs greeting processor vs a bare aiomqtt echo loop.

Both servers run in their own process against the same local Mosquitto (and Redis, which
microdcs uses for dedupe), driven by the same load generator process with a fixed number
of requests in flight. Every request must get its response: lost responses are counted.
Also reports the RSS of an idle runtime.

    python bench/bench_echo.py [--seconds 10] [--inflight 64] [--json OUT]
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

from microdcs.devstack import LocalMosquitto, LocalRedis
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient

GREETING_TYPE = "com.github.aschamberger.microdcs.greeting.v1"

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


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def load(port: int, topic: str, seconds: float, inflight: int) -> dict[str, float]:
    """Keep ``inflight`` requests outstanding for ``seconds``; measure each round trip.

    Uses microdcs's lean MQTT client so the generator is not the bottleneck; both servers
    face the same generator.
    """
    loop = asyncio.get_running_loop()
    response_topic = f"bench/responses/{uuid.uuid4().hex}"
    waiting: dict[bytes, tuple[float, asyncio.Future[None]]] = {}
    latencies: list[float] = []
    lost = 0

    def on_message(message: codec.Publish) -> None:
        entry = waiting.pop(message.correlation_data or b"", None)
        if entry is not None:
            latencies.append(time.perf_counter() - entry[0])
            if not entry[1].done():
                entry[1].set_result(None)
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
    static = [("specversion", "1.0"), ("source", "bench/mes"), ("type", GREETING_TYPE)]
    run_id = uuid.uuid4().hex[:8]
    counter = iter(range(1 << 62))

    async def requester(deadline: float) -> None:
        nonlocal lost
        while time.perf_counter() < deadline:
            n = next(counter)
            key = n.to_bytes(8, "big")
            props = codec.encode_publish_properties(
                payload_format=1,
                content_type="application/json",
                response_topic=response_topic,
                correlation_data=key,
                user_properties=[("id", f"{run_id}-{n}"), *static],
            )
            done: asyncio.Future[None] = loop.create_future()
            waiting[key] = (time.perf_counter(), done)
            client.publish(topic, b'{"name": "bench"}', props, qos=1)
            timer = loop.call_later(10, done.cancel)
            try:
                await done
            except asyncio.CancelledError:
                waiting.pop(key, None)
                lost += 1
            finally:
                timer.cancel()

    # warm-up, not measured
    await asyncio.gather(*(requester(time.perf_counter() + 1.0) for _ in range(inflight)))
    latencies.clear()
    started = time.perf_counter()
    await asyncio.gather(*(requester(started + seconds) for _ in range(inflight)))
    elapsed = time.perf_counter() - started
    await client.disconnect()
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "lost": lost,
        "rps": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else float("nan"),
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
    }


def run_load(port: int, topic: str, seconds: float, inflight: int) -> dict[str, float]:
    """The load generator in its own process, so it does not share the server's core."""
    here = str(Path(__file__).parent)
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import bench_echo as b; "
        f"import uvloop; print(json.dumps(uvloop.run(b.load({port}, {topic!r}, {seconds}, "
        f"{inflight}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def start_runtime(broker: int, redis: int, env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        APP_MQTT_HOSTNAME="127.0.0.1",
        APP_MQTT_PORT=str(broker),
        APP_REDIS_HOSTNAME="127.0.0.1",
        APP_REDIS_PORT=str(redis),
        APP_INSTANCE_ID=f"bench-{uuid.uuid4().hex[:6]}",
        APP_REDIS_KEY_PREFIX=f"bench{uuid.uuid4().hex[:6]}",
        APP_LOG_LEVEL="WARNING",
        **env_extra,
    )
    return subprocess.Popen([sys.executable, "-m", "microdcs.cli", "run"], env=env)


def wait_ready(port: int, topic: str) -> None:
    """Until one request gets its response (the server subscribed)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            result = run_load(port, topic, 0.2, 1)
            if result["requests"] > 0:
                return
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not answer")


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
