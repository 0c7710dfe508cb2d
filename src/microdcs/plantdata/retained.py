"""The retained ``{prefix}/{scope}/cvt/{tag}`` topics: each tag's current value, paced.

A tag that changed is published at most once per interval, with what Redis holds at
that moment (read per scope in chunks), so a 10 kHz tag costs one message per interval
and the latest value wins. Any replica that stores a change publishes the tag; since each
publishes what Redis holds when it publishes, the last message on a topic shows a value
at least as recent as the last one either replica saw.

The work is O(changes), not O(tags): a change of a tag already waiting costs one set
lookup; a waiting tag sits in the bucket of the flush it is due at (tags published by one
flush are due together one interval later), so a wake only takes the buckets that are
due. A large flush yields to the loop every :data:`CHUNK` publishes, so a burst of
retained messages does not hold up the alarm path.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import orjson

from microdcs.core.errors import MicroDCSError
from microdcs.core.waiting import sleep_unless
from microdcs.plantdata.contract import TagChange, TagSample
from microdcs.plantdata.ports import RetainedOutlet
from microdcs.plantdata.tags import sample_raw
from microdcs.storage.outage import OutageLog

logger = logging.getLogger(__name__)

#: ``read(scope, tags)``: the current samples (the table's read).
Read = Callable[[str, Sequence[str]], Awaitable[Mapping[str, TagSample]]]

#: Tags read and published between two yields to the event loop.
CHUNK = 100

_Key = tuple[str, str]


class CvtPublisher:
    """Publishes the retained cvt topic of each tag this replica changed."""

    def __init__(
        self,
        outlet: RetainedOutlet,
        topic: Callable[[str, str], str],
        read: Read,
        *,
        interval: float = 0.2,
    ) -> None:
        self.outlet = outlet
        self.topic = topic
        self.read = read
        self.interval = interval
        self.published = 0
        #: Tags waiting for publication (each in ``_now`` or in one bucket of ``_later``).
        self._dirty: set[_Key] = set()
        #: Waiting tags that may be published at once (not published for an interval).
        self._now: list[_Key] = []
        #: Due time -> the waiting tags due then; ``_due`` is a heap of those times.
        self._later: dict[float, list[_Key]] = {}
        self._due: list[float] = []
        #: When each tag was last published (monotonic).
        self._last: dict[_Key, float] = {}
        self._wake = asyncio.Event()
        self.outage = OutageLog(logger, "cvt publication")

    def changed(self, scope: str, changes: Sequence[TagChange]) -> None:
        """Changes of ``scope`` were stored: publish their tags (within the interval).

        A tag already waiting adds nothing but a set lookup; the task is woken only when
        a tag may go at once or is due before anything else waiting."""
        dirty = self._dirty
        now = -1.0
        wake = False
        for change in changes:
            key = (scope, change.sample.tag)
            if key in dirty:
                continue
            dirty.add(key)
            last = self._last.get(key)
            if now < 0:
                now = time.monotonic()
            if last is None or now - last >= self.interval:
                self._now.append(key)
                wake = True
                continue
            due = last + self.interval
            bucket = self._later.get(due)
            if bucket is None:
                self._later[due] = bucket = []
                heapq.heappush(self._due, due)
                wake = wake or self._due[0] == due
            bucket.append(key)
        if wake:
            self._wake.set()

    async def removed(self, scope: str, tag: str) -> None:
        """The tag was deleted: its retained message goes too (and nothing is pending)."""
        self._dirty.discard((scope, tag))  # a stale entry in a bucket is skipped
        self._last.pop((scope, tag), None)
        await self.outlet.delete_nowait(self.topic(scope, tag))

    async def run(self, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set():
            self._wake.clear()
            now = time.monotonic()
            due = self._take(now)
            delay = 0.0
            if due:
                last = self._last
                for key in due:
                    last[key] = now
                try:
                    await self._publish(due)
                    self.outage.recovered()
                except MicroDCSError as exc:
                    self._retry(due)
                    delay = self.outage.failed(exc)
            if not delay:
                delay = self._until_due(time.monotonic())
            await self._sleep(shutdown, delay)

    def _take(self, now: float) -> list[_Key]:
        """The waiting tags due at ``now``, no longer waiting (each once)."""
        candidates: list[Iterable[_Key]] = [self._now]
        self._now = []
        heap = self._due
        while heap and heap[0] <= now:
            candidates.append(self._later.pop(heapq.heappop(heap)))
        dirty = self._dirty
        due: list[_Key] = []
        for keys in candidates:
            for key in keys:
                if key in dirty:  # else removed meanwhile, or already taken
                    dirty.discard(key)
                    due.append(key)
        return due

    def _retry(self, keys: Sequence[_Key]) -> None:
        """A failed flush: its tags wait again, to go once the outage delay is over."""
        for key in keys:
            if key not in self._dirty:  # else changed again meanwhile: already waiting
                self._dirty.add(key)
                self._now.append(key)

    def _until_due(self, now: float) -> float:
        """Seconds until the first waiting tag is due (an hour when none waits)."""
        if self._now:
            return 0.0
        if not self._due:
            return 3600.0
        return max(0.0, self._due[0] - now)

    async def _publish(self, due: Sequence[_Key]) -> None:
        by_scope: dict[str, list[str]] = {}
        for scope, tag in due:
            by_scope.setdefault(scope, []).append(tag)
        sent: list[Awaitable[None]] = []
        for scope, tags in by_scope.items():
            for start in range(0, len(tags), CHUNK):
                if start:
                    await asyncio.sleep(0)  # let the alarm path run between chunks
                samples = await self.read(scope, tags[start : start + CHUNK])
                for tag, sample in samples.items():
                    payload = orjson.dumps(sample_raw(sample))
                    sent.append(
                        self.outlet.publish_nowait(self.topic(scope, tag), payload, expiry=None)
                    )
        await asyncio.gather(*sent)
        self.published += len(sent)

    async def _sleep(self, shutdown: asyncio.Event, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await sleep_unless(seconds, shutdown, self._wake)
