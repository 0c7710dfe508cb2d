"""``microdcs demo``: local broker + Redis + runtime + a demo MES client, for ``make run``.

Everything is started as child processes in ``.run/`` and stopped on Ctrl-C, so the
demo works on a fresh machine with nothing configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microdcs.devstack import LocalMosquitto, LocalRedis, free_port, wait_for_port
from microdcs.examples.greeting import GREETING_TYPE


def _port_or_free(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


async def greeting_client(port: int, prefix: str, stop: asyncio.Event) -> None:
    """Play an MES: send a greeting request every second and print the response."""
    response_topic = f"demo/{uuid.uuid4().hex[:8]}/responses"
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(response_topic, qos=1)
        n = 0
        while not stop.is_set():
            n += 1
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.UserProperty = [
                ("specversion", "1.0"),
                ("id", str(uuid.uuid4())),
                ("source", "demo/mes"),
                ("type", GREETING_TYPE),
            ]
            props.ContentType = "application/json"
            props.ResponseTopic = response_topic
            props.CorrelationData = str(n).encode()
            await client.publish(
                f"{prefix}/demo/cell1/commands",
                orjson.dumps({"name": f"operator {n}"}),
                qos=1,
                properties=props,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    async for message in client.messages:
                        attrs = dict(message.properties.UserProperty)  # type: ignore[union-attr]
                        print(
                            f"[mes] response #{n}: {message.payload!r} "
                            f"(causationid {attrs.get('causationid')})",
                            flush=True,
                        )
                        break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


def run_demo(workdir: Path) -> int:
    """Start everything, run the demo client until Ctrl-C, stop everything."""
    workdir.mkdir(parents=True, exist_ok=True)
    broker = LocalMosquitto(workdir / "mosquitto", _port_or_free(1883))
    redis = LocalRedis(workdir / "redis", _port_or_free(6379))
    broker.start()
    redis.start()
    print(f"[demo] mosquitto on 127.0.0.1:{broker.port}, redis on 127.0.0.1:{redis.port}")
    env = dict(os.environ)
    env.update(
        APP_MQTT_HOSTNAME="127.0.0.1",
        APP_MQTT_PORT=str(broker.port),
        APP_REDIS_HOSTNAME="127.0.0.1",
        APP_REDIS_PORT=str(redis.port),
        APP_INSTANCE_ID=env.get("APP_INSTANCE_ID", "demo-replica-1"),
    )
    runtime = subprocess.Popen([sys.executable, "-m", "microdcs.cli", "run"], env=env)
    stop = asyncio.Event()
    try:
        wait_for_port(broker.port)
        loop = asyncio.new_event_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print("[demo] runtime started; Ctrl-C stops everything")
        loop.run_until_complete(greeting_client(broker.port, "app/greeting", stop))
        loop.close()
    finally:
        runtime.send_signal(signal.SIGTERM)
        try:
            runtime.wait(20)
        except subprocess.TimeoutExpired:
            runtime.kill()
        redis.stop()
        broker.stop()
        print("[demo] stopped")
    return 0
