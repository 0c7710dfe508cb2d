"""What other parts may know of alarm management: alarm states, the active list, the
journal and the operator actions.

The web view and the app use alarms only through this module (the layer test enforces
it). The state names follow the ISA-18.2 / IEC 62682 alarm state model; the pure state
machine that moves between them lives in :mod:`microdcs.alarms.states`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = [
    "ActionOutcome",
    "AlarmAction",
    "AlarmActions",
    "AlarmKind",
    "AlarmPriority",
    "AlarmReader",
    "AlarmState",
    "AlarmView",
    "JournalEntry",
]


class AlarmState(StrEnum):
    """The states of ISA-18.2's alarm state model (its figure's letters in comments)."""

    NORMAL = "normal"  # A: condition clear, acknowledged
    UNACKNOWLEDGED = "unacknowledged"  # B: active, not acknowledged
    ACKNOWLEDGED = "acknowledged"  # C: active, acknowledged
    RETURNED_UNACKNOWLEDGED = "returned_unacknowledged"  # D: clear, not acknowledged
    LATCHED = "latched"  # E: clear, latched until reset
    SHELVED = "shelved"  # F: suppressed by the operator until an expiry
    SUPPRESSED_BY_DESIGN = "suppressed_by_design"  # G
    OUT_OF_SERVICE = "out_of_service"  # H


class AlarmKind(StrEnum):
    HIGH_HIGH = "HH"
    HIGH = "H"
    LOW = "L"
    LOW_LOW = "LL"
    DEVIATION = "deviation"
    RATE_OF_CHANGE = "rate_of_change"
    DISCRETE = "discrete"


class AlarmPriority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AlarmAction(StrEnum):
    """What an operator may do to an alarm (each records who and why)."""

    ACKNOWLEDGE = "acknowledge"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"
    REMOVE_FROM_SERVICE = "remove_from_service"
    RETURN_TO_SERVICE = "return_to_service"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class AlarmView:
    """One alarm as an operator sees it."""

    scope: str
    #: The alarm's id within its scope (unique per definition).
    alarm: str
    tag: str
    kind: AlarmKind
    priority: AlarmPriority
    state: AlarmState
    message: str
    #: Whether the alarm condition is true now (it may be shelved or latched meanwhile).
    condition: bool
    #: When the alarm last went active (Unix seconds); ``None`` if it never did.
    active_since: float | None
    #: When the state last changed (Unix seconds).
    changed_at: float
    #: The value that caused the last transition.
    value: float | int | bool | str | None
    group: str = ""
    #: Until when a shelved alarm stays shelved (Unix seconds).
    shelved_until: float | None = None
    #: Operator id and comment of the last operator action.
    operator: str | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One transition or operator action, as the alarm journal records it."""

    scope: str
    alarm: str
    #: Unix seconds.
    at: float
    #: What happened: ``raised``, ``cleared``, ``acknowledge``, ``shelve``, ... .
    event: str
    state: AlarmState
    previous: AlarmState
    priority: AlarmPriority
    value: float | int | bool | str | None = None
    operator: str | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What one operator action did to one alarm."""

    alarm: str
    #: True when the action was allowed and stored.
    done: bool
    state: AlarmState | None
    #: Why it was refused (``not_allowed``, ``unknown_alarm``), ``None`` when done.
    error: str | None = None
    #: The refusal in words an operator understands (``None`` when done).
    reason: str | None = None


class AlarmReader(Protocol):
    """Reads alarms (the alarm store implements it)."""

    async def alarms(self, scope: str) -> Sequence[AlarmView]:
        """Every configured alarm of the scope, in any state."""
        ...

    async def journal(
        self, scope: str, start: float, end: float, limit: int = 1000
    ) -> Sequence[JournalEntry]:
        """Journal entries between ``start`` and ``end`` (Unix seconds), oldest first."""
        ...


class AlarmActions(Protocol):
    """Operator actions, with the same validation and journal as the MQTT command."""

    async def act(
        self,
        scope: str,
        action: AlarmAction,
        alarms: Sequence[str],
        *,
        operator: str,
        comment: str = "",
        shelve_seconds: float | None = None,
    ) -> Sequence[ActionOutcome]: ...
