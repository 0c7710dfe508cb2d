"""The retained ``{prefix}/{scope}/cvt/{tag}`` topics: each tag's current value, paced.

A tag that changed is published at most once per interval, with what Redis holds at
that moment (read for all due tags of a scope in one round trip), so a 10 kHz tag costs
one message per interval and the latest value wins. Any replica that stores a change
publishes the tag; since each publishes what Redis holds when it publishes, the last
message on a topic shows a value at least as recent as the last one either replica saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import orjson

from microdcs.core.errors import MicroDCSError
from microdcs.plantdata.contract import TagChange, TagSample
from microdcs.plantdata.ports import RetainedOutlet
from microdcs.plantdata.tags import sample_raw
from microdcs.storage.outage import OutageLog

logger = logging.getLogger(__name__)

#: ``read(scope, tags)``: the current samples (the table's read).
Read = Callable[[str, Sequence[str]], Awaitable[Mapping[str, TagSample]]]


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
        self._dirty: set[tuple[str, str]] = set()
        self._last: dict[tuple[str, str], float] = {}
        self._wake = asyncio.Event()
        self.outage = OutageLog(logger, "cvt publication")

    def changed(self, scope: str, changes: Sequence[TagChange]) -> None:
        """Changes of ``scope`` were stored: publish their tags (within the interval).

        Only a tag not already waiting wakes the task: a 10 kHz tag adds no work here
        beyond a set lookup per change."""
        dirty = self._dirty
        fresh = False
        for change in changes:
            key = (scope, change.sample.tag)
            if key not in dirty:
                dirty.add(key)
                fresh = True
        if fresh:
            self._wake.set()

    async def removed(self, scope: str, tag: str) -> None:
        """The tag was deleted: its retained message goes too (and nothing is pending)."""
        self._dirty.discard((scope, tag))
        self._last.pop((scope, tag), None)
        await self.outlet.delete_nowait(self.topic(scope, tag))

    async def run(self, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set():
            self._wake.clear()
            now = time.monotonic()
            last = self._last
            due = [key for key in self._dirty if now - last.get(key, -1e9) >= self.interval]
            delay = 0.0
            if due:
                self._dirty.difference_update(due)
                for key in due:
                    last[key] = now
                try:
                    await self._publish(due)
                    self.outage.recovered()
                except MicroDCSError as exc:
                    self._dirty.update(due)
                    delay = self.outage.failed(exc)
            if not delay:
                delay = self._until_due(time.monotonic())
            await self._sleep(shutdown, delay)

    def _until_due(self, now: float) -> float:
        """Seconds until the first waiting tag is due (an hour when none waits)."""
        if not self._dirty:
            return 3600.0
        first = min(self._last.get(key, -1e9) for key in self._dirty) + self.interval
        return max(0.0, first - now)

    async def _publish(self, due: Sequence[tuple[str, str]]) -> None:
        by_scope: dict[str, list[str]] = {}
        for scope, tag in due:
            by_scope.setdefault(scope, []).append(tag)
        sent: list[Awaitable[None]] = []
        for scope, tags in by_scope.items():
            samples = await self.read(scope, tags)
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
        waiters = [asyncio.ensure_future(shutdown.wait()), asyncio.ensure_future(self._wake.wait())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
