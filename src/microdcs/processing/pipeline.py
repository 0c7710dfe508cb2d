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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from microdcs.core.boundedlog import DEFAULT_VALUE_CHARS, RateLimitedLog
from microdcs.core.cloudevent import TRACEPARENT, CloudEvent
from microdcs.core.errors import InputError, OutgoingEventError, StorageUnavailableError
from microdcs.core.tracing import Tracing
from microdcs.processing.processor import CloudEventProcessor, MessageContext, error_event
from microdcs.storage.dedupe import Deduplicator

logger = logging.getLogger(__name__)

T = TypeVar("T")


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


#: Receives the responses of an event as soon as they are known (see ``process``).
ResponseSink = Callable[[list[CloudEvent]], None]


@dataclass(slots=True)
class Prefetched:
    """A dedupe lookup a transport already made, e.g. for a whole batch in one command."""

    key: str
    record: bytes | None  # what Redis holds under ``key``: None for a new event


class LatencyRecorder(Protocol):
    """Where the pipeline reports each event's handling time (a metrics histogram)."""

    def record(self, event_type: str, seconds: float, failed: bool) -> None: ...


class EventPipeline:
    """Processes one incoming event for one processor and returns the events to send."""

    def __init__(
        self,
        *,
        source: str,
        stats: TransportStats,
        dedupe: Deduplicator | None,
        storage_retry_seconds: float,
        latency: LatencyRecorder | None = None,
        tracing: Tracing | None = None,
        log_value_chars: int = DEFAULT_VALUE_CHARS,
    ) -> None:
        self._source = source
        self._stats = stats
        self._dedupe = dedupe
        self._retry_seconds = storage_retry_seconds
        self._latency = latency
        self._tracing = tracing or Tracing()
        self._log = RateLimitedLog(logger, value_chars=log_value_chars)

    @property
    def dedupe(self) -> Deduplicator | None:
        """The duplicate registry, for transports that look up a batch of events at once."""
        return self._dedupe

    @property
    def source(self) -> str:
        """The ``source`` of the events this runtime sends."""
        return self._source

    def reject(self, event: CloudEvent | None, error: InputError) -> CloudEvent:
        """Count and log a rejected input; return the error response to send.

        The log is bounded: a few lines per kind and period, each value clipped, since
        a client can send bad input as fast as the broker carries it.
        """
        self._stats.fail(error.kind)
        if event is not None:
            self._log.log(
                logging.WARNING,
                error.kind,
                "rejected %s %s: %s (%s)",
                event.type,
                event.id,
                error.message,
                error.kind,
            )
        else:
            self._log.log(
                logging.WARNING,
                error.kind,
                "rejected undecodable message: %s (%s)",
                error.message,
                error.kind,
            )
        return error_event(event, error, source=self._source)

    async def process(
        self,
        event: CloudEvent,
        processor: CloudEventProcessor,
        context: MessageContext,
        send: ResponseSink | None = None,
        prefetched: Prefetched | None = None,
    ) -> list[CloudEvent]:
        """Responses for ``event``; never raises except on cancellation.

        With ``send``, the responses are handed over as soon as they are known: for a
        handled event that is before recording it for dedupe, so the reply does not wait
        a Redis round trip; this method still returns only once the record is stored (or
        given up), and a transport acknowledges the event only then. With ``prefetched``
        the dedupe lookup is already made (it must be the record of this event's key).

        The one per-message measurement of the runtime happens here: handling time by
        type, and whether the answer is an error.
        """
        started = time.perf_counter()
        if not self._tracing.enabled and TRACEPARENT not in event.extensions:
            # Nothing to record and no trace to continue: skip the span machinery, which
            # costs more than the rest of a simple handler.
            responses = await self._process(event, processor, context, send, prefetched)
            error_kind = responses[0].error_kind if responses else None
        else:
            with self._tracing.consume(
                event, system=context.transport, destination=context.destination
            ) as span:
                responses = await self._process(event, processor, context, send, prefetched)
                error_kind = responses[0].error_kind if responses else None
                if error_kind is not None:
                    Tracing.mark_error(
                        span,
                        error_kind,
                        str(responses[0].extensions.get("mdcserrormessage", error_kind)),
                    )
        if self._latency is not None:
            self._latency.record(event.type, time.perf_counter() - started, error_kind is not None)
        return responses

    async def _process(
        self,
        event: CloudEvent,
        processor: CloudEventProcessor,
        context: MessageContext,
        send: ResponseSink | None,
        prefetched: Prefetched | None,
    ) -> list[CloudEvent]:
        """:meth:`process` without the measurement; calls ``send`` exactly once.

        A Redis outage is waited out (with back-off, up to the retry period) at each step,
        and a step that succeeded is never repeated: in particular the handler runs at
        most once, even when recording the event for dedupe has to wait.
        """
        deadline = time.monotonic() + self._retry_seconds
        dedupe = self._dedupe
        key = ""
        try:
            if dedupe is not None:
                if prefetched is not None:
                    key = prefetched.key
                    previous = dedupe.recorded(prefetched.record)
                else:
                    key = dedupe.key(event.source, event.id)
                    try:  # the first attempt without the retry machinery: the common case
                        previous = await dedupe.lookup(key)
                    except StorageUnavailableError as error:
                        previous = await self._retrying(
                            deadline, "look up", event, lambda: dedupe.lookup(key), error
                        )
                if previous is not None:
                    self._stats.duplicates += 1
                    self._log.log(
                        logging.INFO,
                        "duplicate",
                        "duplicate %s %s from %s",
                        event.type,
                        event.id,
                        event.source,
                    )
                    return _sent(previous, send)
            try:
                responses = await processor.dispatch(event, context)
            except StorageUnavailableError as error:
                responses = await self._retrying(
                    deadline, "handle", event, lambda: processor.dispatch(event, context), error
                )
        except InputError as error:
            return _sent([self.reject(event, error)], send)
        except StorageUnavailableError as error:
            self._stats.fail(error.kind)
            self._log.log(
                logging.ERROR,
                "storage_gave_up",
                "giving up on %s %s: %s",
                event.type,
                event.id,
                str(error),
            )
            return _sent([error_event(event, error, source=self._source)], send)
        except OutgoingEventError as error:
            # The handler tried to send something the broker would refuse: its bug, but
            # it must neither reach the broker nor pass for an internal crash.
            self._stats.fail(error.kind)
            self._log.log(
                logging.ERROR,
                error.kind,
                "handler of %s refused an outgoing event on %s: %s",
                event.type,
                event.id,
                error.message,
            )
            return _sent([error_event(event, error, source=self._source)], send)
        except Exception as error:
            self._stats.fail("internal_error")
            logger.exception("handler of %s failed on %s", event.type, event.id)
            return _sent([error_event(event, error, source=self._source)], send)
        _sent(responses, send)
        if dedupe is not None:
            try:
                try:
                    await dedupe.mark(key, responses)
                except StorageUnavailableError as error:
                    await self._retrying(
                        deadline, "record", event, lambda: dedupe.mark(key, responses), error
                    )
            except StorageUnavailableError as error:
                # The effect happened and its responses went out; only duplicate detection
                # of this one event is lost.
                self._log.log(
                    logging.ERROR,
                    "dedupe_record",
                    "could not record %s %s for dedupe: %s",
                    event.type,
                    event.id,
                    str(error),
                )
        self._stats.processed += 1
        return responses

    async def _retrying(
        self,
        deadline: float,
        what: str,
        event: CloudEvent,
        step: Callable[[], Awaitable[T]],
        error: StorageUnavailableError,
    ) -> T:
        """Repeat ``step``, whose first attempt failed with ``error``, with back-off.

        Gives up (re-raises) when the next attempt would start after ``deadline``.
        """
        delay = 0.1
        while True:
            if time.monotonic() + delay > deadline:
                raise error
            # Every waiting event would log a line per attempt: a few per period suffice.
            self._log.log(
                logging.WARNING,
                "storage_wait",
                "waiting for Redis to %s %s %s: %s",
                what,
                event.type,
                event.id,
                str(error),
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            try:
                return await step()
            except StorageUnavailableError as again:
                error = again


def _sent(responses: list[CloudEvent], send: ResponseSink | None) -> list[CloudEvent]:
    if send is not None:
        send(responses)
    return responses
