"""Generated from alarm_action.schema.json by ``microdcs dataclassgen``; do not edit by hand.

An operator action on one or many alarms of a scope (the subject), and its outcome per alarm. Who
acted and why are fields of the payload (`Operator`, `Comment`), recorded in the alarm journal with
the action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from microdcs.models import Model


class AlarmActionName(StrEnum):
    """An operator action."""

    ACKNOWLEDGE = "acknowledge"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"
    REMOVE_FROM_SERVICE = "remove_from_service"
    RETURN_TO_SERVICE = "return_to_service"
    RESET = "reset"


@dataclass(kw_only=True)
class AlarmActionRequest(Model):
    """Acknowledge, shelve (for `ShelveSeconds`), unshelve, suppress, unsuppress, remove from
    service, return to service or reset (a latched alarm) the named alarms.
    """

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.alarm.action.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/alarm_action.schema.json#/$defs/AlarmActionRequest"
    )

    class Config(Model.Config):
        forbid_extra_keys = True

    action: AlarmActionName = field(metadata={"alias": "Action"})
    #: The alarm ids (several: acknowledge many at once).
    alarms: list[str] = field(
        metadata={
            "alias": "Alarms",
            "minItems": 1,
            "maxItems": 1000,
            "items": {"minLength": 1, "maxLength": 200},
        },
    )
    #: Who acts (the operator id), journaled with the action.
    operator: str = field(metadata={"alias": "Operator", "minLength": 1, "maxLength": 200})
    #: Why, journaled with the action.
    comment: str | None = field(default=None, metadata={"alias": "Comment", "maxLength": 1000})
    #: How long a shelve lasts (required for `shelve`): the alarm comes back by itself after it,
    #: whatever replica shelved it.
    shelve_seconds: float | None = field(
        default=None, metadata={"alias": "ShelveSeconds", "exclusiveMinimum": 0, "maximum": 604800}
    )


@dataclass(kw_only=True)
class AlarmOutcome(Model):
    """What the action did to one alarm."""

    alarm: str = field(metadata={"alias": "Alarm"})
    #: True when the action was allowed and stored.
    done: bool = field(metadata={"alias": "Done"})
    #: The alarm's state after the action (or the state that refused it).
    state: str | None = field(default=None, metadata={"alias": "State"})
    #: Why it was refused: `not_allowed` (not from this state), `unknown_alarm`, `invalid_request`.
    error: str | None = field(default=None, metadata={"alias": "Error"})
    #: The refusal in words an operator understands.
    reason: str | None = field(default=None, metadata={"alias": "Reason"})


@dataclass(kw_only=True)
class AlarmActionResult(Model):
    """The outcome per alarm. When any alarm refused the action, the response's `mdcserrorkind`
    says why (`not_allowed`, `unknown_alarm`, `invalid_request`) and `mdcserrormessage` gives
    the reasons.
    """

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.alarm.action.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/alarm_action.schema.json#/$defs/AlarmActionResult"
    )

    action: str = field(metadata={"alias": "Action"})
    outcomes: list[AlarmOutcome] = field(metadata={"alias": "Outcomes"})


# Requests answered with a typed response (set here: the response may be defined later).
AlarmActionRequest.__response_type__ = AlarmActionResult
