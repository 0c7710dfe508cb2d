"""The retained ``{prefix}/{scope}/alarms`` topic: every alarm of a scope not in Normal.

Paced and coalesced: a scope that changed is published at most once per interval, with
what Redis holds then, so an alarm flood costs one message per interval, not one per
transition. Any replica that stores a transition publishes the scope; two replicas may
race on the broker, so each one reads the scope's change counter again after its
message was acknowledged and publishes once more if it moved: the last message on the
topic always shows the latest stored state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from microdcs.alarms.contract import AlarmState, AlarmView
from microdcs.alarms.ports import RetainedOutlet
from microdcs.core.errors import MicroDCSError
from microdcs.core.waiting import sleep_unless
from microdcs.storage.outage import OutageLog

logger = logging.getLogger(__name__)

#: ``views(scope)`` -> the scope's change counter and every alarm of it.
Views = Callable[[str], Awaitable[tuple[int, Sequence[AlarmView]]]]
#: ``seq(scope)`` -> the scope's change counter now.
Seq = Callable[[str], Awaitable[int]]


def view_raw(view: AlarmView) -> dict[str, Any]:
    """An alarm as the retained list and the alarm events show it (wire names)."""
    raw: dict[str, Any] = {
        "Alarm": view.alarm, "Tag": view.tag, "Kind": view.kind.value,
        "Priority": view.priority.value, "State": view.state.value,
        "Condition": view.condition, "Message": view.message, "ChangedAt": view.changed_at,
    }  # fmt: skip
    optional = {"Group": view.group or None, "ActiveSince": view.active_since,
                "Value": view.value, "ShelvedUntil": view.shelved_until,
                "Operator": view.operator, "Comment": view.comment or None}  # fmt: skip
    raw.update((k, v) for k, v in optional.items() if v is not None)
    return raw


def alarm_list(scope: str, seq: int, views: Sequence[AlarmView], now: float) -> bytes:
    """The retained payload: the scope's alarms not in Normal, most urgent first."""
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    listed = sorted(
        (v for v in views if v.state is not AlarmState.NORMAL),
        key=lambda v: (order.get(v.priority.value, 9), -(v.active_since or 0.0), v.alarm),
    )
    return orjson.dumps(
        {"Scope": scope, "Seq": seq, "Time": now, "Alarms": [view_raw(v) for v in listed]}
    )


class AlarmListPublisher:
    """Publishes the retained alarm list of each scope this replica changed."""

    def __init__(
        self,
        outlet: RetainedOutlet,
        topic: Callable[[str], str],
        views: Views,
        seq: Seq,
        *,
        interval: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outlet = outlet
        self.topic = topic
        self.views = views
        self.seq = seq
        self.interval = interval
        self.clock = clock
        self.published = 0
        self._dirty: set[str] = set()
        self._last: dict[str, float] = {}
        self._wake = asyncio.Event()
        self.outage = OutageLog(logger, "alarm list publication")

    def changed(self, scope: str) -> None:
        """A transition of ``scope`` was stored: publish it (within the interval)."""
        self._dirty.add(scope)
        self._wake.set()

    async def run(self, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set():
            self._wake.clear()
            now = time.monotonic()
            due = [s for s in self._dirty if now - self._last.get(s, -1e9) >= self.interval]
            for scope in due:
                self._dirty.discard(scope)
                self._last[scope] = now
            delay = self.interval
            if due:
                try:
                    await asyncio.gather(*(self._publish(scope) for scope in due))
                    self.outage.recovered()
                except MicroDCSError as exc:
                    self._dirty.update(due)
                    delay = self.outage.failed(exc)
            if self._dirty and not due:
                oldest = min(self._last.get(s, now) for s in self._dirty)
                delay = max(0.0, self.interval - (now - oldest))
            elif not self._dirty:
                delay = 3600.0  # nothing to do until a change wakes it
            await sleep_unless(delay, shutdown, self._wake)

    async def _publish(self, scope: str) -> None:
        seq, views = await self.views(scope)
        payload = alarm_list(scope, seq, views, self.clock())
        await self.outlet.publish_nowait(self.topic(scope), payload, expiry=None)
        self.published += 1
        if await self.seq(scope) != seq:
            self._dirty.add(scope)  # another replica stored meanwhile: publish again
