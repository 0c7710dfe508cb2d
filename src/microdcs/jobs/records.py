"""The stored shapes of jobs, as the job store's scripts and reads return them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from microdcs.jobs.states import JobState, JobStatus
from microdcs.storage.replies import number, optional_text, text


def status_of(state: Any, sub: Any) -> JobStatus:
    """The status of a job from its stored state and substate numbers."""
    return JobStatus(JobState(int(text(state))), number(sub) or None)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored: its order (JSON), status and job response fields."""

    job_id: str
    order_json: bytes
    status: JobStatus
    started: str | None = None
    ended: str | None = None
    response_data: bytes | None = None
    has_response: bool = False

    @classmethod
    def from_fields(cls, job_id: str, fields: Sequence[Any]) -> JobRecord:
        """From the seven job fields, in the order of :data:`RECORD_FIELDS` (the order
        every job script returns them in too)."""
        order, st, sub, started, ended, rdata, res = fields
        return cls(
            job_id, bytes(order), status_of(st, sub), optional_text(started),
            optional_text(ended), rdata or None, text(res) == "1",
        )  # fmt: skip

    def response_raw(self) -> dict[str, Any]:
        """The ISA95JobResponseDataType JSON object of this job, its keys in the order
        the model encodes them (the status event sends this form as it is)."""
        raw: dict[str, Any] = {"JobResponseID": self.job_id, "JobOrderID": self.job_id}
        if self.started:
            raw["StartTime"] = self.started
        if self.ended:
            raw["EndTime"] = self.ended
        raw["JobState"] = self.status.to_wire()
        if self.response_data:
            raw["JobResponseData"] = orjson.loads(self.response_data)
        return raw

    def order_raw(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.order_json)
        return value


#: The job hash fields of a :class:`JobRecord`, in :meth:`JobRecord.from_fields` order.
RECORD_FIELDS = ("order", "st", "sub", "started", "ended", "rdata", "res")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A scope's job list at change counter ``seq`` (stream entry ``last_id``)."""

    seq: int
    last_id: str
    jobs: list[tuple[str, JobStatus, bool]]

    @classmethod
    def from_reply(cls, flat: Sequence[Any]) -> Snapshot:
        """From the reply of ``snapshot.lua``: ``{seq, last id, (id, st, sub, res)...}``."""
        jobs = [
            (text(flat[i]), status_of(flat[i + 1], flat[i + 2]), text(flat[i + 3]) == "1")
            for i in range(2, len(flat), 4)
        ]
        return cls(seq=int(flat[0]), last_id=text(flat[1]), jobs=jobs)
