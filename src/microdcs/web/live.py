"""Live updates for the pages: one poller per watched topic, fanned out to bounded queues.

Why this shape: a busy line changes hundreds of jobs and thousands of tags a second, and
a browser needs at most about ten updates a second. So each *topic* (a scope's job list,
one job, a scope's alarms, a scope's tags) has one :class:`Feed` that the hub asks for
what changed once per interval, however many pages watch it, and however many changes
arrived meanwhile: the changes coalesce in Redis, not in memory. Each page has a small
queue; a page that does not keep up is dropped (its browser's EventSource reconnects and
starts again from a fresh snapshot), so a slow client never holds back the others or the
runtime. A topic's poller runs only while some page watches it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

__all__ = ["Feed", "HubStats", "LiveHub", "Subscription", "sse_event"]

logger = logging.getLogger(__name__)


class Feed(Protocol):
    """What one topic shows: a full snapshot for a new page, then changes per poll.

    :meth:`poll` reports complete new values (a whole row, a whole alarm), never deltas,
    so an update a page also saw in its snapshot does no harm.
    """

    async def start(self) -> None:
        """Remember where the sources stand (called once, before any snapshot)."""
        ...

    async def snapshot(self) -> Any:
        """Everything the page shows, as JSON-ready values."""
        ...

    async def poll(self) -> Any | None:
        """What changed since the last poll (``None``: nothing)."""
        ...


def sse_event(event: str, data: Any) -> bytes:
    """One Server-Sent Events message (``data`` as one line of JSON)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


KEEPALIVE = b": keepalive\n\n"


@dataclass(slots=True)
class HubStats:
    """Counters for the metrics endpoint and the benchmark."""

    pages: int = 0
    topics: int = 0
    updates: int = 0
    dropped: int = 0
    poll_errors: int = 0
    #: Seconds spent in polls, summed (the web part's share of the loop).
    poll_seconds: float = 0.0


class Subscription:
    """One page's view of a topic: its queue of encoded messages."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)
        self.dropped = False

    def offer(self, message: bytes) -> bool:
        """Queue ``message``; False (and the page is dropped) when the queue is full."""
        if self.dropped:
            return False
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.drop()
            return False
        return True

    def drop(self) -> None:
        """End this page's stream: what it has queued is discarded."""
        self.dropped = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def messages(self, *, keepalive: float = 15.0) -> AsyncIterator[bytes]:
        """Queued messages (and a comment every ``keepalive`` s) until dropped."""
        while True:
            try:
                message = await asyncio.wait_for(self._queue.get(), keepalive)
            except TimeoutError:
                yield KEEPALIVE
                continue
            if message is None:
                return
            yield message


@dataclass(eq=False)
class _Topic:
    feed: Feed
    subscribers: set[Subscription] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    failed: BaseException | None = None
    last_error_log: float = 0.0


class LiveHub:
    """The topics the pages watch; used as ``async with`` inside the web server's life."""

    def __init__(
        self, *, interval: float = 0.1, queue_size: int = 32, start_wait: float = 5.0
    ) -> None:
        if interval <= 0 or queue_size < 1:
            raise ValueError("interval must be > 0 and queue_size >= 1")
        self.interval = interval
        self.queue_size = queue_size
        self.start_wait = start_wait
        self.stats = HubStats()
        self._topics: dict[Hashable, _Topic] = {}
        self._group: asyncio.TaskGroup | None = None
        self._running = asyncio.Event()

    async def run(self, shutdown: asyncio.Event) -> None:
        """The hub as an application task: running until ``shutdown`` is set."""
        async with self:
            await shutdown.wait()

    async def __aenter__(self) -> LiveHub:
        if self._group is not None:
            raise RuntimeError("LiveHub is already running")
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._running.set()
        return self

    async def __aexit__(self, *exc: object) -> None:
        group, self._group = self._group, None
        self._running.clear()
        for topic in self._topics.values():
            for sub in list(topic.subscribers):
                sub.drop()
            if topic.task is not None:
                topic.task.cancel()
        self._topics.clear()
        if group is not None:
            await group.__aexit__(None, None, None)

    @asynccontextmanager
    async def subscribe(
        self, key: Hashable, make_feed: Callable[[], Feed]
    ) -> AsyncIterator[tuple[Subscription, Feed]]:
        """Watch topic ``key`` (its feed built by ``make_feed`` if no page watches it
        yet); yields the page's subscription and the feed to take its snapshot from.

        A page that arrives while the hub is starting waits for it up to ``start_wait``
        seconds (the server and the hub start side by side as two tasks)."""
        if self._group is None:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._running.wait(), self.start_wait)
        if self._group is None:
            raise RuntimeError("LiveHub is used outside its 'async with'")
        topic = self._topics.get(key)
        if topic is None:
            topic = _Topic(make_feed())
            self._topics[key] = topic
            topic.task = self._group.create_task(self._run(key, topic))
            self.stats.topics = len(self._topics)
        sub = Subscription(self.queue_size)
        topic.subscribers.add(sub)
        self.stats.pages += 1
        try:
            await topic.ready.wait()
            if topic.failed is not None:
                raise RuntimeError(f"live feed {key!r} could not start") from topic.failed
            yield sub, topic.feed
        finally:
            self.stats.pages -= 1
            topic.subscribers.discard(sub)
            if not topic.subscribers and self._topics.get(key) is topic:
                del self._topics[key]
                self.stats.topics = len(self._topics)
                if topic.task is not None:
                    topic.task.cancel()

    async def _run(self, key: Hashable, topic: _Topic) -> None:
        loop = asyncio.get_running_loop()
        try:
            await topic.feed.start()
        except Exception as error:  # a page's source is down: its pages end, we go on
            logger.warning("live feed %r could not start: %s", key, error)
            topic.failed = error
            topic.ready.set()
            return
        topic.ready.set()
        # Runs until the last page leaves (``subscribe`` cancels it then).
        while True:
            began = loop.time()
            try:
                update = await topic.feed.poll()
            except Exception as error:  # outermost loop of the topic's task
                self.stats.poll_errors += 1
                if time.monotonic() - topic.last_error_log > 10.0:
                    topic.last_error_log = time.monotonic()
                    logger.warning("live feed %r failed: %s", key, error)
                update = None
            spent = loop.time() - began
            self.stats.poll_seconds += spent
            if update is not None:
                message = sse_event("update", update)
                self.stats.updates += 1
                for sub in list(topic.subscribers):
                    if not sub.dropped and not sub.offer(message):
                        self.stats.dropped += 1
            await asyncio.sleep(max(self.interval - spent, 0.0))
