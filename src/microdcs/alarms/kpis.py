"""ISA-18.2 alarm performance figures of one scope, computed from its journal (pure).

The figures follow ISA-18.2 / IEC 62682's monitoring section, counted over annunciated
alarms only (a raise while shelved, suppressed or out of service reaches no operator):

- **rate**: alarms annunciated in the last 10 minutes;
- **flood percent**: the share of the window's 10-minute periods (aligned to the clock)
  with more than 10 annunciated alarms;
- **chattering**: alarms annunciated 3 or more times within any 60 seconds of the window;
- **frequent**: the ten alarms annunciated most often in the window, with their counts;
- **standing**: alarms whose condition has been active for more than 24 hours;
- **stale**: alarms annunciated and still unacknowledged after more than 24 hours;
- **shelved** and **out of service**: how many alarms are in those states now.

The first four come from the journal (:meth:`AlarmKpis.add`), the last four from the
alarms' current views. Memory is bounded by the window and by :data:`MAX_ACTIVATIONS`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from microdcs.alarms.contract import AlarmState, AlarmView, JournalEntry
from microdcs.alarms.states import RAISED

__all__ = ["MAX_ACTIVATIONS", "AlarmKpis", "KpiFigures"]

RATE_PERIOD = 600.0
FLOOD_THRESHOLD = 10
CHATTER_PERIOD = 60.0
CHATTER_COUNT = 3
STANDING_AFTER = 86_400.0
TOP = 10
#: Activations kept per scope (the oldest go first): a flood of floods stays bounded.
MAX_ACTIVATIONS = 200_000

_UNACKNOWLEDGED = (AlarmState.UNACKNOWLEDGED, AlarmState.RETURNED_UNACKNOWLEDGED)


@dataclass(frozen=True, slots=True)
class KpiFigures:
    """One scope's figures at one moment (what the metrics endpoint exports)."""

    rate: int
    flood_percent: float
    chattering: int
    frequent: tuple[tuple[str, int], ...]
    standing: int
    stale: int
    shelved: int
    out_of_service: int


class AlarmKpis:
    """Follows one scope's journal and answers its figures for a given time."""

    def __init__(self, window: float = 86_400.0, *, max_activations: int = MAX_ACTIVATIONS):
        if window < RATE_PERIOD:
            raise ValueError(f"the KPI window must be at least {RATE_PERIOD:g} s")
        self.window = window
        #: (time, alarm) of every annunciated alarm in the window, oldest first.
        self._activations: deque[tuple[float, str]] = deque(maxlen=max_activations)

    def add(self, entries: Iterable[JournalEntry]) -> None:
        """Take journal entries in journal order (older than the last are ignored)."""
        last = self._activations[-1][0] if self._activations else float("-inf")
        for entry in entries:
            if entry.event != RAISED or entry.state is not AlarmState.UNACKNOWLEDGED:
                continue
            if entry.at < last:
                continue
            self._activations.append((entry.at, entry.alarm))
            last = entry.at

    def figures(self, now: float, views: Sequence[AlarmView]) -> KpiFigures:
        """The figures at ``now``, with ``views`` the scope's alarms as they are now."""
        self._forget(now - self.window)
        times = [at for at, _ in self._activations]
        return KpiFigures(
            rate=sum(1 for at in times if now - RATE_PERIOD < at <= now),
            flood_percent=self._flood_percent(now, times),
            chattering=len(self._chattering()),
            frequent=self._frequent(),
            standing=sum(1 for view in views if _active_longer(view, now)),
            stale=sum(1 for view in views if _unacknowledged_longer(view, now)),
            shelved=sum(1 for view in views if view.state is AlarmState.SHELVED),
            out_of_service=sum(1 for view in views if view.state is AlarmState.OUT_OF_SERVICE),
        )

    def _forget(self, before: float) -> None:
        while self._activations and self._activations[0][0] <= before:
            self._activations.popleft()

    def _flood_percent(self, now: float, times: Sequence[float]) -> float:
        """Periods are aligned to multiples of 10 minutes; the current, unfinished one
        counts too (a flood is a flood before its period ends)."""
        periods = int(self.window // RATE_PERIOD)
        first = int(now // RATE_PERIOD) - periods + 1
        counts: dict[int, int] = {}
        for at in times:
            index = int(at // RATE_PERIOD)
            if index >= first:
                counts[index] = counts.get(index, 0) + 1
        flooded = sum(1 for count in counts.values() if count > FLOOD_THRESHOLD)
        return 100.0 * flooded / periods

    def _chattering(self) -> set[str]:
        by_alarm: dict[str, list[float]] = {}
        for at, alarm in self._activations:
            by_alarm.setdefault(alarm, []).append(at)
        chattering: set[str] = set()
        span = CHATTER_COUNT - 1
        for alarm, times in by_alarm.items():
            if any(times[i + span] - times[i] <= CHATTER_PERIOD for i in range(len(times) - span)):
                chattering.add(alarm)
        return chattering

    def _frequent(self) -> tuple[tuple[str, int], ...]:
        counts: dict[str, int] = {}
        for _, alarm in self._activations:
            counts[alarm] = counts.get(alarm, 0) + 1
        top = heapq.nsmallest(TOP, counts.items(), key=lambda item: (-item[1], item[0]))
        return tuple(top)


def _active_longer(view: AlarmView, now: float) -> bool:
    if not view.condition or view.active_since is None:
        return False
    return now - view.active_since > STANDING_AFTER


def _unacknowledged_longer(view: AlarmView, now: float) -> bool:
    """Annunciated and not acknowledged for a day: its state has not changed since."""
    return view.state in _UNACKNOWLEDGED and now - view.changed_at > STANDING_AFTER
