"""Plant data at line rate: samples into the current value table with alarm evaluation.

1,000 float tags and 200 high alarms (on the first 200 tags) in one scope, configured by
the start-up files; data events of 10 samples each published by a paho client (QoS 1, a
thread of its own) to real Mosquitto; one ``microdcs run`` (then two) against real Redis.

- **throughput**: EVENTS data events sent as fast as the client can (values below every
  setpoint: no alarms), timed from the first publish until the runtime's counter of
  stored samples reached all of them; runtime CPU per sample from ``/proc``;
- **latency**: at half that rate, every tenth event also moves one alarmed tag across its
  setpoint (up, then back down), and each alarm event on ``app/alarms/{scope}/events`` is
  matched with the data event that caused it: p50 / p99 from publish to alarm event;
- **memory**: ``MEMORY USAGE`` of the plant data keys per tag (definitions, specs, values,
  stale deadlines), of the alarm keys per alarm, of a dedupe record per data event, and
  Redis ``used_memory`` growth over the run per tag (everything, dedupe records included);
- **2 replicas**: the throughput phase again with two runtimes sharing the subscription.

    python bench/bench_tags.py [--events 20000] [--json bench/results/bench_tags.json]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import redis
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import cpu_seconds

from microdcs.app.devstack import LocalMosquitto, LocalRedis, free_port

SCOPE = "line1"
TAGS = 1000
ALARMS = 200
SAMPLES_PER_EVENT = 10
SETPOINT = 50.0
DATA_TYPE = "com.github.aschamberger.microdcs.tag.data.v1"
PLANT_PREFIX, ALARM_PREFIX = "bench/plant", "bench/alarms"
STORED_METRIC = "microdcs_plant_samples_stored_total"


def tag(n: int) -> str:
    return f"TI-{n:04d}"


def write_files(directory: Path) -> tuple[Path, Path]:
    tags = [{"Name": tag(n), "DataType": "float", "Unit": "degC"} for n in range(TAGS)]
    alarms = [
        {"ID": f"{tag(n)}.H", "Tag": tag(n), "Kind": "H", "Setpoint": SETPOINT, "Deadband": 1,
         "Priority": "high", "Message": f"{tag(n)} high"}
        for n in range(ALARMS)
    ]  # fmt: skip
    tags_file, alarms_file = directory / "tags.json", directory / "alarms.json"
    tags_file.write_bytes(orjson.dumps({SCOPE: tags}))
    alarms_file.write_bytes(orjson.dumps({SCOPE: alarms}))
    return tags_file, alarms_file


def start_runtime(
    broker: int, redis_port: int, files: tuple[Path, Path], http: int, key_prefix: str
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        APP_MQTT_HOSTNAME="127.0.0.1", APP_MQTT_PORT=str(broker),
        APP_REDIS_HOSTNAME="127.0.0.1", APP_REDIS_PORT=str(redis_port),
        APP_REDIS_KEY_PREFIX=key_prefix, APP_MQTT_SHARED_SUBSCRIPTION=key_prefix,
        APP_INSTANCE_ID=f"bench-tags-{uuid.uuid4().hex[:6]}", APP_LOG_LEVEL="WARNING",
        APP_HTTP_PORT=str(http), APP_PLANT_TOPIC_PREFIX=PLANT_PREFIX,
        APP_ALARMS_TOPIC_PREFIX=ALARM_PREFIX, APP_PLANT_TAGS_FILE=str(files[0]),
        APP_ALARMS_FILE=str(files[1]), APP_GREETING_ENABLED="false",
    )  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "microdcs.app.cli", "run"], env=env)


def stored(ports: list[int]) -> float:
    """The replicas' stored-samples counters, summed (each counts what it stored)."""
    total = 0.0
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            for line in page.read().decode().splitlines():
                if line.startswith(STORED_METRIC):
                    total += float(line.rsplit(" ", 1)[1])
    return total


class Publisher:
    """A paho client in its own thread: publishes never wait for their PUBACK."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-tags-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.received: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        # Nagle off, as the runtime and the shipped broker config have it: small publishes
        # would otherwise wait for the broker's delayed ACK (tens of ms).
        sock = self.client.socket()
        assert isinstance(sock, socket.socket)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        self.topic = f"{PLANT_PREFIX}/{SCOPE}/data"

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.received.put((time.perf_counter(), orjson.loads(message.payload)))

    def watch(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)

    def send(self, samples: list[dict[str, Any]]) -> None:
        now = time.time()  # stamped when sent: the table refuses samples older than it holds
        samples = [{**sample, "Timestamp": now} for sample in samples]
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = "application/json"
        props.UserProperty = [("specversion", "1.0"), ("id", uuid.uuid4().hex),
                              ("source", "bench/tags"), ("type", DATA_TYPE)]  # fmt: skip
        self.client.publish(self.topic, orjson.dumps({"Samples": samples}), 1, properties=props)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


#: The next data event's number: every tag's value differs from its previous one.
_cursor = [0]


def events(count: int) -> list[list[dict[str, Any]]]:
    """``count`` data events below every setpoint, each value different from the last."""
    now = time.time()
    out = []
    start = _cursor[0]
    _cursor[0] += count
    for e in range(start, start + count):
        base = e * SAMPLES_PER_EVENT
        out.append([
            {"Tag": tag((base + i) % TAGS), "Value": float((base + i) // TAGS % 40),
             "Timestamp": now}
            for i in range(SAMPLES_PER_EVENT)
        ])  # fmt: skip
    return out


def until_stored(ports: list[int], target: float, timeout: float = 120.0) -> float:
    deadline = time.perf_counter() + timeout
    while True:
        done = stored(ports)
        if done >= target:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {done:.0f} of {target:.0f} samples stored")
        time.sleep(0.02)


def throughput(pub: Publisher, ports: list[int], pids: list[int], count: int) -> dict[str, Any]:
    before = stored(ports)
    batch = events(count)
    cpu = sum(cpu_seconds(p) for p in pids)
    start = time.perf_counter()
    for samples in batch:
        pub.send(samples)
    end = until_stored(ports, before + count * SAMPLES_PER_EVENT)
    cpu = sum(cpu_seconds(p) for p in pids) - cpu
    samples = count * SAMPLES_PER_EVENT
    return {
        "samples_per_second": round(samples / (end - start)),
        "runtime_cpu_us_per_sample": round(cpu / samples * 1e6, 2),
    }


def latency(pub: Publisher, rate: float, seconds: float) -> dict[str, Any]:
    """Paced at ``rate`` samples/s; every tenth event flips one alarmed tag."""
    per_second = rate / SAMPLES_PER_EVENT
    total = int(per_second * seconds)
    batch = events(total)
    sent: dict[tuple[str, str], list[float]] = {}
    flips = 0
    start = time.perf_counter()
    for i, samples in enumerate(batch):
        if i % 10 == 0:
            n = flips % ALARMS
            up = (flips // ALARMS) % 2 == 0
            samples = [s for s in samples if s["Tag"] != tag(n)]
            samples.append({"Tag": tag(n), "Value": SETPOINT + 10 if up else SETPOINT - 20})
            alarm_event = ("raised" if up else "cleared", f"{tag(n)}.H")
            flips += 1
        else:
            alarm_event = None
        due = start + i / per_second
        while (pause := due - time.perf_counter()) > 0:
            time.sleep(pause)
        at = time.perf_counter()
        pub.send(samples)
        if alarm_event is not None:
            sent.setdefault(alarm_event, []).append(at)
    latencies: list[float] = []
    deadline = time.perf_counter() + 10
    while len(latencies) < flips and time.perf_counter() < deadline:
        try:
            received, event = pub.received.get(timeout=1)
        except queue.Empty:
            continue
        times = sent.get((event.get("Event", ""), event.get("Alarm", "")))
        if times:
            latencies.append((received - times.pop(0)) * 1000)
    latencies.sort()
    return {
        "rate_samples_per_second": round(rate),
        "alarm_events": len(latencies),
        "alarm_events_expected": flips,
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2) if latencies else None,
    }


def run(count: int) -> dict[str, Any]:
    results: dict[str, Any] = {"tags": TAGS, "alarms": ALARMS, "samples_per_event": 10}
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalMosquitto(Path(tmp) / "broker") as broker,
        LocalRedis(Path(tmp) / "redis", appendonly=False) as local_redis,
    ):
        files = write_files(Path(tmp))
        client = redis.Redis(port=local_redis.port)
        for replicas in (1, 2):
            client.flushall()
            memory_before = int(client.info("memory")["used_memory"])
            key_prefix = f"bench{uuid.uuid4().hex[:6]}"
            ports = [free_port() for _ in range(replicas)]
            procs = [start_runtime(broker.port, local_redis.port, files, p, key_prefix)
                     for p in ports]  # fmt: skip
            pub = Publisher(broker.port)
            try:
                pub.watch(f"{ALARM_PREFIX}/{SCOPE}/events")
                wait_ready(pub, ports)
                pids = [p.pid for p in procs]
                throughput(pub, ports, pids, count // 10)  # warm-up
                row = throughput(pub, ports, pids, count)
                if replicas == 1:
                    used = int(client.info("memory")["used_memory"]) - memory_before
                    results["redis_used_memory_bytes_per_tag"] = round(used / TAGS)
                    results.update(key_memory(client, key_prefix, count))
                    half = row["samples_per_second"] / 2
                    results["latency_at_half_rate"] = latency(pub, half, 10.0)
                results[f"{replicas}_replica"] = row
            finally:
                pub.close()
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(30)
    return results


def key_memory(client: redis.Redis, key_prefix: str, events: int) -> dict[str, int]:
    """``MEMORY USAGE`` of the plant data and alarm keys per tag, and of the dedupe
    records per data event (they expire after ``APP_REDIS_DEDUPE_TTL``)."""
    plant = alarms = dedupe = dedupe_keys = 0
    for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
        size = int(client.memory_usage(key) or 0)
        part = key.decode().split(":")[1]
        if part == "plant":
            plant += size
        elif part == "alarms":
            alarms += size
        elif part == "dedupe":
            dedupe += size
            dedupe_keys += 1
    return {
        "redis_plant_bytes_per_tag": round(plant / TAGS),
        "redis_alarm_bytes_per_alarm": round(alarms / ALARMS),
        "redis_dedupe_bytes_per_event": round(dedupe / max(1, dedupe_keys)),
    }


def wait_ready(pub: Publisher, ports: list[int], timeout: float = 60.0) -> None:
    """Until every replica answers /metrics and a probe sample is stored."""
    deadline = time.time() + timeout
    while True:
        try:
            before = stored(ports)
            pub.send([{"Tag": tag(TAGS - 1), "Value": float(uuid.uuid4().int % 1000) + 0.5}])
            until_stored(ports, before + 1, timeout=1.0)
            return
        except (OSError, RuntimeError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="data events per phase")
    parser.add_argument("--json", type=Path, default=Path("bench/results/bench_tags.json"))
    args = parser.parse_args()
    results = run(args.events)
    one, two = results["1_replica"], results["2_replica"]
    lat = results["latency_at_half_rate"]
    print(f"{TAGS} tags, {ALARMS} alarms, {SAMPLES_PER_EVENT} samples per data event")
    print(f"{'replicas':<10}{'samples/s':>12}{'CPU µs/sample':>15}")
    for name, row in (("1", one), ("2", two)):
        print(f"{name:<10}{row['samples_per_second']:>12}{row['runtime_cpu_us_per_sample']:>15}")
    print(f"data event -> alarm event at {lat['rate_samples_per_second']} samples/s: "
          f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms "
          f"({lat['alarm_events']} of {lat['alarm_events_expected']} alarm events)")  # fmt: skip
    print(f"Redis per tag (definition, spec, value, stale deadline): "
          f"{results['redis_plant_bytes_per_tag']} B; per alarm: "
          f"{results['redis_alarm_bytes_per_alarm']} B; used_memory growth per tag, "
          f"all keys: {results['redis_used_memory_bytes_per_tag']} B; dedupe record per data "
          f"event (until it expires): {results['redis_dedupe_bytes_per_event']} B")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
