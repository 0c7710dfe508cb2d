"""A runtime with its real HTTP server and web view for the page tests: real Mosquitto
and Redis, a users file with one operator and one viewer, logins through the login form."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlencode

import orjson

from microdcs.alarms.options import AlarmsConfig
from microdcs.app.config import AppConfig
from microdcs.app.devstack import free_port
from microdcs.app.runtime import Runtime
from microdcs.web.options import WebConfig
from microdcs.web.passwords import hash_password
from microdcs.web.sessions import COOKIE
from tests.conftest import running
from tests.integration.test_plantdata_helpers import DATA, TAG_CONFIG, TEMP, plant_config
from tests.mesclient import MesClient, ce_properties

PASSWORDS = {"olga": "operator-pw", "vic": "viewer-pw", "erik": "engineer-pw"}
ROLES = {"olga": "operator", "vic": "viewer", "erik": "engineer"}


def web_config(config: AppConfig, tmp: Path) -> AppConfig:
    users = tmp / "users.json"
    users.write_bytes(orjson.dumps([
        {"name": n, "role": ROLES[n], "password_hash": hash_password(p)}
        for n, p in PASSWORDS.items()
    ]))  # fmt: skip
    prefix = config.jobs_prefix.rsplit("/", 1)[0]
    return replace(
        plant_config(config),
        http_host="127.0.0.1",
        http_port=free_port(),
        web=WebConfig(users_file=str(users), session_secret="s" * 40),
        alarms=AlarmsConfig(topic_prefix=f"{prefix}/alarms", publish_interval_seconds=0.1),
    )


HIGH = {"ID": "TI-101.H", "Tag": "TI-101", "Kind": "H", "Setpoint": 50, "Deadband": 5,
        "Priority": "high", "Message": "Reactor temperature high"}  # fmt: skip
ALARM_CONFIG = "com.github.aschamberger.microdcs.config.alarm.v1"


async def configure_alarm(mes: MesClient, config: AppConfig, runtime: Runtime, scope: str) -> None:
    """The TI-101 tag (plant data) and its high alarm, over MQTT as an engineering tool would."""
    plant = config.plantdata.topic_prefix
    await mes.publish(f"{plant}/{scope}/commands", orjson.dumps(TEMP),
                      ce_properties(TAG_CONFIG, subject=scope))  # fmt: skip
    props = ce_properties(ALARM_CONFIG, subject=scope)
    await mes.publish(f"{config.alarms.topic_prefix}/{scope}/commands", orjson.dumps(HIGH), props)
    async with asyncio.timeout(5):
        while HIGH["ID"] not in {v.alarm for v in await runtime.alarms.alarms(scope)}:
            await asyncio.sleep(0.02)
        while not await runtime.plantdata.read(scope, ["TI-101"]):
            await asyncio.sleep(0.02)


async def temperature(mes: MesClient, config: AppConfig, scope: str, value: float) -> None:
    """One data event of TI-101 from the plant."""
    sample = {"Tag": "TI-101", "Value": value, "Quality": "good", "Timestamp": time.time()}
    await mes.publish(f"{config.plantdata.topic_prefix}/{scope}/data",
                      orjson.dumps({"Samples": [sample]}),
                      ce_properties(DATA, subject=scope))  # fmt: skip


@contextlib.asynccontextmanager
async def web_runtime(config: AppConfig) -> AsyncIterator[Runtime]:
    async with running(config, telemetry=True) as runtime:
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", config.http_port)
                    writer.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
        yield runtime


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def cookie(self) -> str | None:
        """The session cookie this reply sets, if any."""
        value = self.header("set-cookie")
        match = re.match(rf"{COOKIE}=([^;]*)", value or "")
        return match.group(1) if match else None


async def request(
    port: int, method: str, path: str, *, cookie: str | None = None,
    form: dict[str, str] | None = None, headers: dict[str, str] | None = None,
) -> Reply:  # fmt: skip
    body = urlencode(form).encode() if form is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
             f"Content-Length: {len(body)}"]  # fmt: skip
    if form is not None:
        lines.append("Content-Type: application/x-www-form-urlencoded")
    if cookie is not None:
        lines.append(f"Cookie: {COOKIE}={cookie}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    pairs = [tuple(line.split(": ", 1)) for line in header_lines]
    text = content.decode()
    if any(k.lower() == "transfer-encoding" and v == "chunked" for k, v in pairs):
        text = _unchunk(content).decode()
    return Reply(int(status_line.split(" ")[1]), pairs, text)  # type: ignore[arg-type]


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


async def login(port: int, name: str) -> tuple[str, str]:
    """The session cookie of ``name`` and the CSRF token its pages carry."""
    reply = await request(port, "POST", "/login",
                          form={"name": name, "password": PASSWORDS[name]})  # fmt: skip
    assert reply.status == 303, reply
    match = re.search(rf"{COOKIE}=([^;]*)", reply.header("set-cookie") or "")
    assert match
    page = await request(port, "GET", "/", cookie=match.group(1))
    token = re.search(r'name="csrf" value="([^"]*)"', page.body)
    assert token, page.body
    return match.group(1), token.group(1)


async def sse_events(
    port: int, path: str, cookie: str, count: int, timeout: float = 5.0
) -> list[tuple[str, object]]:
    """The first ``count`` events of a live stream, as (event, data)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    events: list[tuple[str, object]] = []
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
            f"Cookie: {COOKIE}={cookie}\r\n\r\n".encode()
        )
        buffer = b""
        async with asyncio.timeout(timeout):
            while len(events) < count:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                buffer += chunk
                events = [
                    (m.group(1).decode(), orjson.loads(m.group(2)))
                    for m in re.finditer(rb"event: (\w+)\ndata: (.*)\n\n", buffer)
                ]
        return events
    finally:
        writer.close()
