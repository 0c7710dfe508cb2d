"""The alarm manager against a real Redis: each transition once across replicas, durable
timers, operator actions and the journal (the manager's tag listener called directly; the
tests through the broker are in test_alarms_mqtt.py and test_alarms_replicas.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from microdcs.alarms.contract import (
    AlarmAction,
    AlarmKind,
    AlarmPriority,
    AlarmState,
    AlarmView,
    JournalEntry,
)
from microdcs.alarms.definitions import AlarmDefinition
from microdcs.alarms.kpi_task import KpiTask
from microdcs.alarms.manager import AlarmManager
from microdcs.alarms.store import AlarmStore
from microdcs.alarms.timers import AlarmTimers
from microdcs.app.config import AppConfig
from microdcs.plantdata.contract import Quality, TagChange, TagSample
from microdcs.storage.redis import RedisStore

SCOPE = "line1"


class Events:
    """An in-memory alarm event sink."""

    def __init__(self) -> None:
        self.events: list[tuple[AlarmView, JournalEntry]] = []

    async def alarm_event(self, view: AlarmView, entry: JournalEntry) -> None:
        self.events.append((view, entry))

    def named(self, event: str) -> list[JournalEntry]:
        return [entry for _, entry in self.events if entry.event == event]


def change(tag: str, value: float, previous: float | None = None, at: float = 0.0) -> TagChange:
    now = at or time.time()
    before = (
        TagSample(tag, previous, Quality.GOOD, now - 0.1, now - 0.1)
        if previous is not None
        else None
    )
    return TagChange(SCOPE, TagSample(tag, value, Quality.GOOD, now, now), before)


@contextlib.asynccontextmanager
async def replica(
    config: AppConfig, events: Events, *, timers: bool = False
) -> AsyncIterator[AlarmManager]:
    async with RedisStore(config.redis) as redis:
        store = AlarmStore(redis, journal_maxlen=1000)
        manager = AlarmManager(store, events=events)
        if not timers:
            yield manager
            return
        task_timers = AlarmTimers(store, manager.fire, rescan=0.2, lease=2.0)
        manager.on_timer = task_timers.wake
        shutdown = asyncio.Event()
        task = asyncio.create_task(task_timers.run(shutdown))
        try:
            yield manager
        finally:
            shutdown.set()
            await task


def high(alarm: str = "TI-101.H", **fields: object) -> AlarmDefinition:
    values: dict[str, object] = {
        "id": alarm, "tag": "TI-101", "kind": AlarmKind.HIGH, "setpoint": 50.0,
        "deadband": 5.0, "priority": AlarmPriority.HIGH, "message": "temperature high",
    }  # fmt: skip
    values.update(fields)
    return AlarmDefinition(**values)  # type: ignore[arg-type]


async def state(manager: AlarmManager, alarm: str = "TI-101.H") -> AlarmState:
    views = {v.alarm: v for v in await manager.alarms(SCOPE)}
    return views[alarm].state


async def test_two_replicas_fed_the_same_stream_raise_each_alarm_once(config: AppConfig) -> None:
    events = Events()
    async with replica(config, events) as a, replica(config, events) as b:
        await a.put_definition(SCOPE, high())
        stream = [40.0, 55.0, 56.0, 30.0, 60.0, 61.0, 20.0]
        previous: float | None = None
        for value in stream:
            tag_change = change("TI-101", value, previous)
            await asyncio.gather(
                a.tags_changed(SCOPE, [tag_change]), b.tags_changed(SCOPE, [tag_change])
            )
            previous = value
        assert len(events.named("raised")) == 2
        assert len(events.named("cleared")) == 2
        journal = await a.journal(SCOPE, time.time() - 60, time.time() + 1)
        assert [e.event for e in journal] == ["raised", "cleared", "raised", "cleared"]
        assert a.conflicts + b.conflicts > 0  # they did race, and the CAS decided


async def test_an_acknowledgement_is_not_lost_to_a_replica_with_a_stale_cache(
    config: AppConfig,
) -> None:
    events = Events()
    async with replica(config, events) as a, replica(config, events) as b:
        await a.put_definition(SCOPE, high())
        await a.tags_changed(SCOPE, [change("TI-101", 55.0)])
        await b.tags_changed(SCOPE, [change("TI-101", 56.0, 55.0)])  # b caches Unacknowledged
        (outcome,) = await a.act(SCOPE, AlarmAction.ACKNOWLEDGE, ["TI-101.H"], operator="op1")
        assert outcome.done and outcome.state is AlarmState.ACKNOWLEDGED
        await b.tags_changed(SCOPE, [change("TI-101", 57.0, 56.0)])
        await b.tags_changed(SCOPE, [change("TI-101", 40.0, 57.0)])
        assert await state(a) is AlarmState.NORMAL  # acknowledged, then cleared: Normal
        journal = await a.journal(SCOPE, time.time() - 60, time.time() + 1)
        ack = [e for e in journal if e.event == "acknowledge"]
        assert ack and ack[0].operator == "op1"


async def test_an_action_not_allowed_is_refused_with_a_reason_and_nothing_stored(
    config: AppConfig,
) -> None:
    async with replica(config, Events()) as a:
        await a.put_definition(SCOPE, high())
        (outcome,) = await a.act(SCOPE, AlarmAction.ACKNOWLEDGE, ["TI-101.H"], operator="op1")
        assert not outcome.done
        assert outcome.error == "not_allowed" and outcome.reason
        (unknown,) = await a.act(SCOPE, AlarmAction.ACKNOWLEDGE, ["nope"], operator="op1")
        assert unknown.error == "unknown_alarm"
        assert await a.journal(SCOPE, time.time() - 60, time.time() + 1) == []


async def test_on_delay_fires_from_the_timer_without_a_new_value(config: AppConfig) -> None:
    events = Events()
    async with replica(config, events, timers=True) as a:
        await a.put_definition(SCOPE, high(on_delay=0.5))
        started = time.time()
        await a.tags_changed(SCOPE, [change("TI-101", 55.0)])
        assert await state(a) is AlarmState.NORMAL
        async with asyncio.timeout(3):
            while not events.named("raised"):
                await asyncio.sleep(0.02)
        assert 0.5 <= time.time() - started < 1.0
        assert await state(a) is AlarmState.UNACKNOWLEDGED


async def test_an_excursion_shorter_than_the_on_delay_raises_nothing(config: AppConfig) -> None:
    events = Events()
    async with replica(config, events, timers=True) as a:
        await a.put_definition(SCOPE, high(on_delay=0.4))
        await a.tags_changed(SCOPE, [change("TI-101", 55.0)])
        await asyncio.sleep(0.1)
        await a.tags_changed(SCOPE, [change("TI-101", 30.0, 55.0)])
        await asyncio.sleep(0.6)
        assert events.events == []
        assert await state(a) is AlarmState.NORMAL


async def test_shelve_expiry_with_no_new_value_brings_the_alarm_back_unacknowledged(
    config: AppConfig,
) -> None:
    events = Events()
    async with replica(config, events) as a:
        await a.put_definition(SCOPE, high())
        await a.tags_changed(SCOPE, [change("TI-101", 55.0)])
        (outcome,) = await a.act(
            SCOPE, AlarmAction.SHELVE, ["TI-101.H"], operator="op1", shelve_seconds=0.5
        )
        assert outcome.state is AlarmState.SHELVED
    # The replica that shelved it is gone; another one fires the expiry.
    async with replica(config, events, timers=True) as b:
        async with asyncio.timeout(3):
            while await state(b) is not AlarmState.UNACKNOWLEDGED:
                await asyncio.sleep(0.05)
        assert events.named("shelve_expired")


@pytest.mark.parametrize("count", [3])
async def test_acknowledge_many_at_once(config: AppConfig, count: int) -> None:
    async with replica(config, Events()) as a:
        ids = [f"TI-101.H{n}" for n in range(count)]
        for alarm in ids:
            await a.put_definition(SCOPE, high(alarm))
        await a.tags_changed(SCOPE, [change("TI-101", 55.0)])
        outcomes: Sequence[object] = await a.act(
            SCOPE, AlarmAction.ACKNOWLEDGE, ids, operator="op1", comment="seen"
        )
        assert [o.state for o in outcomes] == [AlarmState.ACKNOWLEDGED] * count  # type: ignore[attr-defined]


async def test_kpis_follow_the_journal(config: AppConfig) -> None:
    events = Events()
    async with replica(config, events) as a:
        await a.put_definition(SCOPE, high())
        for value in (60.0, 40.0, 61.0, 39.0, 62.0):  # three activations within a minute
            await a.tags_changed(SCOPE, [change("TI-101", value)])
        kpis = KpiTask(a.journal_reader, a.alarms, a.store.scopes, interval=10.0, window=86_400.0)
        await kpis.update()
        figures = kpis.figures[SCOPE]
        assert figures.rate == 3 and figures.chattering == 1
        assert figures.frequent == (("TI-101.H", 3),)
        await a.tags_changed(SCOPE, [change("TI-101", 38.0), change("TI-101", 63.0)])
        await kpis.update()  # reads on from where it stopped
        assert kpis.figures[SCOPE].rate == 4
