"""The equipment wire contract as pure functions (see ``docs/sfc.md``, Engine and equipment).

A command is a CloudEvent of the action's ``TypeId`` on ``{prefix}/{scope}/commands`` whose
``correlationid`` (also the MQTT Correlation Data) names the action run. Equipment answers
on ``{prefix}/{scope}/events`` (the command's Response Topic) with the same
``correlationid``; an answer with ``mdcserrorkind`` set fails the action. An event without
a known ``correlationid`` completes every action of the scope awaiting its ``type``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import orjson

from microdcs.core.cloudevent import (
    CORRELATION_ID,
    ERROR_KIND,
    ERROR_MESSAGE,
    EXPIRY_INTERVAL,
    CloudEvent,
    now_timestamp,
)
from microdcs.core.contenttypes import JSON, is_json, is_msgpack

#: Sent for a cancelled push_command run; equipment stops it if it can. No answer expected.
CANCEL_TYPE = "com.github.aschamberger.microdcs.equipment.cancel.v1"
#: ``mdcserrorkind`` equipment sets on an answer that reports a failed command.
EQUIPMENT_ERROR = "equipment_error"


@dataclass(frozen=True, slots=True)
class EquipmentMessage:
    """An answer or event from equipment, reduced to what matching an action needs."""

    type: str
    correlation_id: str | None
    failed: bool
    #: The answer's data as a JSON object (``{"value": x}`` for anything else).
    result: Mapping[str, Any]
    reason: str


@dataclass(frozen=True, slots=True)
class Command:
    """One command to send to a scope's equipment (a push_command run, or its re-send)."""

    type_id: str
    correlation_id: str
    parameters: Mapping[str, Any]
    timeout_seconds: float | None = None
    #: The equipment ID the action names (``None``: the default equipment processor).
    equipment: str | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    """Tell a scope's equipment to stop the command of ``correlation_id`` if it can."""

    correlation_id: str
    reason: str
    #: The equipment ID of the cancelled run's action (``None``: the default).
    equipment: str | None = None


def command_event(
    *,
    source: str,
    subject: str | None,
    type_id: str,
    correlation_id: str,
    parameters: Mapping[str, Any],
    timeout_seconds: float | None,
) -> CloudEvent:
    """The command CloudEvent of one push_command run; re-sends reuse the correlation id."""
    extensions: dict[str, Any] = {CORRELATION_ID: correlation_id}
    if timeout_seconds:
        extensions[EXPIRY_INTERVAL] = max(1, int(timeout_seconds + 0.999))
    return CloudEvent(
        type=type_id,
        source=source,
        subject=subject,
        time=now_timestamp(),
        datacontenttype=JSON,
        data=orjson.dumps(dict(parameters)),
        extensions=extensions,
    )


def cancel_event(
    *, source: str, subject: str | None, correlation_id: str, reason: str
) -> CloudEvent:
    return CloudEvent(
        type=CANCEL_TYPE,
        source=source,
        subject=subject,
        time=now_timestamp(),
        datacontenttype=JSON,
        data=orjson.dumps({"Reason": reason}),
        extensions={CORRELATION_ID: correlation_id},
    )


def decode_data(data: bytes | None, content_type: str | None) -> Any:
    """JSON or msgpack data as a Python value; anything else (or garbage) as ``None``."""
    if not data:
        return None
    try:
        if is_msgpack(content_type):
            return msgpack.unpackb(data)
        if content_type is None or is_json(content_type):
            return orjson.loads(data)
    except (ValueError, msgpack.UnpackException):
        return None
    return None


def read_message(event: CloudEvent) -> EquipmentMessage:
    """What an incoming equipment CloudEvent means for the engine; never raises."""
    value = decode_data(event.data, event.datacontenttype)
    result: Mapping[str, Any] = (
        value if isinstance(value, dict) else ({} if value is None else {"value": value})
    )
    kind = event.extensions.get(ERROR_KIND)
    reason = ""
    if kind is not None:
        message = event.extensions.get(ERROR_MESSAGE)
        reason = f"{kind}: {message}" if message else str(kind)
    return EquipmentMessage(
        type=event.type,
        correlation_id=event.correlationid,
        failed=kind is not None,
        result=result,
        reason=reason,
    )
