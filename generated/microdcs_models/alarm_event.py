"""Generated from alarm_event.schema.json by ``microdcs dataclassgen``; do not edit by hand.

One alarm transition or operator action, on the scope's events topic: what happened (`Event`), the
state before and after, and the alarm as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from microdcs.models import Model


@dataclass(kw_only=True)
class AlarmEvent(Model):
    """One alarm transition or operator action, on the scope's events topic: what happened
    (`Event`), the state before and after, and the alarm as it is now.
    """

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.alarm.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/alarm_event.schema.json"
    )

    #: The alarm id.
    alarm: str = field(metadata={"alias": "Alarm"})
    #: What happened: `raised`, `cleared`, `shelve_expired` or an operator action (`acknowledge`,
    #: `shelve`, ...).
    event: str = field(metadata={"alias": "Event"})
    #: The state after it: normal, unacknowledged, acknowledged, returned_unacknowledged, latched,
    #: shelved, suppressed_by_design, out_of_service.
    state: str = field(metadata={"alias": "State"})
    #: The state before it.
    previous: str = field(metadata={"alias": "Previous"})
    #: When it happened (Unix seconds).
    at: float = field(metadata={"alias": "At"})
    tag: str = field(metadata={"alias": "Tag"})
    kind: str = field(metadata={"alias": "Kind"})
    priority: str = field(metadata={"alias": "Priority"})
    #: Whether the alarm condition is true now.
    condition: bool = field(metadata={"alias": "Condition"})
    message: str | None = field(default=None, metadata={"alias": "Message"})
    group: str | None = field(default=None, metadata={"alias": "Group"})
    #: When the state last changed (Unix seconds).
    changed_at: float | None = field(default=None, metadata={"alias": "ChangedAt"})
    #: When the condition last became true (Unix seconds).
    active_since: float | None = field(default=None, metadata={"alias": "ActiveSince"})
    #: The tag value of the last change.
    value: float | int | bool | str | None = field(default=None, metadata={"alias": "Value"})
    shelved_until: float | None = field(default=None, metadata={"alias": "ShelvedUntil"})
    #: Who did the last operator action.
    operator: str | None = field(default=None, metadata={"alias": "Operator"})
    comment: str | None = field(default=None, metadata={"alias": "Comment"})
