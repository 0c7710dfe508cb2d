"""Generated from alarm_config.schema.json by ``microdcs dataclassgen``; do not edit by hand.

Alarm configuration of a scope: store (PUT) or delete (DELETE) one alarm definition on a tag. DELETE
needs only `ID`; PUT needs `Tag` and `Kind` and what the kind compares with (`Setpoint`, for
`deviation` also `Target`, for `discrete` `DiscreteValue`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from microdcs.models import Model


class AlarmKindName(StrEnum):
    """What the alarm compares: high-high, high, low, low-low limits, deviation from a target,
    rate of change (per second, over the last two samples) or a discrete state.
    """

    HH = "HH"
    H = "H"
    L = "L"
    LL = "LL"
    DEVIATION = "deviation"
    RATE_OF_CHANGE = "rate_of_change"
    DISCRETE = "discrete"


class AlarmPriorityName(StrEnum):
    """ISA-18.2 priority of the alarm. Default medium."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(kw_only=True)
class AlarmConfig(Model):
    """Alarm configuration of a scope: store (PUT) or delete (DELETE) one alarm definition on a
    tag. DELETE needs only `ID`; PUT needs `Tag` and `Kind` and what the kind compares with
    (`Setpoint`, for `deviation` also `Target`, for `discrete` `DiscreteValue`).
    """

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.config.alarm.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/alarm_config.schema.json"
    )

    class Config(Model.Config):
        forbid_extra_keys = True

    #: The alarm's id, unique within the scope (e.g. `TI-101.HH`).
    id: str = field(metadata={"alias": "ID", "minLength": 1, "maxLength": 200})
    #: The tag of the current value table the alarm watches.
    tag: str | None = field(
        default=None, metadata={"alias": "Tag", "minLength": 1, "maxLength": 200}
    )
    kind: AlarmKindName | None = field(default=None, metadata={"alias": "Kind"})
    #: HH, H: alarm at or above it; L, LL: at or below it; deviation: the largest allowed distance
    #: from `Target` (alarm at or beyond it); rate_of_change: the largest allowed change per second,
    #: either direction (alarm at or beyond it). Not used by discrete alarms.
    setpoint: float | None = field(default=None, metadata={"alias": "Setpoint"})
    #: The value a deviation alarm measures the distance from.
    target: float | None = field(default=None, metadata={"alias": "Target"})
    #: The tag value that is the alarm condition of a discrete alarm (alarm while value ==
    #: DiscreteValue).
    discrete_value: bool | int | float | str | None = field(
        default=None, metadata={"alias": "DiscreteValue"}
    )
    #: Hysteresis on return (engineering units, per second for rate_of_change): an active alarm
    #: returns only once the value is this far back inside the setpoint. Default 0.
    deadband: float | None = field(default=None, metadata={"alias": "Deadband", "minimum": 0})
    #: Seconds the condition must hold before the alarm is raised (0: at once). Default 0.
    on_delay: float | None = field(
        default=None, metadata={"alias": "OnDelay", "minimum": 0, "maximum": 86400}
    )
    #: Seconds the condition must stay clear before the alarm returns to normal (0: at once).
    #: Default 0.
    off_delay: float | None = field(
        default=None, metadata={"alias": "OffDelay", "minimum": 0, "maximum": 86400}
    )
    priority: AlarmPriorityName | None = field(default=None, metadata={"alias": "Priority"})
    #: A latching alarm stays Latched after its condition clears, until an operator resets it.
    #: Default false.
    latching: bool | None = field(default=None, metadata={"alias": "Latching"})
    #: Alarm class or group (an area, a unit, a piece of equipment) for filtering and KPIs.
    group: str | None = field(default=None, metadata={"alias": "Group", "maxLength": 200})
    #: What the operator reads, e.g. `Reactor temperature high high`.
    message: str | None = field(default=None, metadata={"alias": "Message", "maxLength": 1000})
