"""EventPipeline: dedupe around dispatch, waiting out storage outages, never a second effect."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import StorageUnavailableError
from microdcs.models import Model
from microdcs.processing.pipeline import EventPipeline, TransportStats
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles

TYPE = "com.example.test.count.v1"


@dataclass(kw_only=True)
class Count(Model):
    __ce_type__: ClassVar[str] = TYPE
    n: int


class Counter(CloudEventProcessor):
    def __init__(self) -> None:
        super().__init__(source="test")
        self.calls = 0

    @handles(Count)
    async def count(self, message: Count, context: MessageContext) -> Model:
        self.calls += 1
        return Count(n=message.n + 1)


class FlakyDedupe:
    """Stands in for Deduplicator: its storage is down for the first ``failures`` calls.

    Claims and records behave as in Redis (``SET NX GET``: the first claim takes the
    key, later ones get what it holds); a record is a token naming its responses.
    """

    claim_seconds = 0.3

    def __init__(self, *, lookup_failures: int = 0, mark_failures: int = 0) -> None:
        self.lookup_failures = lookup_failures
        self.mark_failures = mark_failures
        self.marked: dict[tuple[str, str], list[CloudEvent]] = {}
        self.held: dict[tuple[str, str], bytes] = {}  # what each key holds
        self.records: dict[bytes, list[CloudEvent]] = {}
        self.released: list[tuple[str, str]] = []
        self.claims = 0

    def key(self, source: str, event_id: str) -> tuple[str, str]:
        return (source, event_id)

    def new_claim(self) -> bytes:
        self.claims += 1
        return b"claim-%d" % self.claims

    def _claim_now(self, key: tuple[str, str], marker: bytes) -> bytes | None:
        if key in self.held:
            return self.held[key]
        self.held[key] = marker
        return None

    def _maybe_down(self) -> None:
        if self.lookup_failures:
            self.lookup_failures -= 1
            raise StorageUnavailableError("down")

    async def claim(self, key: tuple[str, str], marker: bytes) -> bytes | None:
        self._maybe_down()
        return self._claim_now(key, marker)

    async def claim_many(
        self, claims: list[tuple[tuple[str, str], bytes]]
    ) -> list[bytes | BaseException | None]:
        """One batched claim: it fails as a whole like :meth:`claim`."""
        self._maybe_down()
        return [self._claim_now(key, marker) for key, marker in claims]

    def is_claim(self, raw: bytes) -> bool:
        return raw.startswith(b"claim-")

    def recorded(self, raw: bytes) -> list[CloudEvent]:
        return self.records[raw]

    async def mark(self, key: tuple[str, str], responses: list[CloudEvent]) -> None:
        if self.mark_failures:
            self.mark_failures -= 1
            raise StorageUnavailableError("down")
        self.marked[key] = responses
        raw = b"record-%d" % len(self.records)
        self.records[raw] = responses
        self.held[key] = raw

    def release(self, key: tuple[str, str], marker: bytes) -> asyncio.Future[None]:
        """Done at once, as a future (what a cancelled holder can send without awaiting)."""
        if self.held.get(key) == marker:
            del self.held[key]
            self.released.append(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _pipeline(dedupe: Any, retry: float = 5.0) -> tuple[EventPipeline, TransportStats]:
    stats = TransportStats()
    return EventPipeline(
        source="test", stats=stats, dedupe=dedupe, storage_retry_seconds=retry
    ), stats


def _event(event_id: str = "e1") -> CloudEvent:
    return CloudEvent(
        type=TYPE, source="mes", id=event_id, datacontenttype="application/json", data=b'{"n": 1}'
    )


async def test_handler_runs_once_when_recording_the_mark_waits_for_storage() -> None:
    processor = Counter()
    dedupe = FlakyDedupe(mark_failures=2)
    pipeline, stats = _pipeline(dedupe)
    event = _event()
    responses = await pipeline.process(event, processor, MessageContext(event, "test"))
    assert processor.calls == 1
    assert responses[0].data == b'{"n":2}'
    assert ("mes", "e1") in dedupe.marked
    assert stats.processed == 1


async def test_lookup_outage_is_waited_out_before_the_handler_runs() -> None:
    processor = Counter()
    pipeline, _ = _pipeline(FlakyDedupe(lookup_failures=2))
    event = _event()
    await pipeline.process(event, processor, MessageContext(event, "test"))
    assert processor.calls == 1


async def test_lookup_outage_beyond_the_retry_period_gives_storage_unavailable() -> None:
    processor = Counter()
    pipeline, stats = _pipeline(FlakyDedupe(lookup_failures=100), retry=0.2)
    event = _event()
    responses = await pipeline.process(event, processor, MessageContext(event, "test"))
    assert processor.calls == 0
    assert responses[0].extensions["mdcserrorkind"] == "storage_unavailable"
    assert stats.failed["storage_unavailable"] == 1


async def test_unrecordable_mark_still_returns_the_responses_of_the_one_effect() -> None:
    processor = Counter()
    pipeline, _ = _pipeline(FlakyDedupe(mark_failures=100), retry=0.2)
    event = _event()
    responses = await pipeline.process(event, processor, MessageContext(event, "test"))
    assert processor.calls == 1
    assert responses[0].data == b'{"n":2}'


async def test_duplicate_gets_the_recorded_responses_without_a_second_effect() -> None:
    processor = Counter()
    pipeline, stats = _pipeline(FlakyDedupe())
    first = await pipeline.process(_event(), processor, MessageContext(_event(), "test"))
    second = await pipeline.process(_event(), processor, MessageContext(_event(), "test"))
    assert processor.calls == 1
    assert second == first
    assert stats.duplicates == 1


async def test_without_dedupe_every_event_is_handled() -> None:
    processor = Counter()
    pipeline, _ = _pipeline(None)
    await pipeline.process(_event(), processor, MessageContext(_event(), "test"))
    await pipeline.process(_event(), processor, MessageContext(_event(), "test"))
    assert processor.calls == 2


class RecordingSink:
    """A ``send`` callback that notes what it got and whether dedupe had recorded it yet."""

    def __init__(self, dedupe: FlakyDedupe | None) -> None:
        self.dedupe = dedupe
        self.calls: list[tuple[list[CloudEvent], bool]] = []

    def __call__(self, responses: list[CloudEvent]) -> None:
        recorded = self.dedupe is not None and ("mes", "e1") in self.dedupe.marked
        self.calls.append((responses, recorded))


async def test_responses_are_sent_before_the_dedupe_record_and_returned_after_it() -> None:
    processor = Counter()
    dedupe = FlakyDedupe(mark_failures=2)  # recording has to wait out an outage
    pipeline, _ = _pipeline(dedupe)
    sink = RecordingSink(dedupe)
    event = _event()
    returned = await pipeline.process(event, processor, MessageContext(event, "test"), sink)
    assert len(sink.calls) == 1
    sent, recorded_when_sent = sink.calls[0]
    assert sent is returned
    assert sent[0].data == b'{"n":2}'
    assert not recorded_when_sent
    assert ("mes", "e1") in dedupe.marked  # recorded by the time process returned


@pytest.mark.parametrize(
    ("dedupe", "data", "kind"),
    [
        (FlakyDedupe(lookup_failures=100), b'{"n": 1}', "storage_unavailable"),
        (FlakyDedupe(), b"not json", "invalid_payload"),
        (None, b"not json", "invalid_payload"),
    ],
)
async def test_every_failure_is_sent_exactly_once(
    dedupe: FlakyDedupe | None, data: bytes, kind: str
) -> None:
    pipeline, _ = _pipeline(dedupe, retry=0.2)
    sink = RecordingSink(dedupe)
    event = _event()
    event.data = data
    returned = await pipeline.process(event, Counter(), MessageContext(event, "test"), sink)
    assert [sent for sent, _ in sink.calls] == [returned]
    assert returned[0].extensions["mdcserrorkind"] == kind


async def test_a_duplicate_is_sent_exactly_once_with_the_recorded_responses() -> None:
    processor = Counter()
    dedupe = FlakyDedupe()
    pipeline, _ = _pipeline(dedupe)
    first = await pipeline.process(_event(), processor, MessageContext(_event(), "test"))
    sink = RecordingSink(dedupe)
    await pipeline.process(_event(), processor, MessageContext(_event(), "test"), sink)
    assert [sent for sent, _ in sink.calls] == [first]
    assert processor.calls == 1
