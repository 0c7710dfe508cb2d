"""CloudEvents MQTT binding: binary and structured mode, both directions."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microdcs.core.cloudevent import CORE_ATTRIBUTES, CloudEvent
from microdcs.core.errors import InvalidCloudEventError
from microdcs.transports.mqtt.mapping import from_mqtt, to_binary, to_structured

REQUIRED = [("specversion", "1.0"), ("id", "1"), ("source", "src"), ("type", "t")]


def event(**kwargs: Any) -> CloudEvent:
    return CloudEvent(type="t", source="src", id="1", **kwargs)


# -- binary mode, outgoing -----------------------------------------------------------------


def test_binary_content_type_is_the_datacontenttype() -> None:
    assert to_binary(event(datacontenttype="application/msgpack")).content_type == (
        "application/msgpack"
    )


def test_binary_payload_is_the_raw_data_byte_for_byte() -> None:
    assert to_binary(event(datacontenttype="image/png", data=b"\x89PNG\x00")).payload == (
        b"\x89PNG\x00"
    )


def test_binary_payload_without_data_is_empty() -> None:
    assert to_binary(event()).payload == b""


def test_binary_required_attributes_are_user_properties_named_unchanged() -> None:
    assert to_binary(event()).user_properties == REQUIRED


def test_binary_optional_attributes_are_user_properties() -> None:
    props = dict(
        to_binary(
            event(dataschema="urn:s", subject="a.b", time="2024-01-01T00:00:00Z")
        ).user_properties
    )
    assert props["dataschema"] == "urn:s"
    assert props["subject"] == "a.b"
    assert props["time"] == "2024-01-01T00:00:00Z"


def test_binary_datacontenttype_is_not_a_user_property() -> None:
    props = dict(to_binary(event(datacontenttype="application/json")).user_properties)
    assert "datacontenttype" not in props


def test_binary_extensions_are_user_properties_with_canonical_strings() -> None:
    envelope = to_binary(event(extensions={"correlationid": "c", "count": 12, "flag": True}))
    props = dict(envelope.user_properties)
    assert (props["correlationid"], props["count"], props["flag"]) == ("c", "12", "true")


def test_binary_user_property_names_carry_no_ce_prefix() -> None:
    names = [name for name, _ in to_binary(event(extensions={"x": "y"})).user_properties]
    assert not any(name.startswith(("ce-", "ce_")) for name in names)


def test_expiryinterval_becomes_the_message_expiry_interval() -> None:
    envelope = to_binary(event(extensions={"expiryinterval": 30}))
    assert envelope.message_expiry == 30
    assert "expiryinterval" not in dict(envelope.user_properties)


@pytest.mark.parametrize("value", [0, -5, True, "soon"])
def test_a_non_positive_or_non_integer_expiry_is_omitted_never_zero(value: Any) -> None:
    assert to_binary(event(extensions={"expiryinterval": value})).message_expiry is None


def test_message_expiry_fits_the_four_byte_mqtt_property() -> None:
    expiry = to_binary(event(extensions={"expiryinterval": 2**40})).message_expiry
    assert expiry is None or 0 < expiry <= 2**32 - 1


def test_no_expiryinterval_means_no_message_expiry() -> None:
    assert to_binary(event()).message_expiry is None


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8"])
def test_payload_format_indicator_is_set_for_json(ctype: str) -> None:
    assert to_binary(event(datacontenttype=ctype, data=b"{}")).payload_is_utf8 is True


@pytest.mark.parametrize("ctype", ["application/msgpack", "application/octet-stream", None])
def test_payload_format_indicator_is_not_set_for_other_data(ctype: str | None) -> None:
    assert to_binary(event(datacontenttype=ctype, data=b"\x80")).payload_is_utf8 is False


# -- structured mode, outgoing ---------------------------------------------------------------


def test_structured_content_type_is_the_cloudevents_json_format() -> None:
    assert to_structured(event()).content_type == "application/cloudevents+json; charset=utf-8"


def test_structured_payload_is_the_whole_event_in_json() -> None:
    envelope = to_structured(event(subject="s", extensions={"correlationid": "c"}))
    raw = orjson.loads(envelope.payload)
    assert raw["id"] == "1" and raw["subject"] == "s" and raw["correlationid"] == "c"
    assert envelope.user_properties == []


def test_structured_payload_is_marked_utf8() -> None:
    assert to_structured(event()).payload_is_utf8 is True


def test_structured_expiry_is_also_the_message_expiry_interval() -> None:
    assert to_structured(event(extensions={"expiryinterval": 12})).message_expiry == 12


def test_structured_zero_expiry_is_omitted() -> None:
    assert to_structured(event(extensions={"expiryinterval": 0})).message_expiry is None


# -- incoming ------------------------------------------------------------------------------


def test_binary_message_becomes_an_event() -> None:
    received = from_mqtt(
        b'{"a":1}',
        "application/json",
        [*REQUIRED, ("subject", "p.l"), ("correlationid", "c")],
        None,
    )
    assert received == event(
        datacontenttype="application/json",
        subject="p.l",
        data=b'{"a":1}',
        extensions={"correlationid": "c"},
    )


def test_binary_empty_payload_is_no_data() -> None:
    assert from_mqtt(b"", None, REQUIRED, None).data is None


def test_binary_without_specversion_is_not_a_cloudevent() -> None:
    with pytest.raises(InvalidCloudEventError, match="specversion"):
        from_mqtt(b"", None, REQUIRED[1:], None)


def test_binary_without_user_properties_is_not_a_cloudevent() -> None:
    with pytest.raises(InvalidCloudEventError):
        from_mqtt(b"x", "application/json", None, None)


def test_binary_missing_type_is_invalid() -> None:
    with pytest.raises(InvalidCloudEventError, match="type"):
        from_mqtt(b"", None, REQUIRED[:3], None)


def test_binary_wrong_specversion_is_invalid() -> None:
    with pytest.raises(InvalidCloudEventError):
        from_mqtt(b"", None, [("specversion", "0.3"), *REQUIRED[1:]], None)


def test_binary_user_properties_that_are_not_attribute_names_are_ignored() -> None:
    received = from_mqtt(b"", None, [*REQUIRED, ("X-Trace", "1"), ("ce-x", "2")], None)
    assert received.extensions == {}


def test_binary_datacontenttype_user_property_is_used_without_content_type() -> None:
    received = from_mqtt(b"{}", None, [*REQUIRED, ("datacontenttype", "application/json")], None)
    assert received.datacontenttype == "application/json"


def test_binary_publish_content_type_wins_over_a_datacontenttype_property() -> None:
    received = from_mqtt(
        b"{}", "application/json", [*REQUIRED, ("datacontenttype", "text/plain")], None
    )
    assert received.datacontenttype == "application/json"


def test_message_expiry_interval_becomes_expiryinterval() -> None:
    assert from_mqtt(b"", None, REQUIRED, 42).expiryinterval == 42


def test_remaining_message_expiry_overrides_a_stale_expiryinterval_property() -> None:
    received = from_mqtt(b"", None, [*REQUIRED, ("expiryinterval", "100")], 7)
    assert received.expiryinterval == 7


def test_expiryinterval_user_property_is_read_as_an_integer() -> None:
    assert from_mqtt(b"", None, [*REQUIRED, ("expiryinterval", "100")], None).expiryinterval == 100


def test_a_non_integer_expiryinterval_property_is_invalid() -> None:
    with pytest.raises(InvalidCloudEventError):
        from_mqtt(b"", None, [*REQUIRED, ("expiryinterval", "later")], None)


def test_no_message_expiry_adds_no_expiryinterval() -> None:
    assert "expiryinterval" not in from_mqtt(b"", None, REQUIRED, None).extensions


@pytest.mark.parametrize(
    "ctype",
    [
        "application/cloudevents+json",
        "application/cloudevents+json; charset=utf-8",
        "Application/CloudEvents+JSON",
    ],
)
def test_structured_content_type_selects_the_json_event_format(ctype: str) -> None:
    payload = b'{"specversion":"1.0","id":"1","source":"src","type":"t","data":{"a":1}}'
    received = from_mqtt(payload, ctype, [("specversion", "ignored")], None)
    assert (received.id, received.type) == ("1", "t")
    assert orjson.loads(received.data or b"") == {"a": 1}


def test_structured_message_expiry_interval_becomes_expiryinterval() -> None:
    payload = to_structured(event()).payload
    assert from_mqtt(payload, "application/cloudevents+json", [], 5).expiryinterval == 5


def test_structured_invalid_json_is_an_invalid_cloudevent() -> None:
    with pytest.raises(InvalidCloudEventError):
        from_mqtt(b"{", "application/cloudevents+json", [], None)


# -- round trips ---------------------------------------------------------------------------


def _received(envelope: Any) -> CloudEvent:
    return from_mqtt(
        envelope.payload, envelope.content_type, envelope.user_properties, envelope.message_expiry
    )


def test_binary_mode_round_trips_a_full_event() -> None:
    original = event(
        datacontenttype="application/msgpack",
        dataschema="urn:s#/$defs/X",
        subject="plant1.line2",
        time="2024-05-06T07:08:09.123456Z",
        data=b"\x81\xa1a\x01",
        extensions={"correlationid": "c", "causationid": "d", "expiryinterval": 60},
    )
    assert _received(to_binary(original)) == original


def test_structured_mode_round_trips_a_full_event() -> None:
    original = event(
        datacontenttype="application/json",
        subject="plant1",
        time="2024-05-06T07:08:09Z",
        data=b'{"x":[1,2,null]}',
        extensions={"correlationid": "c", "expiryinterval": 60, "flag": True, "n": 3},
    )
    assert _received(to_structured(original)) == original


_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)
#: Attribute values: received events may not carry control characters (C0, C1) or the
#: non-characters U+FFFE/U+FFFF (issue 12 input limits); payload text may.
_ATTR_TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"),
    min_size=1,
    max_size=30,
)
_EXT_NAME = st.from_regex(r"[a-z][a-z0-9]{0,19}", fullmatch=True).filter(
    lambda n: n not in CORE_ATTRIBUTES and n not in {"data", "expiryinterval"}
)


@given(
    id_=_ATTR_TEXT,
    source=_ATTR_TEXT,
    type_=_ATTR_TEXT,
    subject=st.none() | _ATTR_TEXT,
    ctype=st.sampled_from(["application/octet-stream", "application/msgpack", "text/plain"]),
    data=st.none() | st.binary(min_size=1, max_size=64),
    extensions=st.dictionaries(_EXT_NAME, _ATTR_TEXT, max_size=4),
    expiry=st.none() | st.integers(1, 2**32 - 1),
)
def test_binary_mode_round_trips_any_string_attributes_and_data(
    id_: str,
    source: str,
    type_: str,
    subject: str | None,
    ctype: str,
    data: bytes | None,
    extensions: dict[str, Any],
    expiry: int | None,
) -> None:
    if expiry is not None:
        extensions = {**extensions, "expiryinterval": expiry}
    original = CloudEvent(
        type=type_,
        source=source,
        id=id_,
        subject=subject,
        datacontenttype=ctype,
        data=data,
        extensions=extensions,
    )
    assert _received(to_binary(original)) == original


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=10,
)
_EXT_VALUE = _ATTR_TEXT | st.integers(-(2**31), 2**31 - 1) | st.booleans()


@given(
    id_=_ATTR_TEXT,
    source=_ATTR_TEXT,
    subject=st.none() | _ATTR_TEXT,
    extensions=st.dictionaries(_EXT_NAME, _EXT_VALUE, max_size=4),
    data=st.one_of(
        st.tuples(st.just("application/json"), _JSON_VALUES.map(orjson.dumps)),
        st.tuples(st.just("application/octet-stream"), st.binary(max_size=64)),
        st.tuples(st.none(), st.none()),
    ),
)
def test_structured_mode_round_trips_typed_extensions_and_data(
    id_: str,
    source: str,
    subject: str | None,
    extensions: dict[str, Any],
    data: tuple[str | None, bytes | None],
) -> None:
    ctype, payload = data
    original = CloudEvent(
        type="t",
        source=source,
        id=id_,
        subject=subject,
        datacontenttype=ctype,
        data=payload,
        extensions=extensions,
    )
    assert _received(to_structured(original)) == original
