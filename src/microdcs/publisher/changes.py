"""The publisher's view of a scope and how a batch of its changes folds into a plan.

Pure (no I/O): what the change stream says, what the index becomes, which jobs to
(re)publish and which to remove, and up to where the stream is covered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from microdcs.jobs.states import JobState, JobStatus
from microdcs.jobs.storage import Snapshot
from microdcs.publisher.payloads import index_entry

Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass(slots=True)
class Scope:
    """What the publisher knows about one scope."""

    name: str
    #: Stream ID up to which every change is published (stored in Redis with the revision).
    cursor: str = "0-0"
    #: Change counter of the entry at ``cursor``: the next entry must carry one more.
    cursor_seq: int = 0
    #: Change counter the index reflects (a snapshot may be ahead of the cursor).
    seq: int = 0
    #: Revision (``seq`` on the wire) of the last published state index.
    revision: int = 0
    #: Encoded index entry of every listed job.
    index: dict[str, bytes] = field(default_factory=dict)
    #: The index reflects changes no published revision covers yet.
    dirty: bool = False

    def reset(self, snapshot: Snapshot) -> None:
        self.seq = snapshot.seq
        self.index = {
            job_id: index_entry(job_id, status.path, has_result)
            for job_id, status, has_result in snapshot.jobs
        }


@dataclass(slots=True)
class Plan:
    """What one pass publishes for one scope."""

    scope: Scope
    upserts: list[str]
    removes: list[str]
    #: Stream position and change counter the publishes cover (stored as the cursor).
    cursor: str
    cursor_seq: int
    #: The index changed: publish its next revision.
    changed: bool


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def stream_entries(reply: Any) -> Entries:
    """Stream entries of a one-stream XREAD reply, raw RESP or parsed by redis-py."""
    if not reply:
        return []
    entries = []
    for entry_id, fields in reply[0][1]:
        if not isinstance(fields, dict):
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        entries.append((entry_id, fields))
    return entries


def entry_time(entry_id: object) -> float:
    """Wall-clock time (s) Redis added a stream entry: its ID is ``<ms>-<n>``."""
    return int(text(entry_id).split("-", 1)[0]) / 1000


def status_path(fields: dict[bytes, bytes]) -> str:
    sub = int(fields[b"sub"]) or None
    return JobStatus(JobState(int(fields[b"st"])), sub).path


def plan_changes(scope: Scope, entries: Entries) -> Plan:
    """Fold a batch of a scope's changes into its index; which jobs to (re)publish."""
    last_op: dict[str, str] = {}
    changed = scope.dirty
    for _, fields in entries:
        job_id = text(fields[b"id"])
        op = text(fields[b"op"])
        last_op[job_id] = op
        entry_seq = int(fields[b"seq"])
        if entry_seq <= scope.seq:
            continue  # already reflected in the index (snapshot or earlier pass)
        scope.seq, changed = entry_seq, True
        if op == "remove":
            scope.index.pop(job_id, None)
        else:
            has_result = text(fields[b"res"]) == "1"
            scope.index[job_id] = index_entry(job_id, status_path(fields), has_result)
    return Plan(
        scope,
        [j for j, op in last_op.items() if op != "remove"],
        [j for j, op in last_op.items() if op == "remove"],
        text(entries[-1][0]),
        int(entries[-1][1][b"seq"]),
        changed,
    )
