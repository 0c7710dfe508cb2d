"""CloudEvents MQTT binding 1.0.2 as pure functions (no paho, no I/O).

Binary mode: Content Type = ``datacontenttype``, payload = data, every other attribute is
a User Property named exactly like the attribute; ``expiryinterval`` rides in the Message
Expiry Interval. Structured mode: the payload is the JSON event format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from microdcs.core import eventformat
from microdcs.core.cloudevent import (
    CORE_ATTRIBUTES,
    EXPIRY_INTERVAL,
    MAX_ATTRIBUTE_LENGTH,
    CloudEvent,
    ExtensionValue,
    canonical_string,
    is_attribute_name,
    parse_extension,
)
from microdcs.core.contenttypes import CLOUDEVENTS_JSON, is_json, is_structured
from microdcs.core.errors import InvalidCloudEventError
from microdcs.transports.mqtt import codec

MAX_EXPIRY = 2**32 - 1

#: Attributes whose values repeat from event to event (per processor, type or scope), so
#: a :class:`codec.PairCache` for them pays off; ids, times and correlation do not repeat.
REPEATING_ATTRIBUTES = frozenset(
    {"specversion", "source", "type", "dataschema", "subject", "method"}
)


@dataclass(slots=True)
class MqttEnvelope:
    """The MQTT-level view of one message: payload and the v5 properties we use."""

    payload: bytes
    content_type: str | None = None
    user_properties: list[tuple[str, str]] = field(default_factory=list)
    message_expiry: int | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    payload_is_utf8: bool = False


def to_binary(event: CloudEvent) -> MqttEnvelope:
    """Binary-mode envelope of an event (what microdcs sends, unless it answers a
    structured-mode request)."""
    props: list[tuple[str, str]] = [
        ("specversion", event.specversion),
        ("id", event.id),
        ("source", event.source),
        ("type", event.type),
    ]
    if event.dataschema is not None:
        props.append(("dataschema", event.dataschema))
    if event.subject is not None:
        props.append(("subject", event.subject))
    if event.time is not None:
        props.append(("time", event.time))
    expiry: int | None = None
    for name, value in event.extensions.items():
        if name == EXPIRY_INTERVAL:
            expiry = _positive_int(value)
            continue
        props.append((name, canonical_string(value)))
    return MqttEnvelope(
        payload=event.data or b"",
        content_type=event.datacontenttype,
        user_properties=props,
        message_expiry=expiry,
        payload_is_utf8=is_json(event.datacontenttype),
    )


def encode_properties(envelope: MqttEnvelope, repeating: codec.PairCache | None = None) -> bytes:
    """The PUBLISH property section carrying an envelope's metadata.

    ``repeating`` (for :data:`REPEATING_ATTRIBUTES`) keeps what repeats already encoded.
    """
    return codec.encode_publish_properties(
        payload_format=1 if envelope.payload_is_utf8 else None,
        message_expiry=envelope.message_expiry,
        content_type=envelope.content_type,
        response_topic=envelope.response_topic,
        correlation_data=envelope.correlation_data,
        user_properties=envelope.user_properties,
        repeating=repeating,
    )


def to_structured(event: CloudEvent) -> MqttEnvelope:
    """Structured-mode envelope (JSON event format): the answer to a structured request."""
    expiry = _positive_int(event.extensions.get(EXPIRY_INTERVAL))
    return MqttEnvelope(
        payload=eventformat.encode_json(event),
        content_type=f"{CLOUDEVENTS_JSON}; charset=utf-8",
        message_expiry=expiry,
        payload_is_utf8=True,
    )


def from_mqtt(
    payload: bytes,
    content_type: str | None,
    user_properties: list[tuple[str, str]] | None,
    message_expiry: int | None,
    max_length: int = MAX_ATTRIBUTE_LENGTH,
) -> CloudEvent:
    """Decode a received message in either mode; raises ``InvalidCloudEventError``.

    ``max_length`` bounds every attribute value (``APP_LIMIT_ATTRIBUTE_LENGTH``).
    """
    if is_structured(content_type):
        event = eventformat.decode_json(payload, max_length=max_length)
    else:
        event = _from_binary(payload, content_type, user_properties or [], max_length)
    if message_expiry:
        # The broker counts the interval down; the remaining time is the truth.
        event.extensions[EXPIRY_INTERVAL] = message_expiry
    return event


def _from_binary(
    payload: bytes,
    content_type: str | None,
    user_properties: list[tuple[str, str]],
    max_length: int,
) -> CloudEvent:
    core: dict[str, str] = {}
    extensions: dict[str, ExtensionValue] = {}
    for name, value in user_properties:
        if name in CORE_ATTRIBUTES:
            core[name] = value
        elif is_attribute_name(name):
            extensions[name] = parse_extension(name, value)
    if "specversion" not in core:
        raise InvalidCloudEventError("not a CloudEvent: user property 'specversion' is missing")
    event = CloudEvent(
        type=core.get("type", ""),
        source=core.get("source", ""),
        id=core.get("id", ""),
        specversion=core["specversion"],
        datacontenttype=content_type or core.get("datacontenttype"),
        dataschema=core.get("dataschema"),
        subject=core.get("subject"),
        time=core.get("time"),
        data=payload if payload else None,
        extensions=extensions,
    )
    event.validate(max_length=max_length)
    return event


def _positive_int(value: ExtensionValue | None) -> int | None:
    """MQTT forbids a zero expiry meaning 'never'; omit instead of sending 0."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    # The MQTT property is a four-byte integer; longer asks mean "as long as possible".
    return min(number, MAX_EXPIRY) if number > 0 else None
