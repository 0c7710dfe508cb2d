"""Conditions on plant data tags, end to end (issue 17, scenario 15): a transition waiting on
a tag fires when the tag changes, on whichever replica reads the re-evaluation, once.

Real Mosquitto and Redis; the current value table is a :class:`TagTable` stand-in that
implements the plant data contract (a reader, and listeners told after each change), fed
through the replica that "stored" the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from microdcs.app.config import AppConfig
from microdcs.app.runtime import Runtime
from microdcs.plantdata.contract import (
    Quality,
    TagChange,
    TagChangeListener,
    TagSample,
    TagValue,
)
from microdcs.sfc.engine.keys import EngineKeys
from microdcs.sfc.engine.tagwatch import TagWatch
from tests.conftest import running
from tests.integration.sfc_helpers import action, configure_and_start, simulator, states_until
from tests.integration.test_jobs_helpers import SCOPE, Station
from tests.mesclient import MesClient, Received, next_message

PROGRESS = "com.github.aschamberger.microdcs.sfc.progress.v1"
TEMP = "oven1.temp"
HOT = f'done and tag("{TEMP}") > 180 and quality("{TEMP}") == "good"'


class TagTable:
    """A current value table in memory: what the plant data store offers the engine."""

    def __init__(self) -> None:
        self.samples: dict[str, TagSample] = {}
        self.listeners: list[TagChangeListener] = []

    async def read(self, scope: str, tags: Sequence[str]) -> Mapping[str, TagSample]:
        return {tag: self.samples[tag] for tag in tags if tag in self.samples}

    async def store(
        self, tag: str, value: TagValue, quality: Quality = Quality.GOOD, *, via: int = 0
    ) -> None:
        """Store a sample, then tell the listener of replica ``via`` (who stored it)."""
        now = time.time()
        previous = self.samples.get(tag)
        sample = TagSample(tag, value, quality, source_time=now, receive_time=now)
        self.samples[tag] = sample
        await self.listeners[via].tags_changed(SCOPE, [TagChange(SCOPE, sample, previous)])


def oven_recipe() -> dict[str, Any]:
    """Heat, then wait for the oven to be hot (with good quality) before Bake."""
    return {
        "Steps": [{"Name": "Heat", "Initial": True}, {"Name": "Bake"}],
        "Actions": [action("heat", "Heat", "com.example.heat.v1"),
                    action("bake", "Bake", "com.example.bake.v1")],
        "Transitions": [{"Source": "Heat", "Target": "Bake", "Condition": HOT}],
    }  # fmt: skip


@contextlib.asynccontextmanager
async def replicas(config: AppConfig, table: TagTable, count: int) -> AsyncIterator[list[Runtime]]:
    """``count`` replicas reading ``table``; each has its own tag watch listener."""
    async with contextlib.AsyncExitStack() as stack:
        runtimes: list[Runtime] = []
        for n in range(count):
            own = replace(config, instance_id=f"{config.instance_id}-{n}")
            runtime = await stack.enter_async_context(running(own))
            runtime.sfc_engine.tags = table
            table.listeners.append(TagWatch(runtime.store, maxlen=config.sfc_work_maxlen))
            runtimes.append(runtime)
        yield runtimes


async def progress_until(
    events: asyncio.Queue[Received], kind: str, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Progress entries of the events up to the first holding an entry of ``kind``;
    other events (job status) are dropped."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not any(entry["Kind"] == kind for entry in seen):
            message = await events.get()
            if message.attributes.get("type") == PROGRESS:
                seen += message.json()["Steps"]
    return seen


async def test_a_tag_change_from_170_to_190_fires_the_waiting_transition_once_within_100_ms(
    config: AppConfig,
) -> None:
    table = TagTable()
    async with (
        replicas(config, table, 2) as (first, _),
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=None) as sim,
    ):
        await table.store(TEMP, 170.0)
        station = Station(mes, config.jobs_prefix, first)
        events = await station.watch("events")
        commands = await mes.watch(f"{config.equipment_prefix}/{SCOPE}/commands")
        await configure_and_start(station, "J1", oven_recipe())
        await progress_until(events, "action_completed")  # Heat done, waiting on the oven
        assert (await next_message(commands)).attributes["type"] == "com.example.heat.v1"
        await asyncio.sleep(0.3)
        assert commands.empty(), "the transition fired at 170"
        watchers = EngineKeys.of(first.store, SCOPE).tag_watch(TEMP)
        assert await first.store.execute("SMEMBERS", watchers) == [b"J1"]
        # The change is stored by the second replica; either replica may fire.
        changed_at = time.monotonic()
        await table.store(TEMP, 190.0, via=1)
        bake = await next_message(commands, timeout=5)
        latency = time.monotonic() - changed_at
        # More changes, told by both replicas, while the first is being acted on.
        for n, value in enumerate((191.0, 192.0, 193.0)):
            await table.store(TEMP, value, via=n % 2)
        after = await progress_until(events, "step_exited")  # Heat left
        after += await progress_until(events, "step_exited")  # Bake done: the end
        assert (await states_until(events, "J1", 5))[-1] == [5, 1]
        await asyncio.sleep(0.3)
        assert commands.empty(), "a second command after the transition fired"
        assert await first.store.execute("SMEMBERS", watchers) == []
    print(f"transition fired {latency * 1000:.1f} ms after the tag change")
    assert bake.attributes["type"] == "com.example.bake.v1"
    assert latency < 0.1
    fired = [e["Transition"] for e in after if e["Kind"] == "transition_fired"]
    assert fired == ["Heat -> Bake"]
    assert sorted(c.split("/")[2] for c in sim.effects) == ["bake", "heat"]
    assert set(sim.effects.values()) == {1}


def sorting_recipe() -> dict[str, Any]:
    """A selection on a tag's value, with neither a default choice nor a timeout."""
    return {
        "Steps": [{"Name": "Measure", "Initial": True}, {"Name": "Keep"}, {"Name": "Scrap"}],
        "Actions": [action("keep", "Keep", "com.example.keep.v1")],
        "Branches": [{"Name": "Sort", "Type": "selection", "Branches": [["Keep"], ["Scrap"]]}],
        "Transitions": [{"Source": "Measure", "Target": "Sort"},
                        {"Source": "Sort", "Target": "Keep", "Condition": 'tag("width") >= 10'},
                        {"Source": "Sort", "Target": "Scrap", "Condition": 'tag("width") < 9'}],
    }  # fmt: skip


async def test_a_selection_on_tags_without_default_is_warned_about_and_chosen_on_change(
    config: AppConfig, caplog: pytest.LogCaptureFixture
) -> None:
    table = TagTable()
    caplog.set_level(logging.WARNING, logger="microdcs.sfc.validation")
    async with (
        replicas(config, table, 1) as (runtime,),
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=None) as sim,
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        await table.store("width", 9.5)  # neither choice holds
        await configure_and_start(station, "S1", sorting_recipe())
        warned = [
            r.getMessage() for r in caplog.records if "selection branch Sort" in r.getMessage()
        ]
        assert len(warned) == 1 and "no default choice" in warned[0]
        assert await states_until(events, "S1", 3) == [[2, 2], [3]]
        await asyncio.sleep(0.3)  # Running, waiting in Measure
        await table.store("width", 12.0)
        assert await states_until(events, "S1", 5) == [[5, 1]]
    assert [c.split("/")[2] for c in sim.effects] == ["keep"]


async def test_a_job_suspended_by_its_watchdog_ignores_tag_changes_until_resumed(
    config: AppConfig,
) -> None:
    table = TagTable()
    async with (
        replicas(config, table, 1) as (runtime,),
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=None) as sim,
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        commands = await mes.watch(f"{config.equipment_prefix}/{SCOPE}/commands")
        await table.store(TEMP, 170.0)
        await configure_and_start(station, "W1", {**oven_recipe(), "WatchdogSeconds": 0.4})
        assert await states_until(events, "W1", 4) == [[2, 2], [3], [4, 2]]  # Suspended
        assert (await next_message(commands)).attributes["type"] == "com.example.heat.v1"
        await table.store(TEMP, 190.0)
        await asyncio.sleep(0.3)
        assert commands.empty(), "a suspended job fired on a tag change"
        assert await station.do("Resume", "W1") == 1
        bake = await next_message(commands)
        assert bake.attributes["type"] == "com.example.bake.v1"
        assert (await states_until(events, "W1", 5))[-1] == [5, 1]
    assert set(sim.effects.values()) == {1}
