"""Alarm definitions: what one alarm watches, what it compares with and how it behaves.

An :class:`AlarmDefinition` is the checked, immutable form of a ``...config.alarm.v1``
payload (:class:`~microdcs_models.alarm_config.AlarmConfig`). Everything that can be wrong
with a definition is found here, once, when it is configured, so the evaluation that runs
for every sample never meets a missing setpoint or a negative delay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from microdcs.alarms.contract import AlarmKind, AlarmPriority
from microdcs.core.errors import InputError, InvalidRequestError
from microdcs_models.alarm_config import AlarmConfig, AlarmKindName, AlarmPriorityName

__all__ = [
    "ALARM_CONFIG_TYPE",
    "ANALOG_KINDS",
    "MAX_DELAY_SECONDS",
    "AlarmDefinition",
    "DiscreteValue",
    "definition_from_config",
    "definition_from_raw",
    "definition_to_config",
    "definitions_from_data",
]

#: CloudEvent type of alarm configuration (PUT stores a definition, DELETE removes it).
ALARM_CONFIG_TYPE = AlarmConfig.__ce_type__ or ""
#: Longest on-delay or off-delay (the schema's maximum): one day.
MAX_DELAY_SECONDS = 86400.0
#: Kinds that compare a number with ``setpoint`` (all but ``discrete``).
ANALOG_KINDS = frozenset(
    {
        AlarmKind.HIGH_HIGH,
        AlarmKind.HIGH,
        AlarmKind.LOW,
        AlarmKind.LOW_LOW,
        AlarmKind.DEVIATION,
        AlarmKind.RATE_OF_CHANGE,
    }
)
#: Kinds whose setpoint is a magnitude (a distance or a rate), so it may not be negative.
_MAGNITUDE_KINDS = frozenset({AlarmKind.DEVIATION, AlarmKind.RATE_OF_CHANGE})

#: What a discrete alarm compares the tag value with.
DiscreteValue = bool | int | float | str


@dataclass(frozen=True, slots=True)
class AlarmDefinition:
    """One configured alarm on one tag (the scope is the store's key, not part of it).

    Numbers are floats whatever the sender wrote, so the evaluation compares without
    conversions. ``setpoint`` is 0.0 for a discrete alarm, which compares
    ``discrete_value`` instead.
    """

    id: str
    tag: str
    kind: AlarmKind
    setpoint: float = 0.0
    #: The value a deviation alarm measures the distance from (0.0 for other kinds).
    target: float = 0.0
    #: The tag value that is the condition of a discrete alarm (``None`` for other kinds).
    discrete_value: DiscreteValue | None = None
    #: Hysteresis on return, >= 0 (engineering units; per second for rate of change).
    deadband: float = 0.0
    #: Seconds the condition must hold before the alarm is raised.
    on_delay: float = 0.0
    #: Seconds the condition must stay clear before the alarm returns.
    off_delay: float = 0.0
    priority: AlarmPriority = AlarmPriority.MEDIUM
    latching: bool = False
    #: Alarm class or group (area, unit, equipment).
    group: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise InvalidRequestError(f"alarm {self.id!r}: " + "; ".join(problems))


def _problems(d: AlarmDefinition) -> list[str]:
    """Every reason the definition cannot be evaluated (empty when it is sound)."""
    problems: list[str] = []
    if not d.id.strip():
        problems.append("'ID' must not be empty")
    if not d.tag.strip():
        problems.append("'Tag' must not be empty")
    for name, number in (
        ("Setpoint", d.setpoint),
        ("Target", d.target),
        ("Deadband", d.deadband),
        ("OnDelay", d.on_delay),
        ("OffDelay", d.off_delay),
    ):
        if not math.isfinite(number):
            problems.append(f"'{name}' must be a finite number, not {number!r}")
    if d.deadband < 0:
        problems.append(f"'Deadband' must be at least 0, not {d.deadband!r}")
    for name, delay in (("OnDelay", d.on_delay), ("OffDelay", d.off_delay)):
        if not 0 <= delay <= MAX_DELAY_SECONDS:
            problems.append(f"'{name}' must be 0..{MAX_DELAY_SECONDS:g} seconds, not {delay!r}")
    if d.kind is AlarmKind.DISCRETE:
        if d.discrete_value is None:
            problems.append("a discrete alarm needs 'DiscreteValue'")
        if d.deadband:
            problems.append("a discrete alarm has no 'Deadband'")
    elif d.discrete_value is not None:
        problems.append(f"only a discrete alarm has 'DiscreteValue' (kind {d.kind.value})")
    if d.kind in _MAGNITUDE_KINDS and d.setpoint < 0:
        problems.append(f"the 'Setpoint' of a {d.kind.value} alarm is a magnitude, at least 0")
    if d.kind in _MAGNITUDE_KINDS and d.deadband > d.setpoint:
        # |x| < setpoint - deadband could never hold: the alarm would never return.
        problems.append("'Deadband' must not exceed the 'Setpoint' of a magnitude alarm")
    return problems


def _number(name: str, value: float | None, problems: list[str]) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        problems.append(f"'{name}' must be a number, not a boolean")
        return 0.0
    return float(value)


def definition_from_config(config: AlarmConfig) -> AlarmDefinition:
    """The definition a PUT stores; raises :class:`InvalidRequestError` naming every problem.

    ``Tag`` and ``Kind`` are required here rather than in the schema because a DELETE of
    the same event type carries only ``ID``.
    """
    problems: list[str] = []
    if config.tag is None:
        problems.append("'Tag' is required")
    if config.kind is None:
        problems.append("'Kind' is required")
    kind = AlarmKind(config.kind.value) if config.kind is not None else AlarmKind.HIGH
    if kind is not AlarmKind.DISCRETE and config.setpoint is None:
        problems.append(f"a {kind.value} alarm needs 'Setpoint'")
    if kind is AlarmKind.DEVIATION and config.target is None:
        problems.append("a deviation alarm needs 'Target'")
    elif kind is not AlarmKind.DEVIATION and config.target is not None:
        problems.append(f"only a deviation alarm has 'Target' (kind {kind.value})")
    if kind is AlarmKind.DISCRETE and config.setpoint is not None:
        problems.append("a discrete alarm compares 'DiscreteValue', it has no 'Setpoint'")
    setpoint = _number("Setpoint", config.setpoint, problems)
    target = _number("Target", config.target, problems)
    deadband = _number("Deadband", config.deadband, problems)
    on_delay = _number("OnDelay", config.on_delay, problems)
    off_delay = _number("OffDelay", config.off_delay, problems)
    if problems:
        raise InvalidRequestError(f"alarm {config.id!r}: " + "; ".join(problems))
    priority = config.priority.value if config.priority is not None else "medium"
    return AlarmDefinition(
        id=config.id,
        tag=config.tag or "",
        kind=kind,
        setpoint=setpoint,
        target=target,
        discrete_value=config.discrete_value,
        deadband=deadband,
        on_delay=on_delay,
        off_delay=off_delay,
        priority=AlarmPriority(priority),
        latching=bool(config.latching),
        group=config.group or "",
        message=config.message or "",
    )


def definition_to_config(definition: AlarmDefinition) -> AlarmConfig:
    """The PUT payload that configures ``definition`` (to store it, or to show it)."""
    d = definition
    analog = d.kind is not AlarmKind.DISCRETE
    return AlarmConfig(
        id=d.id,
        tag=d.tag,
        kind=AlarmKindName(d.kind.value),
        setpoint=d.setpoint if analog else None,
        target=d.target if d.kind is AlarmKind.DEVIATION else None,
        discrete_value=d.discrete_value,
        deadband=d.deadband or None,
        on_delay=d.on_delay or None,
        off_delay=d.off_delay or None,
        priority=AlarmPriorityName(d.priority.value),
        latching=d.latching or None,
        group=d.group or None,
        message=d.message or None,
    )


def definition_from_raw(raw: Mapping[str, Any]) -> AlarmDefinition:
    """A definition from a decoded JSON or YAML object with the payload's wire names."""
    return definition_from_config(AlarmConfig.from_raw(dict(raw)))


def definitions_from_data(data: Any) -> list[AlarmDefinition]:
    """The definitions of a start-up file: a list of alarm objects, or ``{"alarms": [...]}``.

    Raises :class:`InvalidRequestError` naming each bad entry by position, so one typo
    does not hide the next; ids must be unique within the file.
    """
    entries: Any = data.get("alarms") if isinstance(data, Mapping) else data
    if not isinstance(entries, list):
        raise InvalidRequestError("an alarm file holds a list of alarms (or {'alarms': [...]})")
    definitions: list[AlarmDefinition] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(f"[{index}]: an alarm is an object, not {type(entry).__name__}")
            continue
        try:
            definition = definition_from_raw(entry)
        except InputError as error:
            problems.append(f"[{index}]: {error}")
            continue
        if definition.id in seen:
            problems.append(f"[{index}]: alarm {definition.id!r} is defined twice")
        seen.add(definition.id)
        definitions.append(definition)
    if problems:
        raise InvalidRequestError("alarm definitions: " + "; ".join(problems))
    return definitions
