"""Requests this replica sent and awaits a response to, with their expiry."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from dataclasses import dataclass

from microdcs.core.cloudevent import CloudEvent
from microdcs.processing.processor import CloudEventProcessor

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class AwaitedResponse:
    processor: CloudEventProcessor
    request: CloudEvent
    expires_at: float


class ResponseTracker:
    """Matches responses by correlation key and calls ``on_expired`` for the rest."""

    def __init__(self) -> None:
        self._awaited: dict[bytes, AwaitedResponse] = {}
        self._deadlines: list[tuple[float, bytes]] = []
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._awaited)

    def add(
        self, key: bytes, processor: CloudEventProcessor, request: CloudEvent, ttl: float
    ) -> None:
        expires_at = time.monotonic() + ttl
        self._awaited[key] = AwaitedResponse(processor, request, expires_at)
        heapq.heappush(self._deadlines, (expires_at, key))
        self._wakeup.set()

    def pop(self, key: bytes) -> AwaitedResponse | None:
        """The awaited request for a response's correlation key (once)."""
        return self._awaited.pop(key, None)

    async def run(self) -> None:
        """Fire expiry hooks until cancelled."""
        while True:
            timeout = None
            if self._deadlines:
                timeout = max(0.0, self._deadlines[0][0] - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            self._wakeup.clear()
            now = time.monotonic()
            while self._deadlines and self._deadlines[0][0] <= now:
                _, key = heapq.heappop(self._deadlines)
                entry = self._awaited.get(key)
                if entry is None or entry.expires_at > now:
                    continue
                del self._awaited[key]
                try:
                    await entry.processor.on_expired(entry.request)
                except Exception:
                    logger.exception("on_expired hook of %s failed", entry.processor.name)
