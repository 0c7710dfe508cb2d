"""The live hub without a server: one poller per topic however many pages watch it, at
most one update per interval, a page that falls behind is dropped, a topic nobody
watches stops polling."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from microdcs.web.live import LiveHub, sse_event


class CountingFeed:
    """Reports the number of changes since its last poll (changes arrive in bursts)."""

    def __init__(self) -> None:
        self.changes = 0
        self.polls = 0
        self.started = 0

    async def start(self) -> None:
        self.started += 1

    async def snapshot(self) -> Any:
        return {"snapshot": True}

    async def poll(self) -> Any | None:
        self.polls += 1
        changed, self.changes = self.changes, 0
        return {"changes": changed} if changed else None


def decode(message: bytes) -> tuple[str, Any]:
    event, data = message.decode().strip().split("\n")
    return event.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))


async def test_an_sse_message_is_one_event_line_and_one_json_data_line() -> None:
    assert sse_event("update", {"a": 1}) == b'event: update\ndata: {"a":1}\n\n'


async def test_a_burst_of_changes_reaches_a_page_as_one_update_per_interval() -> None:
    feed = CountingFeed()
    async with LiveHub(interval=0.05) as hub, hub.subscribe("t", lambda: feed) as (sub, _):
        messages = sub.messages()
        for _ in range(500):
            feed.changes += 1
            await asyncio.sleep(0)
        first = decode(await anext(messages))
        for _ in range(300):
            feed.changes += 1
        second = decode(await anext(messages))
    assert first[0] == second[0] == "update"
    assert first[1]["changes"] + second[1]["changes"] == 800
    assert hub.stats.updates == 2


async def test_pages_of_one_topic_share_one_feed_and_its_poller() -> None:
    feeds: list[CountingFeed] = []

    def make() -> CountingFeed:
        feeds.append(CountingFeed())
        return feeds[-1]

    async with (
        LiveHub(interval=0.02) as hub,
        hub.subscribe("t", make) as (a, _),
        hub.subscribe("t", make) as (b, _),
    ):
        feeds[0].changes = 3
        got = [decode(await anext(s.messages())) for s in (a, b)]
        assert hub.stats.topics == 1 and hub.stats.pages == 2
    assert len(feeds) == 1 and feeds[0].started == 1
    assert got == [("update", {"changes": 3})] * 2


async def test_a_page_that_does_not_read_is_dropped_and_the_others_go_on() -> None:
    feed = CountingFeed()
    async with (
        LiveHub(interval=0.01, queue_size=2) as hub,
        hub.subscribe("t", lambda: feed) as (slow, _),
        hub.subscribe("t", lambda: feed) as (fast, _),
    ):
        reader = fast.messages()
        for _ in range(6):
            feed.changes += 1
            await anext(reader)
        assert slow.dropped and not fast.dropped
        assert [m async for m in slow.messages()] == []
    assert hub.stats.dropped >= 1


async def test_the_poller_stops_when_the_last_page_leaves() -> None:
    feed = CountingFeed()
    async with LiveHub(interval=0.01) as hub:
        async with hub.subscribe("t", lambda: feed):
            await asyncio.sleep(0.05)
        polls = feed.polls
        await asyncio.sleep(0.05)
        assert feed.polls == polls and hub.stats.topics == 0


async def test_a_feed_that_cannot_start_ends_its_pages_with_an_error() -> None:
    class Broken(CountingFeed):
        async def start(self) -> None:
            raise ConnectionError("redis down")

    async with LiveHub() as hub:
        with pytest.raises(RuntimeError, match="could not start"):
            async with hub.subscribe("t", Broken):
                pass


async def test_a_page_waits_for_a_hub_that_is_still_starting() -> None:
    hub = LiveHub(interval=0.01)
    stop = asyncio.Event()
    feed = CountingFeed()

    async def page() -> Any:
        async with hub.subscribe("t", lambda: feed) as (_, shared):
            return await shared.snapshot()

    waiting = asyncio.create_task(page())
    await asyncio.sleep(0.02)
    running = asyncio.create_task(hub.run(stop))
    assert await waiting == {"snapshot": True}
    stop.set()
    await running


async def test_a_hub_that_never_runs_refuses_pages_after_its_start_wait() -> None:
    hub = LiveHub(start_wait=0.01)
    with pytest.raises(RuntimeError, match="outside"):
        async with hub.subscribe("t", CountingFeed):
            pass
