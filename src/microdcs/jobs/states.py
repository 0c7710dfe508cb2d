"""Job order states and substates of OPC 10031-4, and their ISA95StateDataType form.

Pure values: a :class:`JobStatus` is what Redis stores (two numbers) and what the wire
shows (a list of ``ISA95StateDataType``, top-level state first, then the substate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class JobState(IntEnum):
    """Top-level job order states with their OPC 10031-4 StateNumber."""

    NOT_ALLOWED_TO_START = 1
    ALLOWED_TO_START = 2
    RUNNING = 3
    INTERRUPTED = 4
    ENDED = 5
    ABORTED = 6

    @property
    def browse_name(self) -> str:
        return _STATE_NAMES[self]

    @property
    def not_started(self) -> bool:
        """A job in these states has not run yet, so it has no job response."""
        return self in (JobState.NOT_ALLOWED_TO_START, JobState.ALLOWED_TO_START)

    @property
    def finished(self) -> bool:
        return self in (JobState.ENDED, JobState.ABORTED)


_STATE_NAMES = {
    JobState.NOT_ALLOWED_TO_START: "NotAllowedToStart",
    JobState.ALLOWED_TO_START: "AllowedToStart",
    JobState.RUNNING: "Running",
    JobState.INTERRUPTED: "Interrupted",
    JobState.ENDED: "Ended",
    JobState.ABORTED: "Aborted",
}

#: Substate names by state, keyed by their StateNumber within the state.
SUBSTATES: dict[JobState, dict[int, str]] = {
    JobState.NOT_ALLOWED_TO_START: {1: "Waiting", 2: "Ready", 3: "Loaded"},
    JobState.ALLOWED_TO_START: {1: "Waiting", 2: "Ready", 3: "Loaded"},
    JobState.RUNNING: {},
    JobState.INTERRUPTED: {1: "Held", 2: "Suspended"},
    JobState.ENDED: {1: "Completed", 2: "Closed"},
    JobState.ABORTED: {},
}

WAITING, READY, LOADED = 1, 2, 3
HELD, SUSPENDED = 1, 2
COMPLETED, CLOSED = 1, 2

_BY_NAME = {name: state for state, name in _STATE_NAMES.items()}


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A state and (for states that have them) a substate number."""

    state: JobState
    substate: int | None = None

    def __post_init__(self) -> None:
        names = SUBSTATES[self.state]
        if self.substate is not None and self.substate not in names:
            raise ValueError(f"{self.state.browse_name} has no substate {self.substate}")

    @property
    def path(self) -> str:
        """``Running`` or ``AllowedToStart.Ready``: the form used in the state index."""
        if self.substate is None:
            return self.state.browse_name
        return f"{self.state.browse_name}.{SUBSTATES[self.state][self.substate]}"

    def to_wire(self) -> list[dict[str, Any]]:
        """The ``[ISA95StateDataType]`` JSON list: top-level state first, then substate."""
        top = self.state.browse_name
        states: list[dict[str, Any]] = [
            {"StateText": {"Locale": "en", "Text": top}, "StateNumber": int(self.state)}
        ]  # fmt: skip
        if self.substate is not None:
            states.append(
                {
                    "BrowsePath": {
                        "Elements": [{"TargetName": {"NamespaceIndex": 0, "Name": top}}]
                    },
                    "StateText": {"Locale": "en", "Text": SUBSTATES[self.state][self.substate]},
                    "StateNumber": self.substate,
                }
            )
        return states

    @classmethod
    def from_path(cls, path: str) -> JobStatus:
        top, _, sub = path.partition(".")
        state = _BY_NAME[top]
        if not sub:
            return cls(state)
        numbers = {name: number for number, name in SUBSTATES[state].items()}
        return cls(state, numbers[sub])


@dataclass(frozen=True, slots=True)
class StateFilter:
    """A ``[ISA95StateDataType]`` query: which top-level states (and substates) match.

    Entries without a BrowsePath name top-level states (any of them matches); an entry
    with a BrowsePath names a substate of the state its path ends in.
    """

    states: frozenset[JobState]
    substates: frozenset[tuple[JobState, int]]

    def matches(self, status: JobStatus) -> bool:
        if status.state not in self.states:
            return False
        wanted = {sub for state, sub in self.substates if state is status.state}
        return not wanted or status.substate in wanted


def parse_state_filter(entries: Sequence[Any]) -> StateFilter | None:
    """The filter of a RequestJobResponseByJobOrderState call; ``None`` if invalid."""
    states: set[JobState] = set()
    substates: set[tuple[JobState, int]] = set()
    for entry in entries:
        number = entry.state_number
        if number is None:
            return None
        path = entry.browse_path
        if path is None or not path.elements:
            if number not in JobState._value2member_map_:
                return None
            states.add(JobState(number))
            continue
        target = path.elements[-1].target_name
        name = target.name if target is not None else None
        state = _BY_NAME.get(name or "")
        if state is None or number not in SUBSTATES[state]:
            return None
        states.add(state)
        substates.add((state, number))
    if not states:
        return None
    return StateFilter(frozenset(states), frozenset(substates))
