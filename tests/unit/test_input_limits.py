"""Explicit limits on received input: attribute values, job ids and payload nesting."""

from __future__ import annotations

import msgpack
import orjson
import pytest

from microdcs.app.config import ConfigurationError, load_config
from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import InvalidCloudEventError, PayloadDecodeError
from microdcs.core.eventformat import from_dict
from microdcs.examples.greeting import Greeting
from microdcs.jobs.processor import job_id_problem
from microdcs.models.base import nested_deeper
from microdcs_models.machinery_jobs import StoreRequest

BAD_CHARACTERS = ["\x00", "\n", "\t", "\x1b", "\x7f", "\x85", "\x9f", "\ud800", "\ufffe"]


def event(**attributes: object) -> CloudEvent:
    values: dict[str, object] = {"type": "t", "source": "s", "id": "i", **attributes}
    return CloudEvent(**values)  # type: ignore[arg-type]


def nested(depth: int) -> bytes:
    """JSON of ``depth`` levels of arrays and objects around a scalar."""
    return (
        b'[{"k":' * (depth // 2)
        + b"[" * (depth % 2)
        + b"1"
        + b"]" * (depth % 2)
        + (b"}]" * (depth // 2))
    )


def store_payload(value_depth: int) -> bytes:
    """A Store whose parameter value nests so that the payload has ``value_depth + 4`` levels."""
    head = b'{"JobOrder": {"JobOrderID": "J", "JobOrderParameters": [{"ID": "p", "Value": '
    return head + nested(value_depth) + b"}]}}"


def msgpack_store(value_depth: int) -> bytes:
    """:func:`store_payload` in msgpack, built by hand (packb refuses deep values)."""
    order = {"JobOrderID": "J", "JobOrderParameters": None}
    prefix = msgpack.packb({"JobOrder": order})[:-1]  # everything up to the nil value
    params = b"\x91" + b"\x82" + msgpack.packb("ID") + msgpack.packb("p") + msgpack.packb("Value")
    return prefix + params + b"\x91" * value_depth + b"\x01"


# -- CloudEvent attributes ---------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["id", "source", "type", "subject", "dataschema", "datacontenttype", "time"]
)
def test_attribute_longer_than_the_limit_is_an_invalid_event(name: str) -> None:
    event(**{name: "x" * 1024}).validate()
    with pytest.raises(InvalidCloudEventError, match=name):
        event(**{name: "x" * 1025}).validate()


def test_extension_value_longer_than_the_limit_is_an_invalid_event() -> None:
    with pytest.raises(InvalidCloudEventError, match="correlationid"):
        event(extensions={"correlationid": "c" * 1025}).validate()


def test_attribute_limit_is_configurable() -> None:
    event(id="x" * 2000).validate(max_length=2000)
    with pytest.raises(InvalidCloudEventError):
        event(id="x" * 11).validate(max_length=10)


@pytest.mark.parametrize("bad", BAD_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in BAD_CHARACTERS])
def test_control_characters_in_attributes_are_an_invalid_event(bad: str) -> None:
    with pytest.raises(InvalidCloudEventError, match="id"):
        event(id=f"req-1{bad}second-line").validate()
    with pytest.raises(InvalidCloudEventError, match="traceparent"):
        event(extensions={"traceparent": f"00-{bad}"}).validate()


def test_printable_non_ascii_attributes_are_accepted() -> None:
    event(subject="Säge\u00a03", source="mes/Ünïcødé-€", extensions={"x": "日本"}).validate()


def test_error_message_does_not_quote_the_value() -> None:
    with pytest.raises(InvalidCloudEventError) as caught:
        event(type="T" * 10000).validate()
    assert "TTTT" not in caught.value.message


def test_structured_event_with_control_character_in_id_is_invalid() -> None:
    raw = {"specversion": "1.0", "id": "a\nb", "source": "s", "type": "t"}
    with pytest.raises(InvalidCloudEventError):
        from_dict(raw)


# -- job ids ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("job_id", "ok"),
    [("J1", True), ("J" * 256, True), ("J" * 257, False), ("J" * 70000, False),
     ("Säge-1 x:y{z}", True), ("", False), ("a/b", False), ("a+b", False), ("a#b", False),
     ("a\nb", False), ("a\x85b", False), ("a\x1fb", False), (None, False)],
)  # fmt: skip
def test_job_id_limits(job_id: str | None, ok: bool) -> None:
    assert (job_id_problem(job_id) is None) is ok


def test_job_id_limit_is_configurable() -> None:
    assert job_id_problem("J" * 300, 300) is None
    assert job_id_problem("J" * 11, 10) is not None


# -- nesting depth ---------------------------------------------------------------------------
def test_nesting_depth_counts_the_payload_itself_as_level_one() -> None:
    assert not nested_deeper({"a": [1, {"b": []}]}, 4)
    assert nested_deeper({"a": [1, {"b": []}]}, 3)
    assert not nested_deeper("scalar", 0)


def test_store_nested_at_the_limit_decodes() -> None:
    message = StoreRequest.decode(store_payload(60), "application/json")
    assert message.job_order.job_order_id == "J"


@pytest.mark.parametrize("depth", [61, 300, 1000])
def test_store_nested_beyond_the_limit_is_an_invalid_payload(depth: int) -> None:
    with pytest.raises(PayloadDecodeError, match="nested more than 64"):
        StoreRequest.decode(store_payload(depth), "application/json")


def test_json_deeper_than_orjson_parses_is_an_invalid_payload() -> None:
    with pytest.raises(PayloadDecodeError):
        StoreRequest.decode(b"[" * 1200 + b"]" * 1200, "application/json")


@pytest.mark.parametrize("depth", [61, 300, 1000])
def test_deep_msgpack_is_an_invalid_payload(depth: int) -> None:
    payload = msgpack_store(depth)
    assert msgpack.unpackb(payload)["JobOrder"]["JobOrderID"] == "J"
    with pytest.raises(PayloadDecodeError):
        StoreRequest.decode(payload, "application/msgpack")


def test_brackets_inside_strings_do_not_make_a_payload_deep() -> None:
    payload = orjson.dumps({"name": "[{" * 500})
    assert Greeting.decode(payload, "application/json").name == "[{" * 500


def test_depth_limit_is_configurable() -> None:
    payload = store_payload(60)
    with pytest.raises(PayloadDecodeError):
        StoreRequest.decode(payload, "application/json", max_depth=10)


def test_structured_event_with_data_too_deep_to_encode_is_an_invalid_payload() -> None:
    raw = {"specversion": "1.0", "id": "i", "source": "s", "type": "t"}
    raw["data"] = orjson.loads(nested(300))
    with pytest.raises(PayloadDecodeError):
        from_dict(raw)


# -- settings -------------------------------------------------------------------------------
def test_limit_settings_are_read_from_the_environment() -> None:
    config = load_config(
        {"APP_LIMIT_ID_LENGTH": "64", "APP_LIMIT_ATTRIBUTE_LENGTH": "2048",
         "APP_LIMIT_NESTING_DEPTH": "32", "APP_LIMIT_LOG_VALUE_CHARS": "80"}
    )  # fmt: skip
    limits = config.limits
    assert (limits.id_length, limits.attribute_length) == (64, 2048)
    assert (limits.nesting_depth, limits.log_value_chars) == (32, 80)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("APP_LIMIT_ID_LENGTH", "0"), ("APP_LIMIT_ID_LENGTH", "5000"),
     ("APP_LIMIT_ATTRIBUTE_LENGTH", "20000"), ("APP_LIMIT_NESTING_DEPTH", "251"),
     ("APP_LIMIT_NESTING_DEPTH", "0"), ("APP_LIMIT_LOG_VALUE_CHARS", "3")],
)  # fmt: skip
def test_limit_settings_out_of_range_are_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_config({variable: value})
