"""Interoperability with the official ``cloudevents`` SDK (v2 core API).

Structured mode: events serialised by the SDK's JSON format parse into the same event
here, and ours parse into the same event there. Binary mode: our MQTT User Properties are
the SDK attributes in their canonical string form. The MQTT binding names properties like
the attributes (no ``ce-``/``ce_`` prefix) and carries UTF-8 strings as they are, so the
SDK's canonical form is compared without the percent-encoding its HTTP header helper adds.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson
from cloudevents.core.bindings.common import decode_header_value, encode_header_value
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from hypothesis import given
from hypothesis import strategies as st

from microdcs.core.cloudevent import CORE_ATTRIBUTES, CloudEvent
from microdcs.core.eventformat import decode_json, encode_json
from microdcs.transports.mqtt.mapping import from_mqtt, to_binary

STRUCTURED = "application/cloudevents+json"
FORMAT = JSONFormat()
TIME = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
TIME_TEXT = "2024-05-06T07:08:09.123456Z"


def sdk_canonical(value: Any) -> str:
    """The SDK's canonical header string of a value, without HTTP percent-encoding."""
    return unquote(encode_header_value(value))


def sdk_properties(sdk: SdkEvent) -> dict[str, str]:
    """The MQTT User Properties an SDK event maps to in binary mode."""
    return {
        name: sdk_canonical(value)
        for name, value in sdk.get_attributes().items()
        if name not in ("datacontenttype", "expiryinterval")
    }


def sdk_event(**extra: Any) -> SdkEvent:
    data = extra.pop("data", None)
    attributes = {
        "id": "evt-1",
        "source": "urn:mes/plant 1",
        "type": "org.opcfoundation.ISA95-JOBCONTROL_V2.Store.v2",
        "time": TIME,
        **extra,
    }
    return SdkEvent(attributes, data)


def assert_same_attributes(ours: CloudEvent, sdk: SdkEvent) -> None:
    """Every context attribute and extension equal, ``time`` compared as an instant."""
    sdk_attrs = dict(sdk.get_attributes())
    sdk_time = sdk_attrs.pop("time")
    assert ours.time is not None and datetime.fromisoformat(ours.time) == sdk_time
    ours_attrs = ours.attributes()
    ours_attrs.pop("time")
    assert ours_attrs == sdk_attrs


# -- structured mode: SDK -> microdcs --------------------------------------------------


def test_an_sdk_structured_event_has_the_same_attributes_and_extensions_here() -> None:
    sdk = sdk_event(
        datacontenttype="application/json",
        dataschema="urn:schema#/$defs/StoreRequest",
        subject="plant1.line2",
        correlationid="wf-1",
        expiryinterval=30,
        flag=True,
        data={"JobOrder": {"ID": "J1"}},
    )
    ours = decode_json(FORMAT.write(sdk))
    assert_same_attributes(ours, sdk)


def test_an_sdk_structured_event_keeps_its_json_data() -> None:
    sdk = sdk_event(datacontenttype="application/json", data={"a": [1, "x", None]})
    ours = decode_json(FORMAT.write(sdk))
    assert orjson.loads(ours.data or b"") == {"a": [1, "x", None]}


def test_an_sdk_structured_time_arrives_as_the_sdk_wrote_it() -> None:
    ours = decode_json(FORMAT.write(sdk_event()))
    assert ours.time == TIME_TEXT


def test_sdk_binary_data_arrives_byte_for_byte_through_data_base64() -> None:
    blob = bytes(range(256))
    ours = decode_json(
        FORMAT.write(sdk_event(datacontenttype="application/octet-stream", data=blob))
    )
    assert ours.data == blob


def test_an_sdk_structured_event_received_over_mqtt_is_the_same_event() -> None:
    sdk = sdk_event(datacontenttype="application/json", subject="ww", data={"k": 1})
    ours = from_mqtt(FORMAT.write(sdk), f"{STRUCTURED}; charset=utf-8", [], None)
    assert_same_attributes(ours, sdk)
    assert orjson.loads(ours.data or b"") == {"k": 1}


def test_an_sdk_text_payload_arrives_as_its_utf8_bytes() -> None:
    sdk = sdk_event(datacontenttype="text/plain", data="gr\u00fc\u00dfe")
    assert decode_json(FORMAT.write(sdk)).data == "gr\u00fc\u00dfe".encode()


# -- structured mode: microdcs -> SDK --------------------------------------------------


def ours_event(**kwargs: Any) -> CloudEvent:
    return CloudEvent(
        type="org.opcfoundation.ISA95-JOBCONTROL_V2.Store.v2",
        source="microdcs/r1",
        id="evt-2",
        time=TIME_TEXT,
        **kwargs,
    )


def test_our_structured_event_is_read_by_the_sdk_as_the_same_event() -> None:
    ours = ours_event(
        datacontenttype="application/json",
        dataschema="urn:s",
        subject="plant1",
        data=b'{"ReturnStatus":1}',
        extensions={"correlationid": "c", "causationid": "d", "expiryinterval": 9, "flag": False},
    )
    sdk = FORMAT.read(None, encode_json(ours))
    assert_same_attributes(ours, sdk)
    assert sdk.get_data() == {"ReturnStatus": 1}


def test_our_binary_data_is_read_by_the_sdk_byte_for_byte() -> None:
    ours = ours_event(datacontenttype="application/msgpack", data=b"\x81\xa1a\xc4\x01\x00")
    sdk = FORMAT.read(None, encode_json(ours))
    assert sdk.get_data() == b"\x81\xa1a\xc4\x01\x00"


def test_our_structured_event_validates_as_an_sdk_v1_event() -> None:
    sdk = FORMAT.read(None, encode_json(ours_event(extensions={"mdcserrorkind": "expired"})))
    assert isinstance(sdk, SdkEvent)
    assert sdk.get_extension("mdcserrorkind") == "expired"


# -- binary mode -----------------------------------------------------------------------


def test_our_user_properties_equal_the_sdk_canonical_attribute_strings() -> None:
    sdk = sdk_event(
        datacontenttype="application/json",
        dataschema="https://example.com/s.json#/$defs/X",
        subject="plant1.line2",
        correlationid="wf-1",
        count=7,
    )
    ours = ours_event(
        datacontenttype="application/json",
        dataschema="https://example.com/s.json#/$defs/X",
        subject="plant1.line2",
        extensions={"correlationid": "wf-1", "count": 7},
    )
    ours.id, ours.source, ours.type = sdk.get_id(), sdk.get_source(), sdk.get_type()
    assert dict(to_binary(ours).user_properties) == sdk_properties(sdk)


def test_binary_time_is_the_sdk_canonical_rfc3339_string() -> None:
    props = dict(to_binary(ours_event()).user_properties)
    assert props["time"] == sdk_canonical(TIME)
    assert decode_header_value("time", props["time"]) == TIME


def test_binary_values_are_carried_verbatim_without_percent_encoding() -> None:
    props = dict(to_binary(ours_event(subject="Halle 3/\u00d6fen")).user_properties)
    assert props["subject"] == "Halle 3/\u00d6fen"
    assert props["source"] == "microdcs/r1"


def test_binary_names_are_the_sdk_attribute_names_without_prefix() -> None:
    sdk = sdk_event(datacontenttype="application/json", subject="s", correlationid="c")
    props = [
        (name, sdk_canonical(value))
        for name, value in sdk.get_attributes().items()
        if name != "datacontenttype"
    ]
    envelope = to_binary(from_mqtt(b"{}", "application/json", props, None))
    assert {name for name, _ in envelope.user_properties} == set(sdk_properties(sdk))


def test_a_boolean_extension_is_lower_case_true_per_the_type_system() -> None:
    # The SDK's header helper would write Python's "True"; CloudEvents says "true".
    assert dict(to_binary(ours_event(extensions={"flag": True})).user_properties)["flag"] == "true"


def test_user_properties_from_an_sdk_event_parse_back_to_the_same_event() -> None:
    sdk = sdk_event(
        datacontenttype="application/json",
        subject="plant1.line2",
        dataschema="urn:s",
        correlationid="wf-1",
        data={"JobOrderID": "J1"},
    )
    payload = FORMAT.write_data(sdk.get_data(), sdk.get_datacontenttype())
    ours = from_mqtt(payload, sdk.get_datacontenttype(), list(sdk_properties(sdk).items()), None)
    assert_same_attributes(ours, sdk)
    assert ours.data == payload


def test_the_sdk_expiryinterval_rides_in_the_message_expiry_interval() -> None:
    sdk = sdk_event(expiryinterval=45)
    ours = from_mqtt(b"", None, list(sdk_properties(sdk).items()), 45)
    assert_same_attributes(ours, sdk)
    assert to_binary(ours).message_expiry == 45


def test_sdk_binary_data_is_our_payload_byte_for_byte() -> None:
    blob = b"\x00\xff\x10PNG"
    sdk = sdk_event(datacontenttype="image/png", data=blob)
    ours = from_mqtt(
        FORMAT.write_data(blob, "image/png"), "image/png", list(sdk_properties(sdk).items()), None
    )
    assert ours.data == blob
    assert to_binary(ours).payload == blob


# -- properties ------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=24)
#: Attribute values: received events may not carry control characters (C0, C1) or the
#: non-characters U+FFFE/U+FFFF (issue 12 input limits); payload text may.
_ATTR_TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"),
    min_size=1,
    max_size=24,
)
_EXT_NAME = st.from_regex(r"[a-z][a-z0-9]{0,19}", fullmatch=True).filter(
    lambda n: n not in CORE_ATTRIBUTES and n not in {"data", "expiryinterval"}
)
_TIME = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC)
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=10,
)


@st.composite
def sdk_attributes(draw: st.DrawFn, extension_values: st.SearchStrategy[Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "id": draw(_ATTR_TEXT),
        "source": draw(_ATTR_TEXT),
        "type": draw(_ATTR_TEXT),
        "time": draw(_TIME),
    }
    for name in ("subject", "dataschema"):
        value = draw(st.none() | _ATTR_TEXT)
        if value is not None:
            attrs[name] = value
    attrs.update(draw(st.dictionaries(_EXT_NAME, extension_values, max_size=4)))
    expiry = draw(st.none() | st.integers(1, 2**31 - 1))
    if expiry is not None:
        attrs["expiryinterval"] = expiry
    return attrs


_STRUCTURED_DATA = st.one_of(
    st.tuples(st.just("application/json"), st.dictionaries(_TEXT, _JSON, max_size=4)),
    st.tuples(st.just("application/octet-stream"), st.binary(max_size=64)),
    st.tuples(st.none(), st.none()),
)


@given(
    attrs=sdk_attributes(_ATTR_TEXT | st.integers(-(2**31), 2**31 - 1) | st.booleans()),
    data=_STRUCTURED_DATA,
)
def test_structured_mode_round_trips_sdk_events_unchanged(
    attrs: dict[str, Any], data: tuple[str | None, Any]
) -> None:
    ctype, value = data
    if ctype is not None:
        attrs["datacontenttype"] = ctype
    sdk = SdkEvent(attrs, value)

    ours = decode_json(FORMAT.write(sdk))
    assert_same_attributes(ours, sdk)
    if isinstance(value, bytes):
        assert ours.data == value
    elif value is not None:
        assert orjson.loads(ours.data or b"") == value

    back = FORMAT.read(None, encode_json(ours))
    assert back.get_attributes() == sdk.get_attributes()
    assert back.get_data() == value


@given(
    attrs=sdk_attributes(_ATTR_TEXT),
    data=st.tuples(
        st.sampled_from(["application/json", "application/msgpack", "application/octet-stream"]),
        st.none() | st.binary(min_size=1, max_size=64),
    ),
)
def test_binary_mode_round_trips_sdk_events_unchanged(
    attrs: dict[str, Any], data: tuple[str, bytes | None]
) -> None:
    ctype, payload = data
    attrs["datacontenttype"] = ctype
    sdk = SdkEvent(attrs, payload)
    props = sdk_properties(sdk)
    expiry = sdk.get_extension("expiryinterval")

    ours = from_mqtt(payload or b"", ctype, list(props.items()), expiry)
    assert_same_attributes(ours, sdk)
    assert ours.data == payload

    envelope = to_binary(ours)
    assert dict(envelope.user_properties) == props
    assert envelope.content_type == ctype
    assert envelope.payload == (payload or b"")
    assert envelope.message_expiry == expiry


def test_data_base64_alphabet_matches_the_sdk() -> None:
    blob = b"\xfb\xff\xfe"
    ours = orjson.loads(encode_json(ours_event(datacontenttype="application/x", data=blob)))
    sdk = orjson.loads(FORMAT.write(sdk_event(datacontenttype="application/x", data=blob)))
    assert ours["data_base64"] == sdk["data_base64"] == base64.b64encode(blob).decode()
