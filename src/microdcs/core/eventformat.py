"""The CloudEvents JSON event format (structured mode) and its dict form.

The dict form is also what MessagePack-RPC carries (``cloudevent_dict``), where binary
data may travel natively as bytes instead of ``data_base64``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgpack
import orjson

from microdcs.core.cloudevent import (
    CORE_ATTRIBUTES,
    MAX_ATTRIBUTE_LENGTH,
    CloudEvent,
    ExtensionValue,
    is_attribute_name,
    parse_extension,
)
from microdcs.core.contenttypes import is_json, is_msgpack
from microdcs.core.errors import InvalidCloudEventError, PayloadDecodeError


def to_dict(event: CloudEvent, *, native_bytes: bool = False) -> dict[str, Any]:
    """The event as a JSON-format dict; JSON data becomes a value, other data base64.

    With ``native_bytes`` (msgpack transports) msgpack data is decoded to a value and
    other binary data is carried as ``data`` bytes rather than ``data_base64``.
    """
    result: dict[str, Any] = dict(event.attributes())
    data = event.data
    if data is None:
        return result
    content_type = event.datacontenttype
    if content_type is None or is_json(content_type):
        try:
            result["data"] = orjson.loads(data)
        except orjson.JSONDecodeError:
            result["data_base64"] = base64.b64encode(data).decode("ascii")
    elif native_bytes and is_msgpack(content_type):
        try:
            result["data"] = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException, msgpack.ExtraData):
            result["data"] = data  # not decodable: carry the bytes as they are
    elif native_bytes:
        result["data"] = data
    else:
        result["data_base64"] = base64.b64encode(data).decode("ascii")
    return result


def from_dict(raw: Any, *, max_length: int = MAX_ATTRIBUTE_LENGTH) -> CloudEvent:
    """Build and validate an event from its JSON-format dict (attribute limit ``max_length``)."""
    if not isinstance(raw, dict):
        raise InvalidCloudEventError("a structured CloudEvent must be a JSON object")
    extensions: dict[str, ExtensionValue] = {}
    core: dict[str, Any] = {}
    for name, value in raw.items():
        if name in ("data", "data_base64"):
            continue
        if not isinstance(name, str) or not is_attribute_name(name):
            raise InvalidCloudEventError(f"invalid attribute name {name!r}")
        if name in CORE_ATTRIBUTES:
            if value is not None and not isinstance(value, str):
                raise InvalidCloudEventError(f"attribute {name!r} must be a string")
            core[name] = value
        elif isinstance(value, bool | int | str):
            extensions[name] = parse_extension(name, value) if isinstance(value, str) else value
        else:
            raise InvalidCloudEventError(f"extension {name!r} must be a string, int or bool")
    event = CloudEvent(
        type=core.get("type") or "",
        source=core.get("source") or "",
        id=core.get("id") or "",
        specversion=core.get("specversion") or "",
        datacontenttype=core.get("datacontenttype"),
        dataschema=core.get("dataschema"),
        subject=core.get("subject"),
        time=core.get("time"),
        extensions=extensions,
    )
    event.validate(max_length=max_length)
    try:
        event.data = _data_bytes(raw, event.datacontenttype)
    except (TypeError, ValueError, OverflowError) as exc:
        # orjson refuses more than 254 levels ("Recursion limit reached"), msgpack
        # values it cannot pack: input errors, never an internal error.
        raise PayloadDecodeError(f"data cannot be encoded (nested too deeply?): {exc}") from None
    return event


def _data_bytes(raw: dict[str, Any], content_type: str | None) -> bytes | None:
    if "data_base64" in raw:
        encoded = raw["data_base64"]
        if not isinstance(encoded, str | bytes):
            raise PayloadDecodeError("data_base64 must be a string")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise PayloadDecodeError("data_base64 is not valid base64") from None
    if "data" not in raw:
        return None
    data = raw["data"]
    if isinstance(data, bytes):
        return data
    if content_type is None or is_json(content_type):
        return orjson.dumps(data)
    if is_msgpack(content_type):
        return bytes(msgpack.packb(data, use_bin_type=True))
    if isinstance(data, str):
        return data.encode("utf-8")
    return orjson.dumps(data)


def encode_json(event: CloudEvent) -> bytes:
    """Serialise in the JSON event format (``application/cloudevents+json``)."""
    return orjson.dumps(to_dict(event))


def decode_json(payload: bytes, *, max_length: int = MAX_ATTRIBUTE_LENGTH) -> CloudEvent:
    """Parse the JSON event format; raises ``InvalidCloudEventError`` or ``PayloadDecodeError``."""
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidCloudEventError(f"structured CloudEvent is not valid JSON: {exc}") from None
    return from_dict(raw, max_length=max_length)


def pack_records(events: list[CloudEvent]) -> bytes:
    """Compact msgpack of events, for storing them (e.g. the responses kept for dedupe).

    One ``packb`` call for the whole list: this runs for every handled message.
    """
    return bytes(
        msgpack.packb(
            [
                [
                    event.type,
                    event.source,
                    event.id,
                    event.datacontenttype,
                    event.dataschema,
                    event.subject,
                    event.time,
                    event.data,
                    event.extensions,
                ]
                for event in events
            ],
            use_bin_type=True,
        )
    )


def unpack_records(raw: bytes) -> list[CloudEvent]:
    """Inverse of :func:`pack_records`.

    Also reads the earlier layout, where each event was a msgpack blob of its own, so
    records written before an upgrade stay readable until they expire.
    """
    return [
        _from_record(msgpack.unpackb(item, raw=False) if isinstance(item, bytes) else item)
        for item in msgpack.unpackb(raw, raw=False)
    ]


def _from_record(fields: list[Any]) -> CloudEvent:
    return CloudEvent(
        type=fields[0],
        source=fields[1],
        id=fields[2],
        datacontenttype=fields[3],
        dataschema=fields[4],
        subject=fields[5],
        time=fields[6],
        data=fields[7],
        extensions=fields[8],
    )
