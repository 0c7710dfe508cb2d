"""The job store's Lua scripts and their typed replies.

One :class:`~microdcs.storage.script.Script` per ``.lua`` file of ``jobs/lua``; each
reply is read here, once, into its dataclass (the positions are those each script's
header comment documents), so the store never indexes a raw reply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from microdcs.jobs.records import JobRecord, Snapshot, status_of
from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.states import JobStatus
from microdcs.storage.redis import RedisStore
from microdcs.storage.replies import number, optional_text, text
from microdcs.storage.script import Script

_LUA = Path(__file__).parent / "lua"
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class PutOrderReply:
    """``put_order.lua``: ``{status}``, ``{1, 'again'}`` (a Store of the origin that stored
    the job), or ``{1, version, seq, recipe, state, substate}``."""

    status: ReturnStatus
    version: int = 0
    seq: int = 0
    #: Recipe format (dataschema) of the job's work master, "" if it has none.
    recipe: str = ""
    job_status: JobStatus | None = None
    #: The request was a copy of the Store that stored the job: nothing changed.
    again: bool = False

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> PutOrderReply:
        status = ReturnStatus(int(reply[0]))
        if status is not ReturnStatus.OK:
            return cls(status)
        if len(reply) == 2:
            return cls(status, again=True)
        return cls(
            status, int(reply[1]), int(reply[2]), text(reply[3]), status_of(reply[4], reply[5])
        )


@dataclass(frozen=True, slots=True)
class TransitionReply:
    """``transition.lua``: ``{status}``, or ``{1, version, seq, state, substate, order,
    started, ended, response data, has response, recipe}``."""

    status: ReturnStatus
    version: int = 0
    seq: int = 0
    job_status: JobStatus | None = None
    order_json: bytes = b""
    started: str | None = None
    ended: str | None = None
    response_data: bytes | None = None
    has_response: bool = False
    recipe: str = ""

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> TransitionReply:
        status = ReturnStatus(int(reply[0]))
        if status is not ReturnStatus.OK:
            return cls(status)
        return cls(
            status,
            version=int(reply[1]),
            seq=int(reply[2]),
            job_status=status_of(reply[3], reply[4]),
            order_json=bytes(reply[5]),
            started=optional_text(reply[6]),
            ended=optional_text(reply[7]),
            response_data=reply[8] or None,
            has_response=text(reply[9]) == "1",
            recipe=text(reply[10]),
        )

    def record(self, job_id: str) -> JobRecord:
        """The job after the change (only for an ``OK`` reply)."""
        assert self.job_status is not None
        return JobRecord(
            job_id, self.order_json, self.job_status, self.started, self.ended,
            self.response_data, self.has_response,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class GetJobReply:
    """``get_job.lua``: ``{order, state, substate, started, ended, response data, has
    response, version}``; ``{}`` (read as ``None``) when the job is unknown."""

    order_json: bytes
    job_status: JobStatus
    started: str | None
    ended: str | None
    response_data: bytes | None
    has_response: bool
    version: int

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> GetJobReply | None:
        if not reply:
            return None
        order, st, sub, started, ended, rdata, res, version = reply
        return cls(
            bytes(order), status_of(st, sub), optional_text(started), optional_text(ended),
            rdata or None, text(res) == "1", number(version),
        )  # fmt: skip

    def record(self, job_id: str) -> JobRecord:
        return JobRecord(
            job_id, self.order_json, self.job_status, self.started, self.ended,
            self.response_data, self.has_response,
        )  # fmt: skip


def responses_reply(flat: Sequence[Any]) -> list[JobRecord]:
    """``responses.lua``: per job ``{id, order, state, substate, started, ended, data}``."""
    return [
        JobRecord.from_fields(text(flat[i]), [*flat[i + 1 : i + 7], b"1"])
        for i in range(0, len(flat), 7)
    ]


def ignored(reply: Any) -> None:
    """For scripts whose reply says nothing (``workmaster.lua`` always returns 1)."""


def queue_script(
    store: RedisStore, name: str, file: str, parse: Callable[[Any], R], *, traced: bool = True
) -> Script[R]:
    """A script that keeps the dispatcher's queue: ``queue.lua`` (its functions) first."""
    source = (_LUA / "queue.lua").read_text(encoding="utf-8")
    source += (_LUA / f"{file}.lua").read_text(encoding="utf-8")
    return Script(store, name, source, parse, traced=traced)


class JobScripts:
    """The job store's scripts, loaded once with the store."""

    __slots__ = ("get_job", "put_order", "responses", "snapshot", "transition", "workmaster")

    def __init__(self, store: RedisStore) -> None:
        def load(name: str) -> Path:
            return _LUA / f"{name}.lua"

        self.put_order = queue_script(
            store, "jobs.put_order", "put_order", PutOrderReply.from_reply
        )
        self.transition = queue_script(
            store, "jobs.transition", "transition", TransitionReply.from_reply
        )
        self.get_job = Script.load(store, "jobs.get_job", load("get_job"), GetJobReply.from_reply)
        self.responses = Script.load(store, "jobs.responses", load("responses"), responses_reply)
        self.workmaster = Script.load(store, "jobs.workmaster", load("workmaster"), ignored)
        self.snapshot = Script.load(store, "jobs.snapshot", load("snapshot"), Snapshot.from_reply)
