"""A plain-MQTT MES talking job management to one scope, for the job integration tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from microdcs.app.config import AppConfig, to_environment
from microdcs.app.runtime import Runtime
from tests.conftest import running
from tests.mesclient import MesClient, Received, ce_properties, next_message

JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"
MJ = "org.opcfoundation.Machinery.Jobs"
CFG = "com.github.aschamberger.ISA95-JOBCONTROL_V2.config"
STATUS_EVENT = f"{JC}.ISA95JobOrderStatusEventType.v2"
INVALID = 4294967296
SCOPE = "woodworking"
REPO = Path(__file__).resolve().parents[2]
METHODS = ["Store", "StoreAndStart", "Update", "Start", "RevokeStart", "Pause", "Resume",
           "Stop", "Abort", "Cancel", "Clear"]  # fmt: skip
QUERIES = ["RequestJobResponseByJobOrderID", "RequestJobResponseByJobOrderState"]


def method_type(method: str) -> str:
    return f"{MJ}.{method}.v1" if method in QUERIES else f"{JC}.{method}.v2"


def state_numbers(states: list[dict[str, Any]]) -> list[int]:
    return [s["StateNumber"] for s in states]


class Station:
    """MES view of one scope: method calls, station configuration, events, retained state."""

    def __init__(self, mes: MesClient, prefix: str, runtime: Runtime | None, scope: str = SCOPE):
        self.mes = mes
        self.prefix = prefix
        self.scope = scope
        self.runtime = runtime
        self.base = f"{prefix}/{scope.replace('.', '/')}"
        self.commands = f"{self.base}/commands"

    async def call_raw(self, method: str, data: Any = None, **kw: Any) -> Received:
        return await self.mes.request(self.commands, method_type(method), data, **kw)

    async def call(self, method: str, data: Any) -> int:
        reply = await self.call_raw(method, data)
        status: int = reply.json()["ReturnStatus"]
        return status

    async def store(self, job_id: str, method: str = "Store", **order: Any) -> int:
        return await self.call(method, {"JobOrder": {"JobOrderID": job_id, **order}})

    async def do(self, method: str, job_id: str) -> int:
        return await self.call(method, {"JobOrderID": job_id})

    async def configure(self, kind: str, data: Any, method: str | None = None) -> None:
        """Publish a configuration event and wait until the runtime has handled it."""
        assert self.runtime is not None
        stats = self.runtime.mqtt.stats
        before = stats.processed + sum(stats.failed.values())
        extra = {"method": method} if method else None
        props = ce_properties(f"{CFG}.{kind}.v1", extra=extra, event_id=str(uuid.uuid4()))
        await self.mes.publish(self.commands, orjson.dumps(data), props)
        # Configuration events have no response and the runtime raises no event for them,
        # so the transport counters are the only signal that one was handled.
        async with asyncio.timeout(5):
            while stats.processed + sum(stats.failed.values()) <= before:
                await asyncio.sleep(0.005)

    async def watch(self, tail: str) -> asyncio.Queue[Received]:
        return await self.mes.watch(f"{self.base}/{tail}")


@asynccontextmanager
async def two_replicas(config: AppConfig) -> AsyncIterator[tuple[Runtime, Runtime, Station]]:
    """Two replicas in this loop on one shared subscription, and an MES station to both."""
    other = replace(config, instance_id=config.instance_id + "-b")
    async with (
        running(config) as first,
        running(other) as second,
        MesClient(config.mqtt.port) as mes,
    ):
        yield first, second, Station(mes, config.jobs_prefix, None)


async def next_json(queue: asyncio.Queue[Received]) -> Any:
    return (await next_message(queue)).json()


async def retained_until(queue: asyncio.Queue[Received], predicate: Any) -> Received:
    """The first message on ``queue`` for which ``predicate(message)`` holds (5 s at most)."""
    async with asyncio.timeout(5):
        while True:
            message = await queue.get()
            if predicate(message):
                return message


def start_replica(config: AppConfig, tmp: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(to_environment(config))
    env["PYTHONPATH"] = str(REPO)
    log = (tmp / f"{config.instance_id}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "microdcs.app.cli", "run"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip


async def wait_logged(tmp: Path, text: str, *, count: int) -> None:
    """Wait until ``count`` replica logs contain ``text`` (a subprocess has no event)."""
    async with asyncio.timeout(15):
        while sum(text in p.read_text() for p in tmp.glob("*.log")) < count:  # noqa: ASYNC240
            await asyncio.sleep(0.05)
