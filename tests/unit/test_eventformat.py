"""JSON event format (structured mode), the dict form and the compact storage record."""

from __future__ import annotations

import base64
from typing import Any

import msgpack
import orjson
import pytest

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import InvalidCloudEventError, PayloadDecodeError
from microdcs.core.eventformat import (
    decode_json,
    encode_json,
    from_dict,
    pack_records,
    to_dict,
    unpack_records,
)

BASE: dict[str, Any] = {"specversion": "1.0", "id": "1", "source": "src", "type": "t"}


def event(**kwargs: Any) -> CloudEvent:
    return CloudEvent(type="t", source="src", id="1", **kwargs)


# -- to_dict / from_dict --------------------------------------------------------------


def test_to_dict_without_data_has_only_attributes() -> None:
    assert to_dict(event(subject="a.b", extensions={"correlationid": "c"})) == {
        **BASE,
        "subject": "a.b",
        "correlationid": "c",
    }


def test_to_dict_embeds_json_data_as_a_value() -> None:
    raw = to_dict(event(datacontenttype="application/json", data=b'{"a": [1, 2]}'))
    assert raw["data"] == {"a": [1, 2]}
    assert "data_base64" not in raw


def test_to_dict_treats_data_without_content_type_as_json() -> None:
    assert to_dict(event(data=b"[true]"))["data"] == [True]


def test_to_dict_carries_json_content_type_data_that_is_not_json_as_base64() -> None:
    raw = to_dict(event(datacontenttype="application/json", data=b"\xffnope"))
    assert raw["data_base64"] == base64.b64encode(b"\xffnope").decode()
    assert "data" not in raw


def test_to_dict_carries_binary_data_as_base64() -> None:
    raw = to_dict(event(datacontenttype="application/octet-stream", data=b"\x00\x01"))
    assert raw["data_base64"] == "AAE="


def test_to_dict_carries_msgpack_data_as_base64_without_native_bytes() -> None:
    packed = msgpack.packb({"a": 1})
    raw = to_dict(event(datacontenttype="application/msgpack", data=packed))
    assert base64.b64decode(raw["data_base64"]) == packed


def test_to_dict_with_native_bytes_decodes_msgpack_data_to_a_value() -> None:
    packed = msgpack.packb({"a": b"\x00", "b": [1]}, use_bin_type=True)
    raw = to_dict(event(datacontenttype="application/msgpack", data=packed), native_bytes=True)
    assert raw["data"] == {"a": b"\x00", "b": [1]}


def test_to_dict_with_native_bytes_carries_other_binary_data_as_bytes() -> None:
    raw = to_dict(event(datacontenttype="image/png", data=b"\x89PNG"), native_bytes=True)
    assert raw["data"] == b"\x89PNG"
    assert "data_base64" not in raw


def test_to_dict_with_native_bytes_carries_undecodable_msgpack_data_as_bytes() -> None:
    # Like undecodable JSON data (base64), malformed msgpack must not raise a raw
    # msgpack exception out of the dict conversion.
    bad = event(datacontenttype="application/msgpack", data=b"\xc1")
    raw = to_dict(bad, native_bytes=True)
    assert from_dict(raw).data == b"\xc1"


def test_to_dict_with_native_bytes_decodes_msgpack_maps_with_integer_keys() -> None:
    # from_dict accepts such data (msgpack maps may have any key); the way back must too.
    packed = msgpack.packb({1: b"\x00"}, use_bin_type=True)
    raw = to_dict(event(datacontenttype="application/msgpack", data=packed), native_bytes=True)
    assert raw["data"] == {1: b"\x00"}


def test_native_bytes_dict_form_round_trips_msgpack_data() -> None:
    packed = msgpack.packb({"a": [1, b"\x02"], "b": None}, use_bin_type=True)
    original = event(datacontenttype="application/msgpack", data=packed)
    assert from_dict(to_dict(original, native_bytes=True)) == original


def test_from_dict_reads_attributes_and_extensions() -> None:
    parsed = from_dict(
        {
            **BASE,
            "subject": "s1",
            "time": "2024-01-01T00:00:00Z",
            "dataschema": "urn:x",
            "correlationid": "c",
            "flag": True,
            "count": 3,
        }
    )
    assert (parsed.id, parsed.source, parsed.type, parsed.specversion) == ("1", "src", "t", "1.0")
    assert (parsed.subject, parsed.time, parsed.dataschema) == (
        "s1",
        "2024-01-01T00:00:00Z",
        "urn:x",
    )
    assert parsed.extensions == {"correlationid": "c", "flag": True, "count": 3}
    assert parsed.data is None


def test_from_dict_turns_a_string_expiryinterval_into_an_integer() -> None:
    assert from_dict({**BASE, "expiryinterval": "30"}).expiryinterval == 30


def test_from_dict_encodes_json_data_as_json_bytes() -> None:
    parsed = from_dict({**BASE, "datacontenttype": "application/json", "data": {"a": 1}})
    assert orjson.loads(parsed.data or b"") == {"a": 1}


def test_from_dict_decodes_data_base64_byte_for_byte() -> None:
    parsed = from_dict(
        {**BASE, "datacontenttype": "application/octet-stream", "data_base64": "AAH/"}
    )
    assert parsed.data == b"\x00\x01\xff"


def test_from_dict_packs_msgpack_data_values() -> None:
    parsed = from_dict({**BASE, "datacontenttype": "application/msgpack", "data": {"a": b"\x01"}})
    assert msgpack.unpackb(parsed.data or b"", raw=False) == {"a": b"\x01"}


def test_from_dict_takes_native_bytes_data_unchanged() -> None:
    parsed = from_dict({**BASE, "datacontenttype": "image/png", "data": b"\x89PNG"})
    assert parsed.data == b"\x89PNG"


def test_from_dict_encodes_string_data_of_other_types_as_utf8() -> None:
    parsed = from_dict({**BASE, "datacontenttype": "text/plain", "data": "gr\u00fc\u00df"})
    assert parsed.data == "gr\u00fc\u00df".encode()


@pytest.mark.parametrize("raw", [[BASE], "event", None, 3])
def test_from_dict_rejects_anything_but_an_object(raw: Any) -> None:
    with pytest.raises(InvalidCloudEventError):
        from_dict(raw)


@pytest.mark.parametrize("missing", ["id", "source", "type", "specversion"])
def test_from_dict_rejects_a_missing_required_attribute(missing: str) -> None:
    raw = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(InvalidCloudEventError):
        from_dict(raw)


def test_from_dict_rejects_a_core_attribute_that_is_not_a_string() -> None:
    with pytest.raises(InvalidCloudEventError, match="subject"):
        from_dict({**BASE, "subject": 5})


@pytest.mark.parametrize("name", ["Bad", "with-dash", "x_y"])
def test_from_dict_rejects_an_invalid_attribute_name(name: str) -> None:
    with pytest.raises(InvalidCloudEventError):
        from_dict({**BASE, name: "v"})


@pytest.mark.parametrize("value", [1.5, [1], {"a": 1}, None])
def test_from_dict_rejects_an_extension_of_an_unsupported_type(value: Any) -> None:
    with pytest.raises(InvalidCloudEventError):
        from_dict({**BASE, "ext": value})


def test_from_dict_rejects_invalid_base64() -> None:
    with pytest.raises(PayloadDecodeError):
        from_dict({**BASE, "data_base64": "not base64!"})


def test_from_dict_rejects_data_base64_that_is_not_a_string() -> None:
    with pytest.raises(PayloadDecodeError):
        from_dict({**BASE, "data_base64": 12})


# -- encode_json / decode_json ---------------------------------------------------------


def test_encode_json_embeds_json_data_as_a_json_value() -> None:
    payload = encode_json(event(datacontenttype="application/json", data=b'{"x":1}'))
    assert orjson.loads(payload)["data"] == {"x": 1}


def test_encode_json_carries_binary_data_as_data_base64() -> None:
    payload = encode_json(event(datacontenttype="application/msgpack", data=b"\x81\xa1a\x01"))
    raw = orjson.loads(payload)
    assert base64.b64decode(raw["data_base64"]) == b"\x81\xa1a\x01"
    assert "data" not in raw


def test_encode_json_writes_typed_extensions() -> None:
    payload = encode_json(event(extensions={"expiryinterval": 5, "flag": False, "c": "x"}))
    raw = orjson.loads(payload)
    assert (raw["expiryinterval"], raw["flag"], raw["c"]) == (5, False, "x")


def test_encode_json_output_is_valid_json_when_json_typed_data_is_not_json() -> None:
    # A JSON content type does not make the bytes JSON; the event format must stay valid.
    original = event(datacontenttype="application/json", data=b"\xffnot json")
    assert decode_json(encode_json(original)).data == b"\xffnot json"


def test_encode_json_output_is_valid_json_for_binary_data_without_content_type() -> None:
    original = event(data=b"\x00\x01")
    assert decode_json(encode_json(original)).data == b"\x00\x01"


def test_json_event_format_round_trips_every_attribute() -> None:
    original = event(
        datacontenttype="application/json; charset=utf-8",
        dataschema="urn:schema",
        subject="plant1.line2",
        time="2024-05-06T07:08:09.123456Z",
        data=b'{"k":"v"}',
        extensions={"correlationid": "c", "expiryinterval": 9, "flag": True},
    )
    assert decode_json(encode_json(original)) == original


@pytest.mark.parametrize("payload", [b"{", b"\xff", b""])
def test_decode_json_rejects_a_payload_that_is_not_json(payload: bytes) -> None:
    with pytest.raises(InvalidCloudEventError):
        decode_json(payload)


def test_decode_json_rejects_a_json_value_that_is_not_an_object() -> None:
    with pytest.raises(InvalidCloudEventError):
        decode_json(b"[1,2]")


# -- pack_records / unpack_records ------------------------------------------------------


def test_record_round_trips_an_event_with_typed_extensions_and_binary_data() -> None:
    original = event(
        datacontenttype="application/msgpack",
        dataschema="urn:s",
        subject="a",
        time="2024-01-01T00:00:00Z",
        data=b"\x00\xff",
        extensions={"correlationid": "c", "expiryinterval": 7, "flag": True},
    )
    assert unpack_records(pack_records([original])) == [original]


def test_record_round_trips_an_event_without_optional_attributes() -> None:
    original = event()
    assert unpack_records(pack_records([original])) == [original]


def test_record_is_more_compact_than_the_json_format() -> None:
    original = event(datacontenttype="application/json", data=b'{"a":1}', subject="x")
    assert len(pack_records([original])) < len(encode_json(original))


def test_records_keep_several_events_in_order() -> None:
    events = [
        CloudEvent(type="t", source="src", id="1", subject="a"),
        CloudEvent(type="t", source="src", id="2", data=b"x"),
        CloudEvent(type="u", source="src", id="3"),
    ]
    assert unpack_records(pack_records(events)) == events
    assert unpack_records(pack_records([])) == []


def test_records_written_in_the_earlier_one_blob_per_event_layout_are_still_read() -> None:
    original = event(subject="a", extensions={"correlationid": "c", "expiryinterval": 7})
    fields = [
        original.type,
        original.source,
        original.id,
        original.datacontenttype,
        original.dataschema,
        original.subject,
        original.time,
        original.data,
        original.extensions,
    ]
    earlier = msgpack.packb([msgpack.packb(fields, use_bin_type=True)], use_bin_type=True)
    assert unpack_records(earlier) == [original]
