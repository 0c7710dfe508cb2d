"""Pacing of the retained cvt topics, with an in-memory outlet and table (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import orjson

from microdcs.plantdata.contract import Quality, TagChange, TagSample
from microdcs.plantdata.retained import CvtPublisher


class Outlet:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    async def _done(self) -> None:
        return None

    def publish_nowait(
        self, topic: str, payload: bytes, *, expiry: int | None
    ) -> asyncio.Future[None]:
        self.messages.append((topic, payload))
        return asyncio.ensure_future(self._done())

    def delete_nowait(self, topic: str) -> asyncio.Future[None]:
        self.messages.append((topic, b""))
        return asyncio.ensure_future(self._done())


class Table:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.reads = 0

    async def read(self, scope: str, tags: Sequence[str]) -> Mapping[str, TagSample]:
        self.reads += 1
        return {t: TagSample(t, self.values[t], Quality.GOOD, 1.0, 2.0) for t in tags}

    def store(self, publisher: CvtPublisher, tag: str, value: float) -> None:
        self.values[tag] = value
        sample = TagSample(tag, value, Quality.GOOD, 1.0, 2.0)
        publisher.changed("line1", [TagChange("line1", sample, None)])


async def test_a_fast_tag_is_published_once_per_interval_with_its_latest_value() -> None:
    outlet, table = Outlet(), Table()
    publisher = CvtPublisher(outlet, lambda s, t: f"p/{s}/cvt/{t}", table.read, interval=0.1)
    shutdown = asyncio.Event()
    task = asyncio.create_task(publisher.run(shutdown))
    for n in range(300):  # 1 kHz for 0.3 s
        table.store(publisher, "FI-9", float(n))
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.25)
    shutdown.set()
    await task
    values = [orjson.loads(p)["Value"] for _, p in outlet.messages]
    assert 2 <= len(values) <= 8, values
    assert values[-1] == 299.0 and values == sorted(values)
    assert {t for t, _ in outlet.messages} == {"p/line1/cvt/FI-9"}


async def test_tags_are_paced_each_on_its_own_and_a_quiet_task_sleeps() -> None:
    outlet, table = Outlet(), Table()
    publisher = CvtPublisher(outlet, lambda s, t: f"{s}/{t}", table.read, interval=10.0)
    shutdown = asyncio.Event()
    task = asyncio.create_task(publisher.run(shutdown))
    table.store(publisher, "a", 1.0)
    await asyncio.sleep(0.05)
    table.store(publisher, "b", 2.0)
    table.store(publisher, "a", 3.0)  # within a's interval: waits
    await asyncio.sleep(0.05)
    reads = table.reads
    await asyncio.sleep(0.2)
    assert table.reads == reads  # nothing due: no polling
    shutdown.set()
    await task
    assert [(t, orjson.loads(p)["Value"]) for t, p in outlet.messages] == [
        ("line1/a", 1.0), ("line1/b", 2.0)
    ]  # fmt: skip


async def test_a_removed_tag_loses_its_retained_message_and_its_pending_value() -> None:
    outlet, table = Outlet(), Table()
    publisher = CvtPublisher(outlet, lambda s, t: f"{s}/{t}", table.read, interval=10.0)
    table.store(publisher, "a", 1.0)
    await publisher.removed("line1", "a")
    assert outlet.messages == [("line1/a", b"")]
    shutdown = asyncio.Event()
    shutdown.set()
    await publisher.run(shutdown)
    assert outlet.messages == [("line1/a", b"")]


async def test_a_burst_of_many_tags_is_published_in_chunks_that_let_other_tasks_run() -> None:
    outlet, table = Outlet(), Table()
    publisher = CvtPublisher(outlet, lambda s, t: f"{s}/{t}", table.read, interval=10.0)
    for n in range(1000):
        table.store(publisher, f"T{n}", float(n))
    seen: list[int] = []
    shutdown = asyncio.Event()

    async def other() -> None:  # e.g. the alarm path, sharing the loop
        while not shutdown.is_set():
            seen.append(len(outlet.messages))
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other())
    task = asyncio.create_task(publisher.run(shutdown))
    await asyncio.sleep(0.05)
    shutdown.set()
    await asyncio.gather(task, ticker)
    assert len(outlet.messages) == 1000 and table.reads == 10
    assert {100, 500, 900} <= set(seen)  # it ran between the chunks


async def test_changes_of_waiting_tags_do_not_wake_the_task() -> None:
    outlet, table = Outlet(), Table()
    publisher = CvtPublisher(outlet, lambda s, t: f"{s}/{t}", table.read, interval=0.2)
    shutdown = asyncio.Event()
    task = asyncio.create_task(publisher.run(shutdown))
    for n in range(100):
        table.store(publisher, f"T{n}", 1.0)
    await asyncio.sleep(0.02)  # all published once: now each waits for its interval
    table.store(publisher, "T0", 2.0)  # the first to wait: the task sleeps until it is due
    publisher._wake.clear()
    for n in range(1, 100):
        table.store(publisher, f"T{n}", 2.0)
    assert not publisher._wake.is_set()  # the same bucket, due then: nothing to do now
    await asyncio.sleep(0.3)
    shutdown.set()
    await task
    values = [orjson.loads(p)["Value"] for _, p in outlet.messages]
    assert values == [1.0] * 100 + [2.0] * 100 and table.reads == 2
