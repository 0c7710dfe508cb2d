"""Typed processors: handler registration, dispatch, responses and error events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import msgpack
import orjson
import pytest

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import (
    InputError,
    PayloadDecodeError,
    PayloadValidationError,
    UnknownEventTypeError,
)
from microdcs.models import Model, hidden
from microdcs.processing.processor import (
    ERROR_EVENT_TYPE,
    CloudEventProcessor,
    MessageContext,
    ResponseContext,
    error_event,
    handles,
    handles_response,
)
from microdcs.processing.routing import Direction, Intent

PING = "com.example.ping.v1"
PONG = "com.example.pong.v1"
TICK = "com.example.tick.v1"


@dataclass(kw_only=True)
class Pong(Model):
    __ce_type__: ClassVar[str] = PONG
    __ce_dataschema__: ClassVar[str] = "urn:example#/$defs/Pong"

    text: str
    ok: bool = True
    _job_key: str | None = hidden()


@dataclass(kw_only=True)
class Ping(Model):
    __ce_type__: ClassVar[str] = PING
    __ce_dataschema__: ClassVar[str] = "urn:example#/$defs/Ping"
    __response_type__ = Pong
    __response_copy__ = ()

    text: str
    _job_key: str | None = hidden()


@dataclass(kw_only=True)
class Tick(Model):
    __ce_type__: ClassVar[str] = TICK

    n: int


@dataclass(kw_only=True)
class Untyped(Model):
    n: int


class Echo(CloudEventProcessor):
    def __init__(self) -> None:
        super().__init__(source="test/echo")
        self.seen: list[tuple[Model, MessageContext]] = []
        self.answers: list[tuple[Model, ResponseContext]] = []
        self.untyped: list[tuple[CloudEvent, CloudEvent]] = []

    @handles(Ping)
    async def ping(self, message: Ping, context: MessageContext) -> Model:
        self.seen.append((message, context))
        return message.response(text=message.text.upper())

    @handles(Tick)
    async def tick(self, message: Tick, context: MessageContext) -> list[Model]:
        self.seen.append((message, context))
        return [Pong(text=str(i)) for i in range(message.n)]

    @handles(Untyped, event_type="com.example.quiet.v1")
    async def quiet(self, message: Untyped, context: MessageContext) -> None:
        self.seen.append((message, context))

    @handles_response(Pong)
    async def pong(self, message: Pong, context: ResponseContext) -> None:
        self.answers.append((message, context))

    async def on_response(self, response: CloudEvent, request: CloudEvent) -> None:
        self.untyped.append((response, request))


class RecordingSink:
    """An EventSink that remembers what it was given."""

    def __init__(self) -> None:
        self.emitted: list[tuple[CloudEvent, Intent, bool]] = []

    async def emit(self, event: CloudEvent, intent: Intent, *, expect_response: bool) -> None:
        self.emitted.append((event, intent, expect_response))


def request(
    event_type: str = PING,
    data: Any = None,
    ctype: str = "application/json",
    **kwargs: Any,
) -> CloudEvent:
    body = {"text": "hi"} if data is None else data
    encoded = msgpack.packb(body) if "msgpack" in ctype else orjson.dumps(body)
    return CloudEvent(
        type=event_type,
        source="mes",
        id="req-1",
        datacontenttype=ctype,
        subject="plant1.line2",
        data=encoded,
        **kwargs,
    )


def ctx(event: CloudEvent) -> MessageContext:
    return MessageContext(event=event, transport="test", intent=Intent.COMMANDS)


# -- registration -----------------------------------------------------------------------


def test_handles_registers_the_model_type() -> None:
    assert Echo().event_types == frozenset({PING, TICK, "com.example.quiet.v1"})


def test_handles_type_answers_per_event_type() -> None:
    assert Echo().handles_type(PING)
    assert not Echo().handles_type(PONG)


def test_handles_needs_a_type_for_a_model_without_one() -> None:
    with pytest.raises(TypeError):
        handles(Untyped)


def test_handles_response_needs_a_type_for_a_model_without_one() -> None:
    with pytest.raises(TypeError):
        handles_response(Untyped)


def test_the_base_processor_handles_nothing() -> None:
    assert CloudEventProcessor().event_types == frozenset()


def test_a_subclass_inherits_the_handlers_of_its_base() -> None:
    class MoreEcho(Echo):
        @handles(Pong)
        async def pong_in(self, message: Pong, context: MessageContext) -> None:
            return None

    assert MoreEcho().event_types == {PING, TICK, PONG, "com.example.quiet.v1"}


def test_a_subclass_handler_does_not_leak_into_the_base() -> None:
    class MoreEcho(Echo):
        @handles(Pong)
        async def pong_in(self, message: Pong, context: MessageContext) -> None:
            return None

    assert PONG in MoreEcho().event_types
    assert PONG not in Echo().event_types


async def test_a_subclass_may_override_a_handler_method() -> None:
    class LoudEcho(Echo):
        async def ping(self, message: Ping, context: MessageContext) -> Model:
            return message.response(text="LOUD")

    (response,) = await LoudEcho().dispatch(request(), ctx(request()))
    assert orjson.loads(response.data or b"")["text"] == "LOUD"


async def test_a_subclass_may_rebind_a_type_to_another_method() -> None:
    class OtherEcho(Echo):
        @handles(Ping)
        async def other(self, message: Ping, context: MessageContext) -> Model:
            return message.response(text="other")

    (response,) = await OtherEcho().dispatch(request(), ctx(request()))
    assert orjson.loads(response.data or b"")["text"] == "other"


def test_a_method_redecorated_for_another_type_no_longer_handles_the_old_type() -> None:
    # The override replaces the Ping handler: a Ping must not reach a Tick-typed method.
    class Retyped(Echo):
        @handles(Tick)
        async def ping(self, message: Tick, context: MessageContext) -> None:  # type: ignore[override]
            return None

    assert PING not in Retyped().event_types
    assert TICK in Retyped().event_types


def test_the_name_defaults_to_the_class_name() -> None:
    assert Echo().name == "Echo"


# -- dispatch --------------------------------------------------------------------------


async def test_dispatch_calls_the_handler_with_the_typed_message() -> None:
    processor = Echo()
    event = request()
    await processor.dispatch(event, ctx(event))
    ((message, context),) = processor.seen
    assert message == Ping(text="hi")
    assert context.event is event
    assert context.subject == "plant1.line2"


async def test_dispatch_decodes_msgpack_data() -> None:
    processor = Echo()
    event = request(ctype="application/msgpack")
    await processor.dispatch(event, ctx(event))
    assert processor.seen[0][0] == Ping(text="hi")


async def test_a_handler_returning_none_produces_no_response() -> None:
    event = request("com.example.quiet.v1", {"n": 1})
    assert await Echo().dispatch(event, ctx(event)) == []


async def test_a_handler_returning_several_models_produces_several_responses() -> None:
    event = request(TICK, {"n": 3})
    responses = await Echo().dispatch(event, ctx(event))
    assert [orjson.loads(r.data or b"")["text"] for r in responses] == ["0", "1", "2"]


async def test_an_unknown_type_raises_unknown_event_type_error() -> None:
    event = request("com.example.nobody.v1")
    with pytest.raises(UnknownEventTypeError) as caught:
        await Echo().dispatch(event, ctx(event))
    assert caught.value.kind == "unknown_type"


async def test_invalid_data_raises_the_payload_error_by_default() -> None:
    event = request(data={"text": 5})
    with pytest.raises(PayloadValidationError) as caught:
        await Echo().dispatch(event, ctx(event))
    assert caught.value.kind == "invalid_payload"


async def test_undecodable_data_raises_payload_decode_error() -> None:
    event = request()
    event.data = b"{not json"
    with pytest.raises(PayloadDecodeError):
        await Echo().dispatch(event, ctx(event))


# -- response_event -----------------------------------------------------------------------


async def dispatch_one(
    event: CloudEvent, processor: CloudEventProcessor | None = None
) -> CloudEvent:
    (response,) = await (processor or Echo()).dispatch(event, ctx(event))
    return response


async def test_the_response_has_the_response_model_type_and_dataschema() -> None:
    response = await dispatch_one(request())
    assert response.type == PONG
    assert response.dataschema == "urn:example#/$defs/Pong"


async def test_the_response_carries_the_handler_result_as_data() -> None:
    response = await dispatch_one(request())
    assert orjson.loads(response.data or b"") == {"text": "HI", "ok": True}


async def test_the_response_correlationid_is_the_request_correlationid() -> None:
    response = await dispatch_one(request(extensions={"correlationid": "wf-9"}))
    assert response.correlationid == "wf-9"


async def test_without_correlationid_the_response_correlates_by_the_request_id() -> None:
    response = await dispatch_one(request())
    assert response.correlationid == "req-1"


async def test_the_response_causationid_is_the_request_id() -> None:
    response = await dispatch_one(request(extensions={"correlationid": "wf-9"}))
    assert response.causationid == "req-1"


async def test_the_response_keeps_the_request_subject() -> None:
    response = await dispatch_one(request())
    assert response.subject == "plant1.line2"


async def test_the_response_source_is_the_processor_source() -> None:
    response = await dispatch_one(request())
    assert response.source == "test/echo"


async def test_the_response_is_a_new_valid_event_with_a_time() -> None:
    response = await dispatch_one(request())
    response.validate()
    assert response.id != "req-1"
    assert response.time


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8"])
async def test_a_json_request_gets_a_json_response(ctype: str) -> None:
    response = await dispatch_one(request(ctype=ctype))
    assert response.datacontenttype == "application/json"


async def test_a_msgpack_request_gets_a_msgpack_response() -> None:
    response = await dispatch_one(request(ctype="application/msgpack"))
    assert response.datacontenttype == "application/msgpack"
    assert msgpack.unpackb(response.data or b"") == {"text": "HI", "ok": True}


async def test_a_hidden_field_is_filled_from_the_request_extension() -> None:
    processor = Echo()
    event = request(extensions={"jobkey": "J-7"})
    await processor.dispatch(event, ctx(event))
    message = processor.seen[0][0]
    assert isinstance(message, Ping) and message._job_key == "J-7"


async def test_a_hidden_field_travels_back_as_a_response_extension() -> None:
    response = await dispatch_one(request(extensions={"jobkey": "J-7"}))
    assert response.extensions["jobkey"] == "J-7"


async def test_hidden_fields_stay_out_of_the_response_data() -> None:
    response = await dispatch_one(request(extensions={"jobkey": "J-7"}))
    assert "jobkey" not in orjson.loads(response.data or b"")
    assert "_job_key" not in orjson.loads(response.data or b"")


# -- on_invalid ------------------------------------------------------------------------------


class Forgiving(Echo):
    def on_invalid(self, event: CloudEvent, error: InputError) -> Model | None:
        return Pong(text="rejected", ok=False)


async def test_on_invalid_substitute_becomes_the_response() -> None:
    response = await dispatch_one(request(data={"text": 5}), Forgiving())
    assert orjson.loads(response.data or b"") == {"text": "rejected", "ok": False}
    assert response.causationid == "req-1"


async def test_on_invalid_substitute_carries_the_error_kind_and_message() -> None:
    response = await dispatch_one(request(data={"text": 5}), Forgiving())
    assert response.error_kind == "invalid_payload"
    assert "text" in str(response.extensions["mdcserrormessage"])


async def test_on_invalid_is_not_asked_about_unknown_types() -> None:
    event = request("com.example.nobody.v1")
    with pytest.raises(UnknownEventTypeError):
        await Forgiving().dispatch(event, ctx(event))


# -- responses to our own requests ---------------------------------------------------------


async def test_a_typed_response_handler_gets_the_response_and_the_request() -> None:
    processor = Echo()
    sent = request()
    answer = CloudEvent(
        type=PONG,
        source="eq",
        datacontenttype="application/json",
        data=b'{"text":"yo"}',
        extensions={"jobkey": "J"},
    )
    await processor.dispatch_response(answer, sent)
    ((message, context),) = processor.answers
    assert message == Pong(text="yo", _job_key="J")
    assert (context.response, context.request) == (answer, sent)


async def test_a_response_without_typed_handler_goes_to_on_response() -> None:
    processor = Echo()
    sent = request()
    answer = CloudEvent(type="com.example.other.v1", source="eq")
    await processor.dispatch_response(answer, sent)
    assert processor.untyped == [(answer, sent)]


# -- outgoing ------------------------------------------------------------------------------


async def test_publish_goes_to_every_sink_on_the_default_intent() -> None:
    processor, first, second = Echo(), RecordingSink(), RecordingSink()
    processor.attach_sink(first)
    processor.attach_sink(second)
    event = await processor.publish(Pong(text="x"), subject="a")
    assert first.emitted == second.emitted == [(event, Intent.EVENTS, False)]


async def test_publish_of_a_southbound_processor_defaults_to_commands() -> None:
    class South(Echo):
        direction = Direction.SOUTHBOUND

    processor, sink = South(), RecordingSink()
    processor.attach_sink(sink)
    await processor.publish(Pong(text="x"), subject="a")
    assert sink.emitted[0][1] is Intent.COMMANDS


async def test_send_request_expects_a_response_and_correlates_by_its_id() -> None:
    processor, sink = Echo(), RecordingSink()
    processor.attach_sink(sink)
    event = await processor.send_request(Ping(text="x"), subject="a", expiry=30)
    assert sink.emitted == [(event, Intent.EVENTS, True)]
    assert event.correlationid == event.id
    assert event.expiryinterval == 30


def test_build_event_without_expiry_has_no_expiryinterval() -> None:
    event = Echo().build_event(Pong(text="x"), subject=None, expiry=0)
    assert "expiryinterval" not in event.extensions


def test_build_event_uses_the_processor_content_type() -> None:
    event = Echo().build_event(Pong(text="x"), subject=None)
    assert event.datacontenttype == "application/json"
    assert orjson.loads(event.data or b"") == {"text": "x", "ok": True}


def test_build_event_needs_a_model_with_a_type() -> None:
    with pytest.raises(TypeError):
        Echo().build_event(Untyped(n=1), subject=None)


# -- error_event -------------------------------------------------------------------------


def test_error_event_answers_the_request_type() -> None:
    event = error_event(request(), UnknownEventTypeError("nope"), source="me")
    assert event.type == PING
    assert event.source == "me"


def test_error_event_carries_the_error_kind_and_message() -> None:
    event = error_event(request(), UnknownEventTypeError("no handler"), source="me")
    assert event.extensions["mdcserrorkind"] == "unknown_type"
    assert event.extensions["mdcserrormessage"] == "no handler"


def test_error_event_correlates_with_the_request() -> None:
    event = error_event(
        request(extensions={"correlationid": "wf"}), PayloadDecodeError("x"), source="me"
    )
    assert (event.correlationid, event.causationid) == ("wf", "req-1")


def test_error_event_keeps_the_request_subject() -> None:
    assert error_event(request(), PayloadDecodeError("x"), source="me").subject == "plant1.line2"


def test_error_event_without_request_has_the_generic_error_type() -> None:
    event = error_event(None, PayloadDecodeError("x"), source="me")
    assert event.type == ERROR_EVENT_TYPE
    assert event.correlationid is None
    event.validate()


def test_error_event_of_an_unexpected_exception_is_an_internal_error() -> None:
    event = error_event(request(), RuntimeError("boom"), source="me")
    assert event.error_kind == "internal_error"
    assert event.extensions["mdcserrormessage"] == "boom"


def test_error_event_of_an_exception_without_message_names_its_type() -> None:
    event = error_event(request(), RuntimeError(), source="me")
    assert event.extensions["mdcserrormessage"] == "RuntimeError"
