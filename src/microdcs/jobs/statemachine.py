"""The OPC 10031-4 job order state machine as a pure table: no I/O.

Every command on a job (MES method or system action) is one :class:`Rule`: the states it
is allowed from, the status it leads to, and whether the job leaves the job list. The
Redis scripts enforce exactly these rules atomically; :func:`apply` is the same decision
in Python, used by the table tests and by anyone who wants to know the outcome up front.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.states import CLOSED, COMPLETED, HELD, READY, SUSPENDED, JobState, JobStatus


class Command(StrEnum):
    """Everything that can change a job: the MES methods and the system's own moves."""

    STORE = "Store"
    STORE_AND_START = "StoreAndStart"
    UPDATE = "Update"
    START = "Start"
    REVOKE_START = "RevokeStart"
    PAUSE = "Pause"
    RESUME = "Resume"
    STOP = "Stop"
    ABORT = "Abort"
    CANCEL = "Cancel"
    CLEAR = "Clear"
    #: Transition 5: the start policy or the SFC engine starts the job.
    SYSTEM_START = "system.start"
    #: Transition 7 (the job finished) or 11.
    SYSTEM_END = "system.end"
    #: Transition 8/9: an unrecoverable failure.
    SYSTEM_ABORT = "system.abort"
    #: Transition 6, "internal" cause: the equipment or the engine stopped the job
    #: (Interrupted/Suspended, where a Pause of the MES gives Interrupted/Held).
    SYSTEM_INTERRUPT = "system.interrupt"
    #: Ended/Completed -> Ended/Closed: the MES fetched the job response, or its time ran out.
    SYSTEM_CLOSE = "system.close"


class Removal(StrEnum):
    """How a command takes the job off the job list."""

    NONE = ""
    #: Never started: the job is deleted, it has no response.
    DELETE = "delete"
    #: Finished: the job response is kept for the retention period.
    ARCHIVE = "archive"


_NOT_STARTED = frozenset({JobState.NOT_ALLOWED_TO_START, JobState.ALLOWED_TO_START})
_ACTIVE = frozenset({JobState.RUNNING, JobState.INTERRUPTED})


@dataclass(frozen=True, slots=True)
class Rule:
    """Where a command is allowed and where it leads; ``target=None`` keeps the state."""

    allowed_from: frozenset[JobState]
    target: JobStatus | None
    #: OPC 10031-4 transition number(s), for documentation and tests.
    transitions: tuple[int, ...]
    removal: Removal = Removal.NONE
    #: Substate to set when the state is kept (Update resets to Ready).
    keep_substate: int | None = None
    #: Only from this substate of the allowed states (a substate move, e.g. Closed).
    substate_from: int | None = None


RULES: dict[Command, Rule] = {
    Command.UPDATE: Rule(_NOT_STARTED, None, (1, 4), keep_substate=READY),
    Command.START: Rule(
        frozenset({JobState.NOT_ALLOWED_TO_START}),
        JobStatus(JobState.ALLOWED_TO_START, READY),
        (2,),
    ),
    Command.REVOKE_START: Rule(
        frozenset({JobState.ALLOWED_TO_START}),
        JobStatus(JobState.NOT_ALLOWED_TO_START, READY),
        (3,),
    ),
    Command.SYSTEM_START: Rule(
        frozenset({JobState.ALLOWED_TO_START}), JobStatus(JobState.RUNNING), (5,)
    ),
    Command.PAUSE: Rule(frozenset({JobState.RUNNING}), JobStatus(JobState.INTERRUPTED, HELD), (6,)),
    Command.SYSTEM_INTERRUPT: Rule(
        frozenset({JobState.RUNNING}), JobStatus(JobState.INTERRUPTED, SUSPENDED), (6,)
    ),
    Command.RESUME: Rule(frozenset({JobState.INTERRUPTED}), JobStatus(JobState.RUNNING), (10,)),
    Command.STOP: Rule(_ACTIVE, JobStatus(JobState.ENDED, COMPLETED), (7, 11)),
    Command.SYSTEM_END: Rule(_ACTIVE, JobStatus(JobState.ENDED, COMPLETED), (7, 11)),
    Command.ABORT: Rule(_NOT_STARTED | _ACTIVE, JobStatus(JobState.ABORTED), (8, 9, 12, 13)),
    Command.SYSTEM_ABORT: Rule(_ACTIVE, JobStatus(JobState.ABORTED), (8, 9)),
    Command.SYSTEM_CLOSE: Rule(
        frozenset({JobState.ENDED}), JobStatus(JobState.ENDED, CLOSED), (), substate_from=COMPLETED
    ),
    Command.CANCEL: Rule(_NOT_STARTED, None, (), removal=Removal.DELETE),
    Command.CLEAR: Rule(
        frozenset({JobState.ENDED, JobState.ABORTED}), None, (), removal=Removal.ARCHIVE
    ),
}

#: Where Store and StoreAndStart put a new job.
STORED = JobStatus(JobState.NOT_ALLOWED_TO_START, READY)
STORED_AND_STARTED = JobStatus(JobState.ALLOWED_TO_START, READY)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a command: a ReturnStatus and, when it succeeded, the new status."""

    status: ReturnStatus
    new: JobStatus | None = None
    removed: bool = False

    @property
    def ok(self) -> bool:
        return self.status is ReturnStatus.OK


def apply(current: JobStatus | None, command: Command) -> Outcome:
    """What ``command`` does to a job in ``current`` (``None``: no such job)."""
    if command in (Command.STORE, Command.STORE_AND_START):
        if current is not None:
            return Outcome(ReturnStatus.UNABLE_TO_ACCEPT_JOB_ORDER)
        return Outcome(ReturnStatus.OK, STORED if command is Command.STORE else STORED_AND_STARTED)
    if current is None:
        return Outcome(ReturnStatus.UNKNOWN_JOB_ORDER_ID)
    rule = RULES[command]
    if current.state not in rule.allowed_from:
        return Outcome(ReturnStatus.INVALID_JOB_ORDER_STATUS)
    if rule.substate_from is not None and current.substate != rule.substate_from:
        return Outcome(ReturnStatus.INVALID_JOB_ORDER_STATUS)
    if rule.target is not None:
        new = rule.target
    elif rule.keep_substate is not None:
        new = JobStatus(current.state, rule.keep_substate)
    else:
        new = current
    return Outcome(ReturnStatus.OK, new, removed=rule.removal is not Removal.NONE)


def has_response(state: JobState) -> bool:
    """Every job that has left the not-started states has a job response."""
    return not state.not_started
