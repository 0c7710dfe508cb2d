"""In-flight duplicates: the claim before processing, the copy that waits, the release."""

from __future__ import annotations

import asyncio
import itertools

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import StorageUnavailableError
from microdcs.core.eventformat import pack_records
from microdcs.models import Model
from microdcs.processing.dedupe import (
    FIRST_WAIT_SECONDS,
    LONGEST_WAIT_SECONDS,
    ClaimWait,
    Prefetched,
)
from microdcs.processing.processor import MessageContext, handles
from microdcs.storage.dedupe import Deduplicator
from tests.unit.test_pipeline import Count, Counter, FlakyDedupe, _event, _pipeline


class SlowCounter(Counter):
    """Counts like :class:`Counter`, but each call takes ``seconds`` (or fails first)."""

    def __init__(self, seconds: float = 0.05, failures: int = 0) -> None:
        super().__init__()
        self.seconds = seconds
        self.failures = failures

    @handles(Count)
    async def count(self, message: Count, context: MessageContext) -> Model:
        self.calls += 1
        await asyncio.sleep(self.seconds)
        if self.failures:
            self.failures -= 1
            raise StorageUnavailableError("the handler's own storage is down")
        return Count(n=message.n + 1)


def _context(event: CloudEvent) -> MessageContext:
    return MessageContext(event, "test")


def test_claim_wait_backs_off_to_its_longest_pause() -> None:
    wait = ClaimWait(claim_seconds=10.0)
    delays = [wait.next_delay(b"h", 0.0) for _ in range(10)]
    assert delays[0] == FIRST_WAIT_SECONDS
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == LONGEST_WAIT_SECONDS


def test_claim_wait_gives_up_on_one_claim_seen_past_the_claim_time() -> None:
    wait = ClaimWait(claim_seconds=1.0)
    assert wait.next_delay(b"h", 0.0) is not None
    assert wait.next_delay(b"h", 1.0 + LONGEST_WAIT_SECONDS / 2) is not None
    assert wait.next_delay(b"h", 1.0 + LONGEST_WAIT_SECONDS * 2) is None


def test_claim_wait_starts_over_for_a_new_holder() -> None:
    wait = ClaimWait(claim_seconds=1.0)
    for _ in range(6):
        wait.next_delay(b"first", 0.0)
    assert wait.next_delay(b"second", 5.0) == FIRST_WAIT_SECONDS


async def test_two_copies_at_once_give_one_effect_and_the_same_responses() -> None:
    dedupe = FlakyDedupe()
    pipeline, stats = _pipeline(dedupe)
    processor = SlowCounter()
    first, second = await asyncio.gather(
        *(pipeline.process(e, processor, _context(e)) for e in (_event(), _event()))
    )
    assert processor.calls == 1
    assert first == second and first[0].data == b'{"n":2}'
    assert stats.duplicates == 1 and stats.processed == 1


async def test_a_copy_waits_for_a_dead_holders_claim_to_expire_then_processes() -> None:
    dedupe = FlakyDedupe()
    dedupe.held[("mes", "e1")] = b"claim-of-a-dead-replica"
    pipeline, _ = _pipeline(dedupe)
    processor = Counter()
    event = _event()
    copy = asyncio.ensure_future(pipeline.process(event, processor, _context(event)))
    await asyncio.sleep(0.1)
    assert processor.calls == 0 and not copy.done()  # waiting for the holder
    del dedupe.held[("mes", "e1")]  # the claim expires
    [response] = await asyncio.wait_for(copy, 1)
    assert processor.calls == 1 and response.data == b'{"n":2}'
    assert dedupe.marked[("mes", "e1")] == [response]


async def test_a_claim_held_past_its_time_gives_the_copy_storage_unavailable() -> None:
    dedupe = FlakyDedupe()  # claim_seconds 0.3; this claim never expires
    dedupe.held[("mes", "e1")] = b"claim-that-never-expires"
    pipeline, _ = _pipeline(dedupe)
    processor = Counter()
    event = _event()
    [response] = await asyncio.wait_for(pipeline.process(event, processor, _context(event)), 2)
    assert processor.calls == 0
    assert response.error_kind == "storage_unavailable"
    assert dedupe.held[("mes", "e1")] == b"claim-that-never-expires"  # not ours to release


async def test_a_failure_not_recorded_releases_the_claim_for_a_retry() -> None:
    dedupe = FlakyDedupe()
    pipeline, _ = _pipeline(dedupe, retry=0.05)  # gives up on the handler's storage
    processor = SlowCounter(seconds=0.0, failures=10)
    event = _event()
    [failed] = await pipeline.process(event, processor, _context(event))
    assert failed.error_kind == "storage_unavailable"
    assert dedupe.released == [("mes", "e1")] and ("mes", "e1") not in dedupe.held
    processor.failures = 0
    [retried] = await pipeline.process(_event(), processor, _context(_event()))
    assert retried.data == b'{"n":2}'


async def test_a_copy_waiting_on_a_failing_holder_takes_over_once_it_released() -> None:
    dedupe = FlakyDedupe()
    pipeline, _ = _pipeline(dedupe, retry=0.05)
    processor = SlowCounter(seconds=0.05, failures=1)  # the first call fails
    first, second = await asyncio.gather(
        *(pipeline.process(e, processor, _context(e)) for e in (_event(), _event()))
    )
    assert first[0].error_kind == "storage_unavailable"
    assert second[0].data == b'{"n":2}' and processor.calls == 2


async def test_a_cancelled_holder_releases_its_claim() -> None:
    dedupe = FlakyDedupe()
    pipeline, _ = _pipeline(dedupe)
    processor = SlowCounter(seconds=10)
    event = _event()
    holder = asyncio.ensure_future(pipeline.process(event, processor, _context(event)))
    await asyncio.sleep(0.05)
    assert ("mes", "e1") in dedupe.held
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)
    assert dedupe.released == [("mes", "e1")]


async def test_a_claim_whose_reply_was_lost_is_recognised_as_ours() -> None:
    dedupe = FlakyDedupe()
    pipeline, _ = _pipeline(dedupe)
    processor = Counter()
    event = _event()
    marker = dedupe.new_claim()
    dedupe.held[("mes", "e1")] = marker  # the SET went through, its reply did not
    prefetched = Prefetched(("mes", "e1"), marker)  # type: ignore[arg-type]
    [response] = await pipeline.process(event, processor, _context(event), None, prefetched)
    assert processor.calls == 1 and response.data == b'{"n":2}'


def test_a_claim_marker_is_never_a_record_and_a_record_never_a_claim() -> None:
    registry = Deduplicator(None, 60)  # type: ignore[arg-type]  # markers need no store
    other = Deduplicator(None, 60)  # type: ignore[arg-type]  # another replica
    markers = {registry.new_claim() for _ in range(100)} | {other.new_claim() for _ in range(100)}
    assert len(markers) == 200 and all(Deduplicator.is_claim(m) for m in markers)
    for responses in ([], [_event()], [_event("a"), _event("b")]):
        assert not Deduplicator.is_claim(pack_records(responses))
