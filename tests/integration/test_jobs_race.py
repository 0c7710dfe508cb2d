"""Two replica processes on one shared subscription race conflicting commands on the same
jobs: only one of two conflicting commands ever succeeds."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from dataclasses import replace
from pathlib import Path

from microdcs.app.config import AppConfig
from tests.integration.test_jobs_helpers import Station, start_replica, wait_logged
from tests.mesclient import MesClient, Received

JOBS = 40


def outcome(reply: Received) -> tuple[int, str]:
    return reply.json()["ReturnStatus"], reply.attributes["source"]


async def test_conflicting_commands_on_two_replicas_never_both_succeed(
    config: AppConfig, tmp_path: Path
) -> None:
    replicas = [
        start_replica(replace(config, instance_id=f"{config.instance_id}-{n}"), tmp_path)
        for n in ("a", "b")
    ]
    try:
        await wait_logged(tmp_path, "connected to", count=2)
        async with MesClient(config.mqtt.port) as mes:
            station = Station(mes, config.jobs_prefix, None)
            stores = await asyncio.gather(
                *(station.call_raw("Store", {"JobOrder": {"JobOrderID": f"S{i}"}})
                  for i in range(JOBS) for _ in range(2)),
            )  # fmt: skip
            starts = await asyncio.gather(
                *(station.call_raw("StoreAndStart", {"JobOrder": {"JobOrderID": f"R{i}"}})
                  for i in range(JOBS)),
            )  # fmt: skip
            assert all(outcome(r)[0] == 1 for r in starts)
            ends = await asyncio.gather(
                *(station.call_raw(method, {"JobOrderID": f"R{i}"})
                  for i in range(JOBS) for method in ("Stop", "Abort")),
            )  # fmt: skip
    finally:
        for process in replicas:
            process.send_signal(signal.SIGTERM)
        for process in replicas:
            process.wait(20)
    for i in range(JOBS):
        pair = sorted(outcome(r)[0] for r in stores[2 * i : 2 * i + 2])
        assert pair == [1, 16], f"Store S{i} twice: {pair}"
        pair = sorted(outcome(r)[0] for r in ends[2 * i : 2 * i + 2])
        assert pair == [1, 8], f"Stop/Abort R{i}: {pair}"
    sources = Counter(outcome(r)[1] for r in stores + ends)
    assert len(sources) == 2, f"both replicas must have served: {sources}"
