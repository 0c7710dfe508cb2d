"""What every transport does with one decoded CloudEvent, in one place.

Dedupe lookup, dispatch to the processor, waiting out a Redis outage, and turning every
failure into an error response. Transports only decode the envelope before and route
the returned events after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from microdcs.cloudevent import CloudEvent
from microdcs.errors import InputError, StorageUnavailableError
from microdcs.processor import CloudEventProcessor, MessageContext, error_event
from microdcs.storage.dedupe import Deduplicator

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class TransportStats:
    """Counters of one transport; exported as metrics and read by tests."""

    received: int = 0
    processed: int = 0
    duplicates: int = 0
    dropped: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    def fail(self, kind: str) -> None:
        self.failed[kind] += 1


class EventPipeline:
    """Processes one incoming event for one processor and returns the events to send."""

    def __init__(
        self,
        *,
        source: str,
        stats: TransportStats,
        dedupe: Deduplicator | None,
        storage_retry_seconds: float,
    ) -> None:
        self._source = source
        self._stats = stats
        self._dedupe = dedupe
        self._retry_seconds = storage_retry_seconds

    def reject(self, event: CloudEvent | None, error: InputError) -> CloudEvent:
        """Count and log a rejected input; return the error response to send."""
        self._stats.fail(error.kind)
        ident = f"{event.type} {event.id}" if event is not None else "undecodable message"
        logger.warning("rejected %s: %s (%s)", ident, error.message, error.kind)
        return error_event(event, error, source=self._source)

    async def process(
        self, event: CloudEvent, processor: CloudEventProcessor, context: MessageContext
    ) -> list[CloudEvent]:
        """Responses for ``event``; never raises except on cancellation."""
        deadline = time.monotonic() + self._retry_seconds
        delay = 0.1
        while True:
            try:
                return await self._process_once(event, processor, context)
            except InputError as error:
                return [self.reject(event, error)]
            except StorageUnavailableError as error:
                if time.monotonic() + delay > deadline:
                    self._stats.fail(error.kind)
                    logger.error("giving up on %s %s: %s", event.type, event.id, error)
                    return [error_event(event, error, source=self._source)]
                logger.warning("waiting for Redis to handle %s %s: %s", event.type, event.id, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception as error:
                self._stats.fail("internal_error")
                logger.exception("handler of %s failed on %s", event.type, event.id)
                return [error_event(event, error, source=self._source)]

    async def _process_once(
        self, event: CloudEvent, processor: CloudEventProcessor, context: MessageContext
    ) -> list[CloudEvent]:
        if self._dedupe is not None:
            previous = await self._dedupe.lookup(event.source, event.id)
            if previous is not None:
                self._stats.duplicates += 1
                logger.info("duplicate %s %s from %s", event.type, event.id, event.source)
                return previous
        responses = await processor.dispatch(event, context)
        if self._dedupe is not None:
            await self._dedupe.mark(event.source, event.id, responses)
        self._stats.processed += 1
        return responses
