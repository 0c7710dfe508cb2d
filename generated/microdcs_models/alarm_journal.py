"""Generated from alarm_journal.schema.json by ``microdcs dataclassgen``; do not edit by hand.

Queries of a scope's alarm journal (every alarm transition and operator action, a bounded Redis
stream) by time range, over request/response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from microdcs.models import Model


@dataclass(kw_only=True)
class AlarmJournalQuery(Model):
    """Journal entries of the scope (the subject) from `Start` to `End`, oldest first."""

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.alarm.journal.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/alarm_journal.schema.json#/$defs/AlarmJournalQuery"
    )

    class Config(Model.Config):
        forbid_extra_keys = True

    #: From (Unix seconds, inclusive). Default: `End` minus one hour.
    start: float | None = field(default=None, metadata={"alias": "Start"})
    #: Until (Unix seconds, inclusive). Default: now.
    end: float | None = field(default=None, metadata={"alias": "End"})
    #: Most entries returned (the oldest of the range first). Default 1000.
    limit: int | None = field(
        default=None, metadata={"alias": "Limit", "minimum": 1, "maximum": 10000}
    )
    #: Only the entries of this alarm.
    alarm: str | None = field(default=None, metadata={"alias": "Alarm", "maxLength": 200})


@dataclass(kw_only=True)
class AlarmJournalEntry(Model):
    """One transition or operator action."""

    alarm: str = field(metadata={"alias": "Alarm"})
    #: When (Unix seconds).
    at: float = field(metadata={"alias": "At"})
    #: What happened: a transition (`raised`, `cleared`, ...) or an operator action (`acknowledge`,
    #: `shelve`, ...).
    event: str = field(metadata={"alias": "Event"})
    #: The alarm state after it.
    state: str = field(metadata={"alias": "State"})
    #: The alarm state before it.
    previous: str = field(metadata={"alias": "Previous"})
    priority: str = field(metadata={"alias": "Priority"})
    #: The tag value that caused a transition.
    value: float | int | bool | str | None = field(default=None, metadata={"alias": "Value"})
    #: Who did an operator action.
    operator: str | None = field(default=None, metadata={"alias": "Operator"})
    #: Why (the operator's comment).
    comment: str | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class AlarmJournalResult(Model):
    """The journal entries a query asked for."""

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.alarm.journal.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/alarm_journal.schema.json#/$defs/AlarmJournalResult"
    )

    entries: list[AlarmJournalEntry] = field(metadata={"alias": "Entries"})


# Requests answered with a typed response (set here: the response may be defined later).
AlarmJournalQuery.__response_type__ = AlarmJournalResult
