"""``handles(..., deduplicate=False)``: a processor declares types whose handling is
idempotent, and the pipeline neither claims nor records their events (data events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from microdcs.core.cloudevent import CloudEvent
from microdcs.models import Model
from microdcs.plantdata.processor import PlantDataProcessor
from microdcs.plantdata.samples import DATA_TYPE
from microdcs.processing.pipeline import EventPipeline, TransportStats
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from tests.unit.test_pipeline import FlakyDedupe

SAMPLE = "com.example.test.sample.v1"
ORDER = "com.example.test.order.v1"


@dataclass(kw_only=True)
class Sample(Model):
    __ce_type__: ClassVar[str] = SAMPLE
    n: int


@dataclass(kw_only=True)
class Order(Model):
    __ce_type__: ClassVar[str] = ORDER
    n: int


class Mixed(CloudEventProcessor):
    def __init__(self) -> None:
        super().__init__(source="test")
        self.calls = 0

    @handles(Sample, deduplicate=False)
    async def sample(self, message: Sample, context: MessageContext) -> None:
        self.calls += 1

    @handles(Order)
    async def order(self, message: Order, context: MessageContext) -> None:
        self.calls += 1


class Redecorated(Mixed):
    @handles(Sample)  # the subclass asks for dedupe again
    async def sample(self, message: Sample, context: MessageContext) -> None:
        self.calls += 1


def _event(ce_type: str, event_id: str) -> CloudEvent:
    return CloudEvent(
        type=ce_type, source="mes", id=event_id, datacontenttype="application/json",
        data=b'{"n": 1}',
    )  # fmt: skip


def test_data_events_are_declared_without_dedupe_and_tag_configuration_with() -> None:
    processor = PlantDataProcessor.__new__(PlantDataProcessor)
    assert not processor.deduplicates(DATA_TYPE)
    assert processor.deduplicates("com.github.aschamberger.microdcs.config.tag.v1")
    assert processor.deduplicates("com.example.unknown.v1")


def test_the_declaration_follows_the_method_along_the_class_hierarchy() -> None:
    assert not Mixed().deduplicates(SAMPLE) and Mixed().deduplicates(ORDER)
    assert Redecorated().deduplicates(SAMPLE)


async def test_the_pipeline_neither_claims_nor_records_an_undeduplicated_type() -> None:
    processor, dedupe = Mixed(), FlakyDedupe()
    pipeline = EventPipeline(
        source="test", stats=TransportStats(), dedupe=dedupe, storage_retry_seconds=1.0
    )
    for event in (_event(SAMPLE, "s1"), _event(SAMPLE, "s1"), _event(ORDER, "o1")):
        await pipeline.process(event, processor, MessageContext(event, "test"))
    assert processor.calls == 3  # the repeated sample is handled again (it is idempotent)
    assert dedupe.claims == 1 and list(dedupe.marked) == [("mes", "o1")]
