"""Limit checks: is an alarm's condition true for one value, with deadband hysteresis.

This runs for every sample of every alarmed tag, so each check is a couple of float
comparisons and no allocation. The answer is three-valued: ``None`` means the value says
nothing about the condition (a string on a limit alarm, NaN, a rate without a previous
sample) and the caller keeps what it had.

Hysteresis: an alarm that is not active becomes active *at* its setpoint (``>=`` for
high limits, ``<=`` for low ones); an active one stays active until the value is more than
the deadband back inside (``< setpoint - deadband`` for high limits). With setpoint 50 and
deadband 5 a high alarm raised at 55 stays active at 49.9 and returns below 45.
"""

from __future__ import annotations

from microdcs.alarms.contract import AlarmKind
from microdcs.alarms.definitions import AlarmDefinition

__all__ = ["condition", "measured", "rate_of_change"]

_HIGH = (AlarmKind.HIGH, AlarmKind.HIGH_HIGH)
_LOW = (AlarmKind.LOW, AlarmKind.LOW_LOW)


def _number(value: object) -> float | None:
    """A finite float of an int or float value (bools and strings are not measurements)."""
    if isinstance(value, float):
        return value if value - value == 0.0 else None  # NaN and inf fail
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return None


def rate_of_change(
    value: object, time: float, previous_value: object, previous_time: float | None
) -> float | None:
    """Change per second from the previous sample to this one (``None`` if not computable:
    no previous sample, a non-number, or a time that did not advance)."""
    if previous_time is None:
        return None
    now = _number(value)
    before = _number(previous_value)
    if now is None or before is None:
        return None
    elapsed = time - previous_time
    if not elapsed > 0.0:
        return None
    return (now - before) / elapsed


def measured(
    definition: AlarmDefinition,
    value: object,
    time: float,
    previous_value: object = None,
    previous_time: float | None = None,
) -> object:
    """What :func:`condition` compares: the value itself, or for a rate-of-change alarm
    the rate from the previous sample (``None`` when there is none)."""
    if definition.kind is AlarmKind.RATE_OF_CHANGE:
        return rate_of_change(value, time, previous_value, previous_time)
    return value


def condition(definition: AlarmDefinition, value: object, active: bool) -> bool | None:
    """Whether the alarm condition holds for ``value`` given whether it held before.

    ``value`` is what :func:`measured` gives (the rate for rate-of-change alarms).
    """
    kind = definition.kind
    if kind is AlarmKind.DISCRETE:
        if value is None:
            return None
        target = definition.discrete_value
        # True == 1 in Python; a bool tag and an int state are different things.
        return value == target and (type(value) is bool) == (type(target) is bool)
    number = _number(value)
    if number is None:
        return None
    setpoint = definition.setpoint
    if kind in _HIGH:
        return number >= setpoint - definition.deadband if active else number >= setpoint
    if kind in _LOW:
        return number <= setpoint + definition.deadband if active else number <= setpoint
    # deviation: the distance from the target; rate of change: either direction
    number = abs(number - definition.target) if kind is AlarmKind.DEVIATION else abs(number)
    return number >= setpoint - definition.deadband if active else number >= setpoint
