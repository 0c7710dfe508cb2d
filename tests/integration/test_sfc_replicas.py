"""Acceptance scenario 16: three replica processes; the one that dispatched a command is
killed (SIGKILL) before the equipment answers, and another one finishes the job."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

import orjson

from microdcs.app.config import AppConfig
from tests.integration.sfc_helpers import scenario_recipe, simulator, states_until, work_master
from tests.integration.test_jobs_helpers import CFG, Station, start_replica, wait_logged
from tests.mesclient import MesClient, ce_properties, next_message


def replicas_config(config: AppConfig) -> AppConfig:
    return replace(
        config,
        sfc_claim_idle_seconds=1.0,
        sfc_command_resend_seconds=1.0,
        sfc_scope_scan_seconds=0.2,
        mqtt=replace(config.mqtt, end_session_on_shutdown=True),
    )


async def test_killed_replica_leaves_no_step_lost_and_no_command_twice(
    config: AppConfig, tmp_path: Path
) -> None:
    config = replicas_config(config)
    names = [f"{config.instance_id}-{n}" for n in ("a", "b", "c")]
    processes: dict[str, subprocess.Popen[bytes]] = {
        name: start_replica(replace(config, instance_id=name), tmp_path) for name in names
    }
    try:
        await wait_logged(tmp_path, "connected to", count=3)
        async with (
            MesClient(config.mqtt.port) as mes,
            simulator(config, delay=1.5, emit=0.1) as sim,
        ):
            station = Station(mes, config.jobs_prefix, None)
            events = await station.watch("events")
            commands = await mes.watch(f"{config.equipment_prefix}/woodworking/commands")
            await configure_until_accepted(station, scenario_recipe())
            first = await next_message(commands, timeout=10)
            sender = first.attributes["source"].removeprefix("microdcs/")
            processes[sender].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            # The killed replica's action is finished when the next step's commands go out.
            while (await next_message(commands, timeout=10)).attributes["type"] == first.attributes[
                "type"
            ]:
                pass
            recovery = time.monotonic() - killed_at
            states = await states_until(events, "J1", 5, timeout=30)
        assert states[-1] == [5, 1]
        assert [3] in states
        assert len(sim.effects) == 3, sim.report()
        assert set(sim.effects.values()) == {1}, sim.report()
        # The equipment answers 1.5 s after the command; the rest is the recovery.
        assert recovery < 1.5 + 5.0
        print(f"action of {sender} finished {recovery:.2f}s after its SIGKILL")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            process.wait(20)


async def configure_until_accepted(station: Station, recipe: dict[str, object]) -> None:
    """Configure the work master (no response) and StoreAndStart once a replica has it."""
    props = ce_properties(f"{CFG}.workmaster.v1", event_id=str(uuid.uuid4()))
    await station.mes.publish(station.commands, orjson.dumps(work_master("WM-J1", recipe)), props)
    async with asyncio.timeout(10):
        while await station.store("J1", "StoreAndStart", WorkMasterID=[{"ID": "WM-J1"}]) != 1:
            await asyncio.sleep(0.05)
