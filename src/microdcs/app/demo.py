"""``microdcs demo``: broker + Redis + runtime + equipment simulator + a demo MES client.

Everything is started as child processes in ``.run/`` and stopped on Ctrl-C, so ``make
run`` works on a fresh machine with nothing configured. The MES client configures a work
master with an SFC recipe, stores and starts jobs, and prints every state change. The
dryer of the simulated line reports three tags (its temperature, humidity and whether the
saw runs) as plant data events twice a second; the temperature swings through its high
and high-high alarm limits, and every alarm transition is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microdcs.app.devstack import LocalMosquitto, LocalRedis, free_port, wait_for_port
from microdcs.jobs.contract import SFC_RECIPE_SCHEMA
from microdcs.web.passwords import hash_password

JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"
WORK_MASTER_CONFIG = "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.workmaster.v1"
DRIED = "com.example.wood.dried.v1"
SCOPE = "woodworking"
DATA = "com.github.aschamberger.microdcs.tag.data.v1"
#: The dryer's tags and alarms (written to the start-up files of the runtime).
TAGS: list[dict[str, Any]] = [
    {"Name": "dryer.temp", "DataType": "float", "Unit": "degC", "Deadband": 0.2,
     "StaleTimeout": 10, "Description": "Dryer air temperature"},
    {"Name": "dryer.humidity", "DataType": "float", "Unit": "%", "Deadband": 0.5,
     "StaleTimeout": 10, "Description": "Dryer relative humidity"},
    {"Name": "saw.running", "DataType": "bool", "Description": "The saw is cutting"},
]  # fmt: skip
ALARMS: list[dict[str, Any]] = [
    {"ID": "dryer.temp.H", "Tag": "dryer.temp", "Kind": "H", "Setpoint": 80, "Deadband": 2,
     "OnDelay": 1, "Priority": "high", "Group": "dryer", "Message": "Dryer temperature high"},
    {"ID": "dryer.temp.HH", "Tag": "dryer.temp", "Kind": "HH", "Setpoint": 90, "Deadband": 2,
     "Priority": "critical", "Group": "dryer", "Message": "Dryer overheating"},
]  # fmt: skip


def _action(name: str, step: str, type_id: str, **extra: Any) -> dict[str, Any]:
    return {"Name": name, "Step": step, "Qualifier": extra.pop("Qualifier", "N"),
            "Interaction": extra.pop("Interaction", "push_command"), "TypeId": type_id,
            **extra}  # fmt: skip


#: Cut a board, drill and sand it at once, wait until the equipment says it is dry.
RECIPE: dict[str, Any] = {
    "Steps": [{"Name": "Cut", "Initial": True}, {"Name": "Drill"}, {"Name": "Sand"},
              {"Name": "Dry"}],
    "Actions": [
        _action("cut", "Cut", "com.example.cut.v1", Parameters={"Result": {"Length": 120}}),
        _action("drill", "Drill", "com.example.drill.v1", TimeoutSeconds=10),
        _action("sand", "Sand", "com.example.sand.v1", TimeoutSeconds=10),
        _action("dry", "Dry", DRIED, Interaction="pull_event"),
    ],
    "Branches": [{"Name": "Finish", "Type": "simultaneous", "Branches": [["Drill"], ["Sand"]]}],
    "Transitions": [{"Source": "Cut", "Target": "Finish", "Condition": "done"},
                    {"Source": "Finish", "Target": "Dry", "Condition": "done"}],
}  # fmt: skip


def _port_or_free(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def _properties(ce_type: str, response_topic: str | None = None) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = [("specversion", "1.0"), ("id", str(uuid.uuid4())),
                          ("source", "demo/mes"), ("type", ce_type)]  # fmt: skip
    props.ContentType = "application/json"
    if response_topic:
        props.ResponseTopic = response_topic
        props.CorrelationData = uuid.uuid4().bytes
    return props


def _state(data: dict[str, Any]) -> str:
    return "/".join(s["StateText"]["Text"] for s in data.get("JobState", []))


async def recipe_client(port: int, prefix: str, stop: asyncio.Event) -> None:
    """Play an MES: configure the recipe, then run one job after another until Ctrl-C."""
    base = f"{prefix}/{SCOPE}"
    responses = f"demo/{uuid.uuid4().hex[:8]}/responses"
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(responses, qos=1)
        await client.subscribe(f"{base}/events", qos=1)
        await _wait_for_runtime(client, f"{base}/commands", responses, stop)
        work_master = {"ID": "WM-BOARD", "data": RECIPE, "dataschema": SFC_RECIPE_SCHEMA}
        await client.publish(f"{base}/commands", orjson.dumps(work_master), qos=1,
                             properties=_properties(WORK_MASTER_CONFIG))  # fmt: skip
        print("[mes] configured work master WM-BOARD with a 4-step SFC recipe", flush=True)
        messages = client.messages
        # Redis keeps its data across `make run`s: job ids of this run must be new ones.
        run = time.strftime("%H%M%S")
        n = 0
        while not stop.is_set():
            n += 1
            job = f"BOARD-{run}-{n}"
            order = {"JobOrder": {"JobOrderID": job, "WorkMasterID": [{"ID": "WM-BOARD"}]}}
            props = _properties(f"{JC}.StoreAndStart.v2", responses)
            await client.publish(f"{base}/commands", orjson.dumps(order), qos=1, properties=props)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await _follow(messages, job, responses, stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)


async def _wait_for_runtime(
    client: aiomqtt.Client, commands: str, responses: str, stop: asyncio.Event
) -> None:
    """Ask until the runtime answers: it may still be connecting and subscribing."""
    query = orjson.dumps({"JobOrderID": "none"})
    ce_type = "org.opcfoundation.Machinery.Jobs.RequestJobResponseByJobOrderID.v1"
    while not stop.is_set():
        await client.publish(commands, query, qos=1, properties=_properties(ce_type, responses))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                async for _ in client.messages:
                    return


async def _follow(messages: Any, job: str, responses: str, stop: asyncio.Event) -> None:
    """Print the job's state changes until it has ended or aborted."""
    async for message in messages:
        data = orjson.loads(message.payload)
        if str(message.topic) == responses:
            status = data.get("ReturnStatus")
            print(f"[mes] StoreAndStart {job}: ReturnStatus {status}", flush=True)
            if status != 1:  # not OK (ReturnStatus bits, jobs.md): refused, nothing to follow
                return
            continue
        if "Steps" in data and data.get("JobOrderID") == job:  # a step progress event
            for entry in data["Steps"]:
                if entry["Kind"] in ("step_entered", "step_exited"):
                    print(f"[mes] job {job}: step {entry['Step']} {entry['Kind'][5:]}",
                          flush=True)  # fmt: skip
            continue
        if data.get("JobOrder", {}).get("JobOrderID") != job:
            continue
        state = _state(data)
        print(f"[mes] {job}: {state}", flush=True)
        if state.startswith(("Ended", "Aborted")) or stop.is_set():
            results = (data.get("JobResponse") or {}).get("JobResponseData") or []
            print(f"[mes] {job} results: {orjson.dumps(results).decode()}", flush=True)
            return


def dryer_sample(t: float) -> list[dict[str, Any]]:
    """The dryer at ``t`` seconds: 40 s temperature cycles from 62 to 94 degC."""
    temp = 78.0 + 16.0 * math.sin(2 * math.pi * t / 40.0)
    humidity = 30.0 - 0.4 * (temp - 78.0)
    return [
        {"Tag": "dryer.temp", "Value": round(temp, 2)},
        {"Tag": "dryer.humidity", "Value": round(humidity, 1)},
        {"Tag": "saw.running", "Value": int(t) % 20 < 12},
    ]


async def plant_client(
    port: int, plant_prefix: str, alarm_prefix: str, stop: asyncio.Event
) -> None:
    """Play the dryer's data feed and print every alarm transition."""
    data_topic = f"{plant_prefix}/{SCOPE}/data"
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(f"{alarm_prefix}/{SCOPE}/events", qos=1)
        start = time.monotonic()

        async def feed() -> None:
            while not stop.is_set():
                payload = orjson.dumps({"Samples": dryer_sample(time.monotonic() - start)})
                await client.publish(data_topic, payload, qos=1, properties=_properties(DATA))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)

        async def alarms() -> None:
            async for message in client.messages:
                event = orjson.loads(message.payload)
                value = event.get("Value")
                print(f"[alarm] {event.get('Alarm')} {event.get('Event')} -> "
                      f"{event.get('State')} ({event.get('Priority')}, value {value}): "
                      f"{event.get('Message', '')}", flush=True)  # fmt: skip

        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(alarms())
            await feed()
            watcher.cancel()


async def demo_clients(port: int, stop: asyncio.Event) -> None:
    """The MES and the dryer's data feed, until Ctrl-C."""
    async with asyncio.TaskGroup() as group:
        group.create_task(recipe_client(port, "app/jobs", stop))
        group.create_task(plant_client(port, "app/plant", "app/alarms", stop))


#: The demo's web users (name, role, password): for a demo on a laptop, never a plant.
DEMO_USERS = (("operator", "operator", "demo-operator"), ("viewer", "viewer", "demo-viewer"))


def _start_up_files(workdir: Path) -> dict[str, str]:
    """The dryer's tags and alarms and the web users as the runtime's start-up files."""
    tags, alarms, users = workdir / "tags.json", workdir / "alarms.json", workdir / "users.json"
    tags.write_bytes(orjson.dumps({SCOPE: TAGS}, option=orjson.OPT_INDENT_2))
    alarms.write_bytes(orjson.dumps({SCOPE: ALARMS}, option=orjson.OPT_INDENT_2))
    if not users.exists():  # hashing takes a moment: once per work directory
        entries = [{"name": name, "role": role, "password_hash": hash_password(password)}
                   for name, role, password in DEMO_USERS]  # fmt: skip
        users.write_bytes(orjson.dumps(entries, option=orjson.OPT_INDENT_2))
    return {
        "APP_PLANT_TAGS_FILE": str(tags),
        "APP_ALARMS_FILE": str(alarms),
        "APP_WEB_USERS_FILE": str(users),
    }


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Out of the terminal's process group: Ctrl-C reaches only the demo, which then stops
    # runtime, simulator, Redis and broker in order (the runtime drains while the broker
    # is still up).
    return subprocess.Popen(
        [sys.executable, "-m", "microdcs.app.cli", *args], env=env, start_new_session=True
    )


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
        APP_HTTP_PORT=str(_port_or_free(int(env.get("APP_HTTP_PORT", "8080")))),
        **_start_up_files(workdir),
    )
    url = f"http://127.0.0.1:{env['APP_HTTP_PORT']}"
    print(f"[demo] operator pages on {url}/ (health {url}/healthz, metrics {url}/metrics)")
    print(
        f"[demo] the demo jobs, step by step: {url}/scopes/{SCOPE}/jobs (click a job for its "
        f"recipe chart); alarms {url}/scopes/{SCOPE}/alarms, tags {url}/scopes/{SCOPE}/tags"
    )
    logins = ", ".join(f"{name} / {password}" for name, _, password in DEMO_USERS)
    print(f"[demo] log in as {logins} (demo users, {workdir / 'users.json'})")
    children = [
        _spawn(["run"], env),
        _spawn(["simulate-equipment", "--delay-ms", "800", "--emit", f"{DRIED}:1",
                "--scope", SCOPE], env),
    ]  # fmt: skip
    stop = asyncio.Event()
    try:
        wait_for_port(broker.port)
        loop = asyncio.new_event_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print("[demo] runtime and equipment simulator started; Ctrl-C stops everything")
        print("[demo] plant data: app/plant/woodworking/cvt/+ (retained), alarms: "
              "app/alarms/woodworking/alarms (retained) and .../events")  # fmt: skip
        loop.run_until_complete(demo_clients(broker.port, stop))
        loop.close()
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
        redis.stop()
        broker.stop()
        print("[demo] stopped")
    return 0
