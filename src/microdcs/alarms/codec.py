"""How alarm definitions and state records are written to Redis, and read back.

Definitions are stored as their ``...config.alarm.v1`` payload (the wire names an operator
configured them with, so a stored definition reads like the request that stored it);
records as a compact JSON object with short keys (one per alarm, read on every
version change, so small and quick to decode). Views join the two for readers.
"""

from __future__ import annotations

from typing import Any

import orjson

from microdcs.alarms.contract import AlarmState, AlarmView
from microdcs.alarms.definitions import (
    AlarmDefinition,
    definition_from_raw,
    definition_to_config,
)
from microdcs.alarms.states import AlarmRecord, TimerKind

#: A record that was never stored: Normal, condition clear, version 0.
NEW_RECORD = AlarmRecord()


def definition_bytes(definition: AlarmDefinition) -> bytes:
    return orjson.dumps(definition_to_config(definition).to_raw())


def definition_from_bytes(data: bytes) -> AlarmDefinition:
    return definition_from_raw(orjson.loads(data))


def record_bytes(record: AlarmRecord) -> bytes:
    raw: dict[str, Any] = {"s": record.state.value, "v": record.version}
    if record.condition:
        raw["c"] = True
    if record.pending is not None:
        raw["p"] = record.pending.value
        raw["pu"] = record.pending_until
    if record.shelved_until is not None:
        raw["su"] = record.shelved_until
    if record.latched:
        raw["l"] = True
    if record.active_since is not None:
        raw["as"] = record.active_since
    if record.changed_at:
        raw["ca"] = record.changed_at
    if record.value is not None:
        raw["x"] = record.value
    if record.operator is not None:
        raw["o"] = record.operator
    if record.comment is not None:
        raw["m"] = record.comment
    return orjson.dumps(raw)


def record_from_bytes(data: bytes | None) -> AlarmRecord:
    if data is None:
        return NEW_RECORD
    raw = orjson.loads(data)
    pending = raw.get("p")
    return AlarmRecord(
        state=AlarmState(raw["s"]),
        condition=bool(raw.get("c", False)),
        pending=TimerKind(pending) if pending is not None else None,
        pending_until=raw.get("pu"),
        shelved_until=raw.get("su"),
        latched=bool(raw.get("l", False)),
        active_since=raw.get("as"),
        changed_at=float(raw.get("ca", 0.0)),
        value=raw.get("x"),
        operator=raw.get("o"),
        comment=raw.get("m"),
        version=int(raw["v"]),
    )


def alarm_view(scope: str, definition: AlarmDefinition, record: AlarmRecord) -> AlarmView:
    return AlarmView(
        scope=scope,
        alarm=definition.id,
        tag=definition.tag,
        kind=definition.kind,
        priority=definition.priority,
        state=record.state,
        message=definition.message,
        condition=record.condition,
        active_since=record.active_since,
        changed_at=record.changed_at,
        value=record.value,
        group=definition.group,
        shelved_until=record.shelved_until,
        operator=record.operator,
        comment=record.comment,
    )
