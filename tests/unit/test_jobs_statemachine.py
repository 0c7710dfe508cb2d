"""The job state machine against the OPC 10031-4 table of jobs.md: every command from
every state (and from "no such job") gives the specified ReturnStatus and new state."""

from __future__ import annotations

import pytest

from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.statemachine import Command, apply, has_response
from microdcs.jobs.states import JobState, JobStatus, parse_state_filter
from microdcs_models.machinery_jobs import ISA95StateDataType

N, A, R, P, S, E, C, X = (
    JobStatus(JobState.NOT_ALLOWED_TO_START, 2),
    JobStatus(JobState.ALLOWED_TO_START, 2),
    JobStatus(JobState.RUNNING),
    JobStatus(JobState.INTERRUPTED, 1),  # Held: the MES paused it
    JobStatus(JobState.INTERRUPTED, 2),  # Suspended: the equipment or the engine stopped it
    JobStatus(JobState.ENDED, 1),  # Completed
    JobStatus(JobState.ENDED, 2),  # Closed: the MES fetched the response (or time ran out)
    JobStatus(JobState.ABORTED),
)
START_STATES = {"-": None, "N": N, "A": A, "R": R, "P": P, "S": S, "E": E, "C": C, "X": X}
OK, UNKNOWN, BAD, REJECT = 1, 2, 8, 16
GONE = "gone"

# command -> {from: expected}; expected is a ReturnStatus or (1, new status) or (1, GONE).
TABLE: dict[Command, dict[str, object]] = {
    Command.STORE: {"-": (OK, N), **dict.fromkeys("NARPSECX", REJECT)},
    Command.STORE_AND_START: {"-": (OK, A), **dict.fromkeys("NARPSECX", REJECT)},
    Command.UPDATE: {"-": UNKNOWN, "N": (OK, N), "A": (OK, A), **dict.fromkeys("RPSECX", BAD)},
    Command.START: {"-": UNKNOWN, "N": (OK, A), **dict.fromkeys("ARPSECX", BAD)},
    Command.REVOKE_START: {"-": UNKNOWN, "A": (OK, N), **dict.fromkeys("NRPSECX", BAD)},
    Command.PAUSE: {"-": UNKNOWN, "R": (OK, P), **dict.fromkeys("NAPSECX", BAD)},
    Command.RESUME: {"-": UNKNOWN, "P": (OK, R), "S": (OK, R), **dict.fromkeys("NARECX", BAD)},
    Command.STOP: {"-": UNKNOWN, **{s: (OK, E) for s in "RPS"}, **dict.fromkeys("NAECX", BAD)},
    Command.ABORT: {"-": UNKNOWN, **{s: (OK, X) for s in "NARPS"}, **dict.fromkeys("ECX", BAD)},
    Command.CANCEL: {"-": UNKNOWN, "N": (OK, GONE), "A": (OK, GONE),
                     **dict.fromkeys("RPSECX", BAD)},
    Command.CLEAR: {"-": UNKNOWN, **{s: (OK, GONE) for s in "ECX"},
                    **dict.fromkeys("NARPS", BAD)},
    Command.SYSTEM_START: {"-": UNKNOWN, "A": (OK, R), **dict.fromkeys("NRPSECX", BAD)},
    Command.SYSTEM_END: {"-": UNKNOWN, **{s: (OK, E) for s in "RPS"},
                         **dict.fromkeys("NAECX", BAD)},
    Command.SYSTEM_ABORT: {"-": UNKNOWN, **{s: (OK, X) for s in "RPS"},
                           **dict.fromkeys("NAECX", BAD)},
    Command.SYSTEM_INTERRUPT: {"-": UNKNOWN, "R": (OK, S), **dict.fromkeys("NAPSECX", BAD)},
    Command.SYSTEM_CLOSE: {"-": UNKNOWN, "E": (OK, C), **dict.fromkeys("NARPSCX", BAD)},
}  # fmt: skip

CASES = [
    pytest.param(command, start, expected, id=f"{command.value}-from-{start}")
    for command, row in TABLE.items()
    for start, expected in row.items()
]


def test_table_covers_every_command_and_state() -> None:
    assert set(TABLE) == set(Command)
    for row in TABLE.values():
        assert set(row) == set(START_STATES)


@pytest.mark.parametrize(("command", "start", "expected"), CASES)
def test_command_from_state_gives_specified_result(
    command: Command, start: str, expected: object
) -> None:
    outcome = apply(START_STATES[start], command)
    if isinstance(expected, tuple):
        status, new = expected
        assert outcome.status == status
        if new == GONE:
            assert outcome.removed
        else:
            assert outcome.new == new
            assert not outcome.removed
    else:
        assert outcome.status == expected
        assert outcome.new is None


def test_update_resets_substate_to_ready() -> None:
    loaded = JobStatus(JobState.ALLOWED_TO_START, 3)
    assert apply(loaded, Command.UPDATE).new == JobStatus(JobState.ALLOWED_TO_START, 2)


def test_only_not_started_jobs_have_no_response() -> None:
    assert [s for s in JobState if not has_response(s)] == [
        JobState.NOT_ALLOWED_TO_START,
        JobState.ALLOWED_TO_START,
    ]


def test_return_status_values_match_opc_table_95() -> None:
    assert [int(s) for s in ReturnStatus] == [1, 2, 8, 16, 4294967296]


def test_status_wire_form_lists_state_then_substate() -> None:
    wire = A.to_wire()
    assert [s["StateNumber"] for s in wire] == [2, 2]
    assert "BrowsePath" not in wire[0]  # a top-level state has none (omitted, not null)
    assert wire[0]["StateText"]["Text"] == "AllowedToStart"
    assert wire[1]["StateText"]["Text"] == "Ready"
    assert wire[1]["BrowsePath"]["Elements"][0]["TargetName"]["Name"] == "AllowedToStart"
    assert len(R.to_wire()) == 1


def test_status_path_round_trips() -> None:
    for status in (N, A, R, P, E, X):
        assert JobStatus.from_path(status.path) == status
    assert E.path == "Ended.Completed"


def test_invalid_substate_is_refused() -> None:
    with pytest.raises(ValueError):
        JobStatus(JobState.RUNNING, 1)


def _states(raw: list[dict[str, object]]) -> list[ISA95StateDataType]:
    return [ISA95StateDataType.from_raw(entry) for entry in raw]


def test_state_filter_matches_top_level_and_substate() -> None:
    ended_completed = parse_state_filter(_states(E.to_wire()))
    assert ended_completed is not None
    assert ended_completed.matches(E)
    assert not ended_completed.matches(JobStatus(JobState.ENDED, 2))
    any_finished = parse_state_filter(_states([{"StateNumber": 5}, {"StateNumber": 6}]))
    assert any_finished is not None
    assert any_finished.matches(X) and any_finished.matches(E)
    assert not any_finished.matches(R)


@pytest.mark.parametrize(
    "raw",
    [[], [{"StateNumber": 9}], [{}], [{"StateNumber": 4, "BrowsePath": {"Elements": [{}]}}]],
)
def test_invalid_state_filter_is_none(raw: list[dict[str, object]]) -> None:
    assert parse_state_filter(_states(raw)) is None
