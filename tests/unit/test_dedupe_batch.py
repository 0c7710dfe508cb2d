"""BatchLookup and the pipeline's batched dedupe lookup: one command per loop iteration."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import StorageUnavailableError
from microdcs.processing.dedupe import BatchDelivery, BatchLookup, Prefetched
from microdcs.processing.processor import MessageContext
from tests.unit.test_pipeline import Counter, FlakyDedupe, _event, _pipeline


@dataclass(slots=True)
class Item:
    prefetched: Prefetched | None = None


class CountingDedupe(FlakyDedupe):
    """Counts the batched lookups it answers."""

    def __init__(self, *, lookup_failures: int = 0) -> None:
        super().__init__(lookup_failures=lookup_failures)
        self.batches: list[int] = []

    async def claim_many(
        self, claims: list[tuple[tuple[str, str], bytes]]
    ) -> list[bytes | BaseException | None]:
        self.batches.append(len(claims))
        return await super().claim_many(claims)


Delivered = list[tuple[list[Item], BaseException | None]]


def _deliveries() -> tuple[Delivered, asyncio.Event, BatchDelivery[Item]]:
    delivered: Delivered = []
    done = asyncio.Event()

    def deliver(batch: list[Item], error: BaseException | None) -> None:
        delivered.append((batch, error))
        done.set()

    return delivered, done, deliver


async def test_items_added_in_one_iteration_are_looked_up_in_one_command() -> None:
    dedupe = CountingDedupe()
    await dedupe.mark(("mes", "e2"), [])
    delivered, done, deliver = _deliveries()
    lookup: BatchLookup[Item] = BatchLookup(dedupe, deliver)  # type: ignore[arg-type]
    items = [Item() for _ in range(3)]
    for n, item in enumerate(items, start=1):
        lookup.add(item, _event(f"e{n}"))
    await asyncio.wait_for(done.wait(), 1)
    assert dedupe.batches == [3]
    [(batch, error)] = delivered
    assert batch == items and error is None
    assert [item.prefetched.record if item.prefetched else "-" for item in items] == [
        None,  # claimed now
        b"record-0",  # recorded before
        None,
    ]
    assert dedupe.held[("mes", "e1")] == items[0].prefetched.marker  # type: ignore[union-attr]


async def test_a_failed_claim_hands_the_batch_back_unanswered_with_its_markers() -> None:
    dedupe = CountingDedupe(lookup_failures=1)
    delivered, done, deliver = _deliveries()
    lookup: BatchLookup[Item] = BatchLookup(dedupe, deliver)  # type: ignore[arg-type]
    item = Item()
    lookup.add(item, _event())
    await asyncio.wait_for(done.wait(), 1)
    [(batch, error)] = delivered
    assert batch == [item] and item.prefetched is not None
    assert not item.prefetched.answered and item.prefetched.marker == b"claim-1"
    assert isinstance(error, StorageUnavailableError)


async def test_concurrent_events_without_a_prefetch_share_one_lookup() -> None:
    dedupe = CountingDedupe()
    pipeline, stats = _pipeline(dedupe)
    processor = Counter()
    events: list[CloudEvent] = [_event(f"e{n}") for n in range(5)]
    await asyncio.gather(
        *(pipeline.process(e, processor, MessageContext(e, "test")) for e in events)
    )
    assert dedupe.batches == [5]
    assert processor.calls == 5 and stats.processed == 5


async def test_a_failed_batched_lookup_is_waited_out_per_event() -> None:
    dedupe = CountingDedupe(lookup_failures=2)
    pipeline, stats = _pipeline(dedupe)
    processor = Counter()
    event = _event()
    [response] = await pipeline.process(event, processor, MessageContext(event, "test"))
    assert response.error_kind is None and processor.calls == 1
    assert stats.processed == 1
