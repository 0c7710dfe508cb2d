"""What the broker accepts, checked before a message is handed to it.

A broker closes the connection on a PUBLISH whose topic holds a wildcard, a U+0000 or
an invalid UTF-8 string (MQTT-3.3.2-2, MQTT-1.5.4-2); Mosquitto also refuses control
characters. The unacknowledged message would then be re-sent on every reconnect and
the replica never recovers, so every string that reaches the wire is checked here, where
the event is mapped, and a message that would fail is refused with
:class:`OutgoingEventError` instead.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from microdcs.core.errors import OutgoingEventError
from microdcs.core.wiretext import MAX_STRING_BYTES, all_wire_text, wire_text_problem

if TYPE_CHECKING:
    from microdcs.transports.mqtt.mapping import MqttEnvelope

_WILDCARDS = re.compile("[+#]")


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` cannot be a PUBLISH topic, or ``None`` when it can."""
    if not topic:
        return "empty topic"
    if _WILDCARDS.search(topic) is not None:
        return "wildcard + or # in a topic name"
    return wire_text_problem(topic)


def check_topic(topic: str, what: str = "topic") -> None:
    """Raise :class:`OutgoingEventError` for a topic the broker would refuse."""
    problem = topic_problem(topic)
    if problem is not None:
        raise OutgoingEventError(f"{what} {_show(topic)} cannot be sent: {problem}")


def check_properties(
    user_properties: list[tuple[str, str]],
    content_type: str | None,
    response_topic: str | None,
    correlation_data: bytes | None,
) -> None:
    """Raise :class:`OutgoingEventError` for metadata the broker would refuse."""
    texts = [text for pair in user_properties for text in pair]
    if content_type is not None:
        texts.append(content_type)
    if not all_wire_text(texts):  # rare: find the culprit and say why
        for name, value in user_properties:
            problem = wire_text_problem(name) or wire_text_problem(value)
            if problem is not None:
                raise OutgoingEventError(
                    f"attribute {_show(name)} = {_show(value)} cannot be sent: {problem}"
                )
        if content_type is not None:
            problem = wire_text_problem(content_type)
            if problem is not None:
                raise OutgoingEventError(f"content type cannot be sent: {problem}")
    if response_topic is not None:
        check_topic(response_topic, "response topic")
    if correlation_data is not None and len(correlation_data) > MAX_STRING_BYTES:
        raise OutgoingEventError(f"correlation data longer than {MAX_STRING_BYTES} bytes")


def check_envelope(envelope: MqttEnvelope, topic: str | None = None) -> None:
    """Raise :class:`OutgoingEventError` if the broker would refuse this message."""
    if topic is not None:
        check_topic(topic)
    check_properties(
        envelope.user_properties,
        envelope.content_type,
        envelope.response_topic,
        envelope.correlation_data,
    )


def _show(value: str, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(value)} chars)"
