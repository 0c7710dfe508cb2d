"""Processor API parity (issue 20, item 4) without a broker: declared outgoing events,
per-processor intents, the asset ID from the subject, hidden fields in either form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast

import orjson
import pytest

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import InvalidCloudEventError, OutgoingEventError
from microdcs.models import Model, hidden
from microdcs.processing.metadata import metadata_message
from microdcs.processing.processor import (
    CloudEventProcessor,
    MessageContext,
    UndeclaredEventError,
    asset_id_from_subject,
    emits,
    handles,
)
from microdcs.processing.routing import Direction, Intent
from microdcs.transports.mqtt.binding import MqttBinding
from microdcs.transports.mqtt.routing import Router
from microdcs.transports.mqtt.topics import TopicLayout


@dataclass(kw_only=True)
class Started(Model):
    __ce_type__: ClassVar[str] = "com.example.started.v1"

    batch: str
    _job_key: str | None = hidden()


@dataclass(kw_only=True)
class Stopped(Model):
    __ce_type__: ClassVar[str] = "com.example.stopped.v1"

    batch: str


@dataclass(kw_only=True)
class Start(Model):
    __ce_type__: ClassVar[str] = "com.example.start.v1"
    __response_type__ = Started

    batch: str
    _job_key: str | None = hidden()
    _line_ref: str | None = hidden()


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[CloudEvent, Intent]] = []

    async def emit(self, event: CloudEvent, intent: Intent, *, expect_response: bool) -> None:
        self.sent.append((event, intent))


@emits(Started)
class Starter(CloudEventProcessor):
    """Declares Started on the class and Stopped on a handler."""

    @emits(Stopped)
    @handles(Start)
    async def start(self, message: Start, context: MessageContext) -> None:
        return None


class Quiet(CloudEventProcessor):
    """Declares nothing: publishing stays unchecked."""


class DataOnly(CloudEventProcessor):
    direction = Direction.NORTHBOUND
    subscribe_intents = (Intent.COMMANDS, Intent.DATA)
    publish_intents = (Intent.DATA,)


class AssetAware(CloudEventProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    @asset_id_from_subject
    @handles(Start)
    async def start(self, message: Start, context: MessageContext, *, asset_id: Any) -> None:
        self.seen.append(asset_id)

    @handles(Stopped)
    @asset_id_from_subject(name="line", level=0, factory=str.upper)
    async def stop(self, message: Stopped, context: MessageContext, *, line: Any) -> None:
        self.seen.append(line)


class Bundling(CloudEventProcessor):
    hidden_fields_as = "custommetadata"

    @handles(Start)
    async def start(self, message: Start, context: MessageContext) -> Model:
        return message.response(batch=message.batch)


def event(model: type[Model], data: dict[str, Any], **extensions: Any) -> CloudEvent:
    return CloudEvent(
        type=model.__ce_type__ or "",
        source="mes",
        datacontenttype="application/json",
        subject="plant1.line2.oven3",
        data=orjson.dumps(data),
        extensions=dict(extensions),
    )


def context(cloudevent: CloudEvent) -> MessageContext:
    return MessageContext(event=cloudevent, transport="test")


# -- declared outgoing events ------------------------------------------------------------
def test_emits_on_the_class_and_on_a_handler_are_both_declared() -> None:
    assert Starter.emitted_models() == (Started, Stopped)


def test_declared_emits_are_in_the_capability_metadata() -> None:
    emitted = [info.type for info in Starter().capabilities().emits]
    assert emitted == ["com.example.started.v1", "com.example.stopped.v1"]
    assert [e.type for e in metadata_message(Starter(), "app/s").emits] == emitted


async def test_publishing_a_declared_type_is_sent() -> None:
    processor, sink = Starter(), RecordingSink()
    processor.attach_sink(sink)
    await processor.publish(Stopped(batch="B1"), subject="plant1")
    assert [e.type for e, _ in sink.sent] == ["com.example.stopped.v1"]


async def test_publishing_an_undeclared_type_raises_naming_the_declared_ones() -> None:
    processor, sink = Starter(), RecordingSink()
    processor.attach_sink(sink)
    with pytest.raises(UndeclaredEventError, match=r"Start .*declares only Started, Stopped"):
        await processor.publish(Start(batch="B1"), subject=None)
    with pytest.raises(UndeclaredEventError):
        await processor.send_request(Start(batch="B1"), subject=None, expiry=5)
    assert sink.sent == []


async def test_publishing_the_wire_form_sends_what_publishing_the_instance_sends() -> None:
    processor, sink = Starter(), RecordingSink()
    processor.attach_sink(sink)
    message = Stopped(batch="B1")
    await processor.publish(message, subject="plant1", correlationid="c1", causationid="r1")
    await processor.publish_wire(
        Stopped, message.to_raw(), subject="plant1", correlationid="c1", causationid="r1"
    )
    (by_instance, intent_a), (by_wire, intent_b) = sink.sent
    assert intent_a == intent_b
    assert by_wire.data == by_instance.data
    same = ("type", "source", "subject", "datacontenttype", "dataschema", "extensions")
    assert {a: getattr(by_wire, a) for a in same} == {a: getattr(by_instance, a) for a in same}
    assert by_wire.id != by_instance.id


async def test_the_wire_form_of_an_undeclared_or_hidden_field_model_is_refused() -> None:
    processor, sink = Starter(), RecordingSink()
    processor.attach_sink(sink)
    with pytest.raises(UndeclaredEventError, match=r"Start .*declares only Started, Stopped"):
        await processor.publish_wire(Start, {"batch": "B1"}, subject=None)
    # Hidden fields travel as extensions that only an instance knows.
    with pytest.raises(TypeError, match="hidden fields"):
        await processor.publish_wire(Started, {"batch": "B1"}, subject=None)
    assert sink.sent == []


def test_an_undeclared_event_is_an_outgoing_event_error() -> None:
    """The pipeline answers it as ``invalid_outgoing`` rather than an internal error."""
    assert issubclass(UndeclaredEventError, OutgoingEventError)


async def test_a_processor_declaring_nothing_publishes_any_type() -> None:
    processor, sink = Quiet(), RecordingSink()
    processor.attach_sink(sink)
    await processor.publish(Start(batch="B1"), subject=None)
    assert len(sink.sent) == 1


def test_emits_refuses_a_model_without_a_type() -> None:
    @dataclass(kw_only=True)
    class Nameless(Model):
        n: int

    with pytest.raises(TypeError, match="Nameless has no __ce_type__"):
        emits(Nameless)


def test_a_handler_overridden_without_emits_no_longer_declares() -> None:
    class Restarter(Starter):
        @handles(Start)
        async def start(self, message: Start, context: MessageContext) -> None:
            return None

    assert Restarter.emitted_models() == (Started,)


# -- per-processor intents ---------------------------------------------------------------
def test_without_overrides_the_intents_are_the_directions() -> None:
    processor = Quiet()
    assert processor.subscribes == Direction.NORTHBOUND.subscribes
    assert processor.publishes == Direction.NORTHBOUND.publishes
    assert processor.default_intent is Intent.EVENTS


def test_class_overrides_replace_the_directions_intents() -> None:
    processor = DataOnly()
    assert processor.subscribes == (Intent.COMMANDS, Intent.DATA)
    assert processor.publishes == (Intent.DATA,)
    assert processor.default_intent is Intent.DATA


def test_constructor_overrides_win_over_the_class() -> None:
    processor = DataOnly(subscribe_intents=[Intent.EVENTS], publish_intents=[Intent.EVENTS])
    assert processor.subscribes == (Intent.EVENTS,)
    assert processor.default_intent is Intent.EVENTS


def test_an_empty_intent_override_is_refused() -> None:
    with pytest.raises(ValueError, match="publish_intents must name at least one intent"):
        Quiet(publish_intents=())


async def test_publish_goes_to_the_overridden_default_intent() -> None:
    processor, sink = DataOnly(), RecordingSink()
    processor.attach_sink(sink)
    await processor.publish(Stopped(batch="B1"), subject=None)
    assert sink.sent[0][1] is Intent.DATA


async def test_publishing_on_an_intent_not_published_raises() -> None:
    processor = DataOnly()
    with pytest.raises(UndeclaredEventError, match="publishes on data, not on events"):
        await processor.publish(Stopped(batch="B1"), subject=None, intent=Intent.EVENTS)


def test_the_subscriptions_follow_the_overridden_intents() -> None:
    router = Router(attribute_length=1024)
    router.add(MqttBinding(cast(Any, None), DataOnly(), TopicLayout("app/d", max_levels=1)))
    assert router.request_filters(None) == [
        "app/d/commands",
        "app/d/+/commands",
        "app/d/data",
        "app/d/+/data",
    ]


def test_responses_without_a_response_topic_go_to_the_default_intent() -> None:
    binding = MqttBinding(cast(Any, None), DataOnly(), TopicLayout("app/d"))
    answer = CloudEvent(type="t", source="s", subject="cell")
    assert binding.answer_topic(answer, "app/d/cell/commands", None) == "app/d/cell/data"


# -- asset ID from the subject -----------------------------------------------------------
def test_the_context_names_scope_and_asset_of_the_subject() -> None:
    ctx = context(event(Start, {"batch": "B"}))
    assert ctx.scope == ("plant1", "line2", "oven3")
    assert ctx.asset_id == "oven3"
    assert context(CloudEvent(type="t", source="s")).asset_id is None


async def test_asset_id_from_subject_passes_the_last_scope_level() -> None:
    processor = AssetAware()
    cloudevent = event(Start, {"batch": "B"})
    await processor.dispatch(cloudevent, context(cloudevent))
    assert processor.seen == ["oven3"]


async def test_asset_id_from_subject_takes_a_name_a_level_and_a_factory() -> None:
    processor = AssetAware()
    cloudevent = event(Stopped, {"batch": "B"})
    await processor.dispatch(cloudevent, context(cloudevent))
    assert processor.seen == ["PLANT1"]


async def test_asset_id_is_none_for_the_root_scope() -> None:
    processor = AssetAware()
    cloudevent = event(Start, {"batch": "B"})
    cloudevent.subject = None
    await processor.dispatch(cloudevent, context(cloudevent))
    assert processor.seen == [None]


# -- hidden fields: one extension per field or one custommetadata ------------------------
def test_hidden_fields_travel_one_extension_each_by_default() -> None:
    built = Quiet().build_event(Start(batch="B", _job_key="K", _line_ref="L"), subject=None)
    assert built.extensions["jobkey"] == "K"
    assert built.extensions["lineref"] == "L"
    assert "custommetadata" not in built.extensions


async def test_a_processor_may_send_hidden_fields_as_one_custommetadata() -> None:
    processor = Bundling()
    request = event(Start, {"batch": "B"}, jobkey="K")
    (response,) = await processor.dispatch(request, context(request))
    assert "jobkey" not in response.extensions
    assert orjson.loads(str(response.extensions["custommetadata"])) == {"jobkey": "K"}


def test_custommetadata_is_absent_when_no_hidden_field_is_set() -> None:
    assert Start(batch="B").hidden_custommetadata() == {}


def test_hidden_fields_are_restored_from_custommetadata() -> None:
    start = Start(batch="B")
    start.restore_hidden({"custommetadata": '{"jobkey": "K", "lineref": "L", "other": 1}'})
    assert (start._job_key, start._line_ref) == ("K", "L")


def test_a_fields_own_extension_wins_over_custommetadata() -> None:
    start = Start(batch="B")
    start.restore_hidden({"jobkey": "own", "custommetadata": '{"jobkey": "bundled"}'})
    assert start._job_key == "own"


@pytest.mark.parametrize("value", ["not json", "[1, 2]", '{"jobkey": {"nested": 1}}', "1"])
def test_a_malformed_custommetadata_is_an_invalid_event(value: str) -> None:
    with pytest.raises(InvalidCloudEventError, match="custommetadata"):
        Start(batch="B").restore_hidden({"custommetadata": value})


async def test_both_forms_round_trip_between_processors() -> None:
    """What a bundling processor sends, a default one reads, and the reverse."""
    bundled = Bundling().build_event(Start(batch="B", _job_key="K"), subject=None)
    plain = Quiet().build_event(Start(batch="B", _job_key="K"), subject=None)
    for sent in (bundled, plain):
        received = Start.decode(sent.data, sent.datacontenttype)
        received.restore_hidden(sent.extensions)
        assert received._job_key == "K"
