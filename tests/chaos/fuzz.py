"""Hostile input for the fault suite: fuzzed MQTT requests and MessagePack-RPC frames.

Plain ``random`` with a fixed seed, not Hypothesis: 10,000 messages must be generated in
well under a second, and a failing run is repeated by its seed (in the report).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import msgpack
import orjson

from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient, MqttConnectionError
from tests.chaos.mesload import JC, STORE, store_body

GREETING = "com.github.aschamberger.microdcs.greeting.v1"
TYPES = [STORE, f"{JC}.Cancel.v2", f"{JC}.StoreAndStart.v2", GREETING, "", "x" * 300]
CONTENT_TYPES = [
    None, "application/json", "application/cloudevents+json", "application/msgpack",
    "text/plain", "application/json; charset=utf-16", "", "a/b/c", "\x7f", "x" * 2000,
]  # fmt: skip
NASTY = ["", " ", "\n", "a\nb", "\t", "\x01", "\x1b[2J", "\u200b", "\ufeff", "é", "☃", "#", "+",
         "/", "}", "{", "}:job:x", "a}:job:b", "../..", "%00", "x" * 70_000]  # fmt: skip


def nasty_text(rng: random.Random, max_len: int = 40) -> str:
    if rng.random() < 0.5:
        return rng.choice(NASTY)
    alphabet = "ab/{}:#+ \n\x01é☃\\\"'"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_len)))


def nasty_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice([None, True, 0, -1, 2**63, 1.5e308, nasty_text(rng), b"\x00\xff", [], {}])
    if roll < 0.7:
        return [nasty_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {nasty_text(rng, 8): nasty_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def fuzz_payload(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.2:
        return rng.randbytes(rng.randint(0, 512))
    if roll < 0.35:
        depth = rng.choice([10, 500, 1200, 5000])
        return b"[" * depth + b"]" * depth
    if roll < 0.5:
        return store_body(nasty_text(rng))
    if roll < 0.6:
        return bytes(msgpack.packb(nasty_value(rng), use_bin_type=True))
    with contextlib.suppress(TypeError, orjson.JSONEncodeError):
        return orjson.dumps({"JobOrder": nasty_value(rng), "JobOrderID": nasty_value(rng)})
    return b"{}"


def fuzz_publish(rng: random.Random, prefix: str, n: int) -> tuple[str, bytes, bytes]:
    """Topic, payload and encoded properties of one hostile request."""
    scope = rng.choice(["cell1", "a/b/c/d/e", "x}:job:y", "+", "é", "cell1/commands", ""])
    tail = rng.choice(["commands", "events", "commands/extra", "", "#x"])
    topic = "/".join(part for part in (prefix, scope, tail) if part) or prefix
    attrs: list[tuple[str, str]] = []
    if rng.random() < 0.9:
        attrs.append(("specversion", rng.choice(["1.0", "1.0", "0.3", "", "x" * 100])))
    if rng.random() < 0.9:
        attrs.append(("id", rng.choice([f"fz-{n}", nasty_text(rng)])))
    if rng.random() < 0.9:
        attrs.append(("source", rng.choice(["fuzz/mes", nasty_text(rng)])))
    if rng.random() < 0.9:
        attrs.append(("type", rng.choice([*TYPES, nasty_text(rng)])))
    for _ in range(rng.randint(0, 4)):
        attrs.append(
            (rng.choice(["subject", "time", "dataschema", "traceparent", "mdcserrorkind",
                         "correlationid", nasty_text(rng, 10)]), nasty_text(rng))
        )  # fmt: skip
    response_topic = rng.choice(
        [None, "fuzz/responses", "mes/x/#", "mes/+/r", "", "a\x00b", "$SYS/x",
         f"{prefix}/cell1/commands", "x" * 70_000, nasty_text(rng)]
    )  # fmt: skip
    props = codec.encode_publish_properties(
        payload_format=rng.choice([None, 0, 1, 7]),
        message_expiry=rng.choice([None, 0, 1, 60, 2**32 - 1]),
        content_type=rng.choice(CONTENT_TYPES),
        response_topic=response_topic,
        correlation_data=rng.choice([None, b"", rng.randbytes(16), b"\x00" * 600]),
        user_properties=attrs,
    )
    return topic, fuzz_payload(rng), props


async def fuzz_mqtt(port: int, prefix: str, count: int, seed: int) -> dict[str, int]:
    """Publish ``count`` hostile messages under ``prefix``; reconnects when dropped."""
    rng = random.Random(seed)
    stats = {"sent": 0, "unencodable": 0, "fuzzer_reconnects": 0}
    client = MqttClient(
        ClientOptions(host="127.0.0.1", port=port, client_id=f"fuzz-{seed}", clean_start=True),
        lambda message: None,
    )
    await client.connect()
    try:
        for n in range(count * 2):  # unencodable ones are not counted: ``count`` are sent
            if stats["sent"] >= count:
                break
            while not client.connected:
                stats["fuzzer_reconnects"] += 1
                with contextlib.suppress(MqttConnectionError, OSError):
                    await client.connect()
                if not client.connected:
                    await asyncio.sleep(0.05)
            try:
                topic, payload, props = fuzz_publish(rng, prefix, n)
                client.publish(topic, payload, props, qos=rng.choice([0, 1]))
            except (ValueError, UnicodeError, OverflowError):
                stats["unencodable"] += 1
                continue
            stats["sent"] += 1
            if n % 200 == 199:  # bounded pace: the point is hostile input, not overload
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
    finally:
        with contextlib.suppress(MqttConnectionError, OSError):
            await client.disconnect()
    return stats


def fuzz_frame(rng: random.Random) -> bytes:
    roll = rng.random()
    method = rng.choice(["publish", "heartbeat", "authenticate", "subscribe", "", "nope"])
    if roll < 0.15:
        return rng.randbytes(rng.randint(1, 64))
    if roll < 0.35:
        frame: Any = nasty_value(rng)
    elif roll < 0.6:
        frame = [rng.choice([0, 1, 2, 3, -1]), nasty_value(rng), method, nasty_value(rng)]
    elif roll < 0.75:
        frame = [2, method, [nasty_value(rng)]]
    else:
        event: dict[Any, Any] = {
            "specversion": "1.0", "id": f"rpc-{rng.random()}", "source": "fuzz/rpc",
            "type": rng.choice(TYPES), "datacontenttype": "application/json",
            "data": {"name": "fuzz"},
        }  # fmt: skip
        for _ in range(rng.randint(1, 3)):
            event[rng.choice(["id", "type", "source", "data", "subject", nasty_text(rng, 8)])] = (
                nasty_value(rng)
            )
        frame = [0, rng.randint(0, 2**32 - 1), "publish", [event]]
    try:
        return bytes(msgpack.packb(frame, use_bin_type=True))
    except (TypeError, ValueError, OverflowError):
        return b"\xc1"


async def fuzz_rpc(port: int, count: int, seed: int, per_connection: int = 100) -> dict[str, int]:
    """Send ``count`` hostile frames over connections of ``per_connection`` frames each."""
    rng = random.Random(seed)
    stats = {"frames": 0, "connections": 0, "answers_bytes": 0}
    sent = 0
    while sent < count:
        batch = [fuzz_frame(rng) for _ in range(min(per_connection, count - sent))]
        sent += len(batch)
        stats["frames"] += len(batch)
        stats["connections"] += 1
        with contextlib.suppress(OSError, TimeoutError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"".join(batch))
                await writer.drain()
                writer.write_eof()
                async with asyncio.timeout(5):
                    while chunk := await reader.read(65536):
                        stats["answers_bytes"] += len(chunk)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    return stats


async def rpc_heartbeat(port: int) -> Any:
    """One well-formed heartbeat request on a new connection: its response frame."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(msgpack.packb([0, 1, "heartbeat", []]))
        await writer.drain()
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        async with asyncio.timeout(5):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return None
                unpacker.feed(chunk)
                for frame in unpacker:
                    if isinstance(frame, list) and frame[:2] == [1, 1]:
                        return frame
    finally:
        writer.close()
