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

from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient

GREETING_TYPE = "com.github.aschamberger.microdcs.greeting.v1"


async def load(
    port: int,
    topic: str,
    seconds: float,
    inflight: int,
    ce_type: str = GREETING_TYPE,
    payload: str = '{{"name": "bench"}}',
) -> dict[str, float]:
    """Keep ``inflight`` requests outstanding for ``seconds``; measure each round trip.

    ``payload`` is a format string; ``{n}`` becomes the request number (unique ids).
    Uses microdcs's lean MQTT client so the generator is not the bottleneck; every
    server measured faces the same generator. Requests that get no response within
    10 s are counted as lost.
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
    static = [("specversion", "1.0"), ("source", "bench/mes"), ("type", ce_type)]
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
            client.publish(topic, payload.format(n=f"{run_id}-{n}").encode(), props, qos=1)
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


def run_load(
    port: int,
    topic: str,
    seconds: float,
    inflight: int,
    ce_type: str = GREETING_TYPE,
    payload: str = '{{"name": "bench"}}',
) -> dict[str, float]:
    """The load generator in its own process, so it does not share the server's core."""
    here = str(Path(__file__).parent)
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import loadgen as g; "
        f"import uvloop; print(json.dumps(uvloop.run(g.load({port}, {topic!r}, {seconds}, "
        f"{inflight}, {ce_type!r}, {payload!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def start_runtime(
    broker: int, redis: int, env_extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``microdcs run`` against the given broker and Redis, isolated by random ids."""
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
        **(env_extra or {}),
    )
    return subprocess.Popen([sys.executable, "-m", "microdcs.cli", "run"], env=env)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_ready(
    port: int, topic: str, ce_type: str = GREETING_TYPE, payload: str = '{{"name": "bench"}}'
) -> None:
    """Until one request gets its response (the server subscribed)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            result = run_load(port, topic, 0.2, 1, ce_type, payload)
            if result["requests"] > 0:
                return
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not answer")
