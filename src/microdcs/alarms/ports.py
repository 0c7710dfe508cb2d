"""What the alarm runtime needs from the outside, declared by the alarm package itself.

The app hands it an implementation of each (the MQTT ones live with the transport or
the alarm processor), so the manager imports no transport and its tests can hand it
in-memory stand-ins.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from microdcs.alarms.contract import AlarmView, JournalEntry


class AlarmEventSink(Protocol):
    """Where the alarm event of each stored transition goes (the scope's ``events``)."""

    async def alarm_event(self, view: AlarmView, entry: JournalEntry) -> None: ...


class RetainedOutlet(Protocol):
    """Retained messages on the broker (the subset of the publisher's outlet used here)."""

    def publish_nowait(self, topic: str, payload: bytes, *, expiry: int | None) -> Awaitable[None]:
        """Queue retained ``payload`` (QoS 1); what it returns completes on the broker's
        acknowledgement."""
        ...
