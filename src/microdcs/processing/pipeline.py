"""What every transport does with one decoded CloudEvent, in one place.

Dedupe claim (or the wait for another copy's responses), dispatch to the processor,
waiting out a Redis outage, and turning every failure into an error response.
Transports only decode the envelope before and route the returned events after. Dedupe
claims are batched per event-loop iteration
(:class:`~microdcs.processing.dedupe.BatchLookup`): a transport that can claim its
events while they wait for a worker does (:meth:`EventPipeline.prefetcher`); the
others get the same batched claim inside :meth:`EventPipeline.process`.
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
from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import InputError, OutgoingEventError, StorageUnavailableError
from microdcs.core.tracing import Tracing
from microdcs.processing.dedupe import (
    BatchDelivery,
    BatchLookup,
    ClaimWait,
    EventDedupe,
    Prefetchable,
    Prefetched,
    release_soon,
)
from microdcs.processing.processor import CloudEventProcessor, MessageContext, error_event

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", bound=Prefetchable)

__all__ = ["EventPipeline", "LatencyRecorder", "Prefetched", "ResponseSink", "TransportStats"]


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
class _Waiter:
    """An event whose dedupe claim :meth:`EventPipeline.process` batches and awaits."""

    prefetched: Prefetched | None
    done: asyncio.Future[Prefetched]


def _wake(batch: list[_Waiter], error: BaseException | None) -> None:
    # A failed claim comes back unanswered: the pipeline claims it again alone.
    for waiter in batch:
        if not waiter.done.done() and waiter.prefetched is not None:  # else: cancelled
            waiter.done.set_result(waiter.prefetched)


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
        dedupe: EventDedupe | None,
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
        self._waiters: BatchLookup[_Waiter] | None = (
            None if dedupe is None else BatchLookup(dedupe, _wake)
        )

    @property
    def dedupe(self) -> EventDedupe | None:
        """The duplicate registry (``None``: duplicate detection is off)."""
        return self._dedupe

    def prefetcher(self, deliver: BatchDelivery[P]) -> BatchLookup[P] | None:
        """A batched dedupe claim for a transport's received items (``None``: dedupe off).

        The transport adds each decoded event as it arrives and passes the item's
        ``prefetched`` to :meth:`process`; ``deliver`` gets every batch once looked up.
        """
        return None if self._dedupe is None else BatchLookup(self._dedupe, deliver)

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
        # Without an exporter or a trace to continue this is a no-op (inside Tracing).
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

    def _duplicate(self, event: CloudEvent) -> None:
        """Count and log (bounded) a copy of an event already handled."""
        self._stats.duplicates += 1
        self._log.log(
            logging.INFO, "duplicate", "duplicate %s %s from %s", event.type, event.id, event.source
        )

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
        most once, even when recording the event for dedupe has to wait. The handler runs
        only while this copy holds the event's dedupe claim; a copy that finds another
        holder's claim waits for its record and answers with those responses. A claim
        that ends without a record (an error not recorded, cancellation) is released.
        """
        deadline = time.monotonic() + self._retry_seconds
        # A type declared idempotent (``handles(..., deduplicate=False)``): no claim, no
        # record. A transport does not prefetch a claim for it either.
        dedupe = self._dedupe if processor.deduplicates(event.type) else None
        claim: Prefetched | None = None  # ours (or maybe ours): released unless recorded
        handled = False  # True: the processor's own responses, to record for dedupe
        try:
            previous: list[CloudEvent] | None = None
            if dedupe is not None:
                if prefetched is None:  # batched with the other events of this iteration
                    prefetched = await self._batched(event)
                claim = prefetched
                if not prefetched.answered or prefetched.record is not None:
                    previous = await self._settle(dedupe, event, prefetched, deadline)
                    if previous is not None:
                        claim = None
                # else the common case, a new event claimed by the batch: no coroutine more
            if previous is not None:
                self._duplicate(event)
                responses = previous
            else:
                try:
                    responses = await processor.dispatch(event, context)
                except StorageUnavailableError as error:
                    responses = await self._retrying(
                        deadline, "handle", event, lambda: processor.dispatch(event, context), error
                    )
                handled = True
                if context.repeated:  # the handler's own state knew it: counted alike
                    self._duplicate(event)
        except InputError as error:
            responses = [self.reject(event, error)]
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
            responses = [error_event(event, error, source=self._source)]
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
            responses = [error_event(event, error, source=self._source)]
        except Exception as error:
            self._stats.fail("internal_error")
            logger.exception("handler of %s failed on %s", event.type, event.id)
            responses = [error_event(event, error, source=self._source)]
        except asyncio.CancelledError:
            if dedupe is not None and claim is not None and not handled:
                release_soon(dedupe, claim)  # e.g. past the shutdown grace
            raise
        if send is not None:  # the one way out: before the dedupe record, never twice
            send(responses)
        if not handled:
            if dedupe is not None and claim is not None:
                await self._release(dedupe, claim, event)
            return responses
        if dedupe is not None and claim is not None:
            key = claim.key
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

    async def _settle(
        self, dedupe: EventDedupe, event: CloudEvent, claim: Prefetched, deadline: float
    ) -> list[CloudEvent] | None:
        """The recorded responses of ``event``, or ``None`` once this copy holds its claim.

        Another holder's claim is waited for (:class:`ClaimWait`: short polls with
        back-off), looking again with the same claim command: it returns the record once
        there, or takes the key for us once the other claim was released or expired.
        """
        key, marker = claim.key, claim.marker
        raw = claim.record if claim.answered else await self._claim(dedupe, event, claim, deadline)
        wait: ClaimWait | None = None
        while raw is not None and raw != marker:
            if not dedupe.is_claim(raw):
                return dedupe.recorded(raw)
            if wait is None:
                wait = ClaimWait(dedupe.claim_seconds)
            delay = wait.next_delay(raw, time.monotonic())
            if delay is None:
                raise StorageUnavailableError(
                    f"{key} is still claimed by one holder after {dedupe.claim_seconds:.1f}s"
                )
            await asyncio.sleep(delay)
            raw = await self._claim(dedupe, event, claim, deadline)
        return None

    async def _claim(
        self, dedupe: EventDedupe, event: CloudEvent, claim: Prefetched, deadline: float
    ) -> bytes | None:
        """One claim command for ``claim``, an outage waited out (the same marker again)."""
        try:
            return await dedupe.claim(claim.key, claim.marker)
        except StorageUnavailableError as error:
            return await self._retrying(
                deadline, "claim", event, lambda: dedupe.claim(claim.key, claim.marker), error
            )

    async def _release(self, dedupe: EventDedupe, claim: Prefetched, event: CloudEvent) -> None:
        """Give up the claim of an event processed without a response to record, so a
        retry (or a copy waiting for it) processes it at once instead of after the claim
        time. Best effort: a claim left behind still expires."""
        try:
            await dedupe.release(claim.key, claim.marker)
        except Exception as error:  # Redis unavailable or refusing: the claim expires
            self._log.log(
                logging.WARNING,
                "dedupe_release",
                "could not release the dedupe claim of %s %s (it expires in %.0fs): %s",
                event.type,
                event.id,
                dedupe.claim_seconds,
                str(error),
            )

    def _batched(self, event: CloudEvent) -> asyncio.Future[Prefetched]:
        """The dedupe claim of ``event``, made with the rest of this iteration's.

        A plain function returning the future: no coroutine of its own per message.
        """
        assert self._waiters is not None
        waiter = _Waiter(None, asyncio.get_running_loop().create_future())
        self._waiters.add(waiter, event)
        return waiter.done

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
