"""Capability metadata without a broker: what a processor declares, the description
built from it, and when the announcer publishes and removes it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import orjson
import pytest

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import StorageUnavailableError
from microdcs.equipment.contract import CANCEL_TYPE
from microdcs.equipment.processor import EquipmentProcessor
from microdcs.examples.greeting import GREETING_TYPE, GreetingProcessor
from microdcs.models import Model
from microdcs.processing.capabilities import EventTypeInfo, emitted_type
from microdcs.processing.metadata import (
    METADATA_TYPE,
    Announced,
    MetadataAnnouncer,
    metadata_event,
)
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.processing.routing import Direction, Intent
from microdcs.transports.mqtt.binding import MqttBinding, metadata_topics
from microdcs.transports.mqtt.topics import TopicLayout


@dataclass(kw_only=True)
class Ping(Model):
    __ce_type__: ClassVar[str] = "com.example.ping.v1"
    __ce_dataschema__: ClassVar[str] = "https://example.com/ping.json"


@dataclass(kw_only=True)
class Pong(Model):
    __ce_type__: ClassVar[str] = "com.example.pong.v1"


class Pinger(CloudEventProcessor):
    direction = Direction.SOUTHBOUND
    emitted: ClassVar[tuple[type[Model], ...]] = (Pong,)

    @handles(Ping)
    async def ping(self, message: Ping, context: MessageContext) -> None:
        return None


class Repinger(Pinger):
    """Re-decorates the handler for another type: the old one is no longer handled."""

    emitted = ()

    @handles(Pong)
    async def ping(self, message: Ping, context: MessageContext) -> None:
        return None


def test_handled_types_come_from_the_handles_registrations() -> None:
    (info,) = GreetingProcessor().capabilities().handles
    assert info.type == GREETING_TYPE
    assert info.dataschema is not None and info.dataschema.endswith("#/$defs/Greeting")
    assert info.response_type == GREETING_TYPE
    assert info.response_dataschema is not None
    assert info.response_dataschema.endswith("#/$defs/GreetingResponse")


def test_emitted_types_come_from_the_class_declaration() -> None:
    capabilities = Pinger().capabilities()
    assert capabilities.handles == (
        EventTypeInfo(type="com.example.ping.v1", dataschema="https://example.com/ping.json"),
    )
    assert capabilities.emits == (EventTypeInfo(type="com.example.pong.v1"),)


def test_a_subclass_describes_what_it_handles_itself() -> None:
    capabilities = Repinger().capabilities()
    assert [i.type for i in capabilities.handles] == ["com.example.pong.v1"]
    assert capabilities.emits == ()


def test_a_model_without_a_type_cannot_be_declared_emitted() -> None:
    with pytest.raises(TypeError):
        emitted_type(Model)


def test_the_equipment_processor_takes_and_sends_any_type() -> None:
    capabilities = EquipmentProcessor(cast(Any, None)).capabilities()
    assert capabilities.handles_any_type and capabilities.emits_any_type
    assert capabilities.handles == ()
    assert [i.type for i in capabilities.emits] == [CANCEL_TYPE]


def test_the_description_is_a_typed_cloudevent_of_the_whole_prefix() -> None:
    event = metadata_event(Pinger(name="pinger"), "plant/ping", source="microdcs/r1")
    assert event.type == METADATA_TYPE
    assert event.source == "microdcs/r1"
    assert event.subject is None
    assert event.dataschema is not None and event.dataschema.endswith("#/$defs/ProcessorMetadata")
    assert event.data is not None
    assert orjson.loads(event.data) == {
        "processor": "pinger",
        "direction": "southbound",
        "prefix": "plant/ping",
        "handles": [{"type": "com.example.ping.v1", "dataschema": "https://example.com/ping.json"}],
        "emits": [{"type": "com.example.pong.v1"}],
    }


# -- the announcer ------------------------------------------------------------------


class FakeOutlet:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.published: list[CloudEvent] = []
        self.removed = 0

    async def publish(self, event: CloudEvent) -> None:
        self.published.append(event)

    async def remove(self) -> None:
        self.removed += 1


class FakeRoster:
    def __init__(self, *, others: int = 0, failing: int = 0) -> None:
        self.others = others
        self.failing = failing
        self.refreshed: list[list[str]] = []
        self.left: list[str] = []

    async def refresh(self, prefixes: Sequence[str]) -> None:
        if self.failing:
            self.failing -= 1
            raise StorageUnavailableError("Redis away")
        self.refreshed.append(list(prefixes))

    async def leave(self, prefix: str) -> bool:
        self.left.append(prefix)
        return self.others == 0


async def _run_briefly(announcer: MetadataAnnouncer, seconds: float = 0.1) -> None:
    shutdown = asyncio.Event()
    task = asyncio.create_task(announcer.run(shutdown))
    await asyncio.sleep(seconds)
    shutdown.set()
    await asyncio.wait_for(task, 5)


async def test_nothing_is_published_before_the_transport_asks() -> None:
    outlet, roster = FakeOutlet("p"), FakeRoster()
    announcer = MetadataAnnouncer(
        [Announced(Pinger(), outlet)], roster, source="s", remove_when_last=False
    )
    await _run_briefly(announcer)
    assert outlet.published == []
    assert roster.refreshed == [["p"]]


async def test_every_connect_publishes_every_description() -> None:
    outlets = [FakeOutlet("a"), FakeOutlet("b")]
    announcer = MetadataAnnouncer(
        [Announced(Pinger(), o) for o in outlets], FakeRoster(), source="s", remove_when_last=True
    )
    announcer.republish()
    await _run_briefly(announcer)
    assert [len(o.published) for o in outlets] == [1, 1]
    assert announcer.published == 2


async def test_a_failed_attempt_is_tried_again() -> None:
    outlet = FakeOutlet("p")
    announcer = MetadataAnnouncer(
        [Announced(Pinger(), outlet)],
        FakeRoster(failing=1),
        source="s",
        remove_when_last=False,
    )
    announcer.republish()
    await _run_briefly(announcer, 1.5)  # one back-off of RETRY_SECONDS
    assert len(outlet.published) == 1


class StuckOutlet(FakeOutlet):
    """A broker that never acknowledges (gone while the publish waits)."""

    async def publish(self, event: CloudEvent) -> None:
        await asyncio.Event().wait()


async def test_shutdown_does_not_wait_for_a_publish_the_broker_never_acknowledges() -> None:
    outlet, roster = StuckOutlet("p"), FakeRoster()
    announcer = MetadataAnnouncer(
        [Announced(Pinger(), outlet)], roster, source="s", remove_when_last=False
    )
    announcer.republish()
    await _run_briefly(announcer)  # returns within its 5 s bound
    assert roster.left == ["p"]


async def test_the_last_replica_leaving_removes_its_descriptions() -> None:
    outlet, roster = FakeOutlet("p"), FakeRoster()
    announcer = MetadataAnnouncer(
        [Announced(Pinger(), outlet)], roster, source="s", remove_when_last=True
    )
    await _run_briefly(announcer)
    assert roster.left == ["p"]
    assert outlet.removed == 1


async def test_a_replica_leaving_while_others_serve_removes_nothing() -> None:
    outlet = FakeOutlet("p")
    announcer = MetadataAnnouncer(
        [Announced(Pinger(), outlet)], FakeRoster(others=1), source="s", remove_when_last=True
    )
    await _run_briefly(announcer)
    assert outlet.removed == 0


async def test_a_replica_that_comes_back_with_its_session_removes_nothing() -> None:
    outlet = FakeOutlet("p")
    announcer = MetadataAnnouncer(
        [Announced(Pinger(), outlet)], FakeRoster(), source="s", remove_when_last=False
    )
    await _run_briefly(announcer)
    assert outlet.removed == 0


# -- where answers go without a Response Topic (MQTT binding) -----------------------


def _binding(processor: CloudEventProcessor) -> MqttBinding:
    return MqttBinding(cast(Any, None), processor, TopicLayout("plant/p"))


def _error(subject: str | None = None, source: str = "microdcs/r1") -> CloudEvent:
    return CloudEvent(
        type="t", source=source, subject=subject, extensions={"mdcserrorkind": "invalid_payload"}
    )


def test_a_southbound_error_goes_to_events_in_the_topic_scope() -> None:
    binding = _binding(Pinger())
    assert binding.answer_topic(_error(), "plant/p/line1/data", None) == "plant/p/line1/events"


def test_a_southbound_response_still_goes_to_commands() -> None:
    response = CloudEvent(type="t", source="s", subject="line1")
    topic = _binding(Pinger()).answer_topic(response, "plant/p/line1/data", None)
    assert topic == "plant/p/line1/commands"


def test_an_error_about_an_error_event_is_not_sent_where_it_would_loop() -> None:
    binding = _binding(Pinger())
    assert binding.answer_topic(_error(), "plant/p/line1/events", _error("line1")) is None


def test_a_northbound_processor_answers_error_events_on_events() -> None:
    binding = _binding(GreetingProcessor())
    topic = binding.answer_topic(_error(), "plant/p/commands", _error())
    assert topic == f"plant/p/{Intent.EVENTS.value}"


def test_the_replicas_own_error_events_are_recognised_on_southbound_events() -> None:
    binding = _binding(Pinger())
    assert binding.echoes(_error(), "plant/p/events", "microdcs/r1")
    assert binding.echoes(_error(source="microdcs/r2"), "plant/p/events", "microdcs/r1")
    assert binding.echoes(_error(source="plant"), "plant/p/events", "plant")
    assert not binding.echoes(_error(source="gateway"), "plant/p/events", "microdcs/r1")
    assert not binding.echoes(_error(source="microdcs/r2"), "plant/p/events", "plant")
    assert not binding.echoes(_error(), "plant/p/data", "microdcs/r1")
    assert not binding.echoes(CloudEvent(type="t", source="microdcs/r1"), "plant/p/events", "x")
    assert not _binding(GreetingProcessor()).echoes(_error(), "plant/p/events", "microdcs/r1")


def test_metadata_comes_back_only_on_southbound_metadata_topics() -> None:
    south = MqttBinding(cast(Any, None), Pinger(), TopicLayout("plant/s"))
    north = MqttBinding(cast(Any, None), GreetingProcessor(), TopicLayout("plant/n"))
    assert metadata_topics([south, north]) == frozenset({"plant/s/metadata"})
