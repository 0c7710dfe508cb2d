"""Job persistence on plain Redis data types, one Lua script per state change.

Each change is a single EVALSHA through the store's pipelined connection: the script checks
the current state (and station configuration), writes, bumps the version and appends to
the scope's change stream atomically, so two replicas racing on one job never both win,
and a request costs one Redis round trip.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from microdcs.jobs.keys import ID_KINDS, ScopeKeys, scopes_key
from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.statemachine import RULES, Command, Removal
from microdcs.jobs.states import READY, JobState, JobStatus
from microdcs.storage.redis import RedisStore
from microdcs_models.machinery_jobs import ISA95JobOrderDataType

_LUA = Path(__file__).parent / "lua"
_SCRIPTS = ("put_order", "transition", "get_job", "responses", "workmaster", "snapshot")


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _now() -> tuple[str, int]:
    now = time.time()
    iso = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    return iso.replace("+00:00", "Z"), int(now * 1000)


def _status(state: Any, sub: Any) -> JobStatus:
    number = int(_text(sub) or 0)
    return JobStatus(JobState(int(_text(state))), number or None)


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

    def response_raw(self) -> dict[str, Any]:
        """The ISA95JobResponseDataType JSON object of this job."""
        raw: dict[str, Any] = {
            "JobResponseID": self.job_id,
            "JobOrderID": self.job_id,
            "JobState": self.status.to_wire(),
        }
        if self.started:
            raw["StartTime"] = self.started
        if self.ended:
            raw["EndTime"] = self.ended
        if self.response_data:
            raw["JobResponseData"] = orjson.loads(self.response_data)
        return raw

    def order_raw(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.order_json)
        return value


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of one command: its ReturnStatus and, on success, the job afterwards."""

    status: ReturnStatus
    record: JobRecord | None = None
    version: int = 0
    seq: int = 0
    removed: bool = False
    #: Recipe format (dataschema) of the job's work master, "" if it has none.
    recipe: str = ""

    @property
    def ok(self) -> bool:
        return self.status is ReturnStatus.OK


def references(order: ISA95JobOrderDataType) -> list[list[str]]:
    """IDs the order references, per kind: work master, then :data:`ID_KINDS` order."""

    def ids(items: Sequence[Any] | None, attr: str) -> list[str]:
        return [v for v in (getattr(i, attr) for i in items or ()) if v]

    materials = order.material_requirements
    return [
        ids(order.work_master_id, "id"),
        ids(order.equipment_requirements, "id"),
        ids(materials, "material_class_id"),
        ids(materials, "material_definition_id"),
        ids(order.personnel_requirements, "id"),
        ids(order.physical_asset_requirements, "id"),
    ]


class JobStore:
    """Jobs, job responses and station configuration of every scope."""

    def __init__(self, store: RedisStore, *, retention: int, maxlen: int) -> None:
        self.redis = store
        self._retention = retention
        self._maxlen = maxlen
        self._known_scopes: set[str] = set()
        for name in _SCRIPTS:
            store.register_script(f"jobs.{name}", _LUA / f"{name}.lua")

    def keys(self, scope: str) -> ScopeKeys:
        return ScopeKeys.of(self.redis, scope)

    async def register_scope(self, scope: str) -> None:
        """Make the scope discoverable (once per process; the set is another slot)."""
        if scope not in self._known_scopes:
            await self.redis.execute("SADD", scopes_key(self.redis), scope)
            self._known_scopes.add(scope)

    # -- jobs -------------------------------------------------------------------
    async def put_order(
        self, scope: str, order: ISA95JobOrderDataType, order_json: bytes, *, new: JobStatus | None
    ) -> Change:
        """Store (``new`` = the initial status) or Update (``new=None``) a job order."""
        await self.register_scope(scope)
        k = self.keys(scope)
        refs = references(order)
        iso, ms = _now()
        initial = new or JobStatus(JobState.NOT_ALLOWED_TO_START, READY)
        reply = await self.redis.run_script(
            "jobs.put_order",
            [k.job(order.job_order_id), k.list, k.changes, k.seq, k.config("max"),
             k.config("workmaster"), k.config("recipe"), *(k.config(x) for x in ID_KINDS)],
            ["store" if new is not None else "update", order.job_order_id, order_json,
             int(initial.state), initial.substate or 0, iso, ms, self._maxlen,
             *(len(r) for r in refs), *(i for r in refs for i in r)],
        )  # fmt: skip
        status = ReturnStatus(int(reply[0]))
        if status is not ReturnStatus.OK:
            return Change(status)
        record = JobRecord(order.job_order_id, order_json, _status(reply[4], reply[5]))
        return Change(
            status, record, version=int(reply[1]), seq=int(reply[2]), recipe=_text(reply[3])
        )

    async def transition(
        self,
        scope: str,
        job_id: str,
        command: Command,
        *,
        expected_version: int | None = None,
        response_data: bytes | None = None,
    ) -> Change:
        """Apply a command of the state machine to a stored job, atomically."""
        rule = RULES[command]
        k = self.keys(scope)
        iso, ms = _now()
        allowed = "," + ",".join(str(int(s)) for s in rule.allowed_from) + ","
        target = rule.target
        reply = await self.redis.run_script(
            "jobs.transition",
            [k.job(job_id), k.list, k.changes, k.seq, k.responses, k.archived(job_id)],
            [job_id, allowed, int(target.state) if target else "",
             (target.substate or 0) if target else (rule.keep_substate or 0),
             rule.removal.value, iso, ms, self._maxlen, self._retention,
             "" if expected_version is None else expected_version, response_data or b""],
        )  # fmt: skip
        status = ReturnStatus(int(reply[0]))
        if status is not ReturnStatus.OK:
            return Change(status)
        record = JobRecord(
            job_id,
            bytes(reply[5]),
            _status(reply[3], reply[4]),
            started=_text(reply[6]) or None,
            ended=_text(reply[7]) or None,
            response_data=reply[8] or None,
            has_response=_text(reply[9]) == "1",
        )
        return Change(
            status,
            record,
            version=int(reply[1]),
            seq=int(reply[2]),
            removed=rule.removal is not Removal.NONE,
            recipe=_text(reply[10]),
        )

    async def job(self, scope: str, job_id: str) -> tuple[JobRecord, int] | None:
        """The job (or its archived response) and its version; ``None`` if unknown."""
        k = self.keys(scope)
        reply = await self.redis.run_script("jobs.get_job", [k.job(job_id), k.archived(job_id)], [])
        if not reply:
            return None
        order, st, sub, started, ended, rdata, res, version = reply
        record = JobRecord(
            job_id, bytes(order), _status(st, sub), _text(started) or None,
            _text(ended) or None, rdata or None, _text(res) == "1",
        )  # fmt: skip
        return record, int(_text(version) or 0)

    async def responses(self, scope: str) -> list[JobRecord]:
        """Every job of the scope that has a job response (listed or archived)."""
        k = self.keys(scope)
        _, ms = _now()
        flat = await self.redis.run_script("jobs.responses", [k.responses], [ms, k.base])
        records = []
        for i in range(0, len(flat), 7):
            job_id, order, st, sub, started, ended, rdata = flat[i : i + 7]
            records.append(
                JobRecord(
                    _text(job_id), bytes(order), _status(st, sub), _text(started) or None,
                    _text(ended) or None, rdata or None, True,
                )
            )  # fmt: skip
        return records

    # -- station configuration -----------------------------------------------------------
    async def allow_id(self, scope: str, kind: str, item_id: str, *, allowed: bool) -> None:
        """PUT (allow) or DELETE (disallow) an ID of one of :data:`ID_KINDS`."""
        await self.redis.execute(
            "SADD" if allowed else "SREM", self.keys(scope).config(kind), item_id
        )

    async def put_work_master(
        self, scope: str, wm_id: str, wm_json: bytes | None, recipe_schema: str
    ) -> None:
        """Store a work master (``wm_json``) or delete it (``None``)."""
        k = self.keys(scope)
        await self.redis.run_script(
            "jobs.workmaster",
            [k.config("workmaster"), k.config("recipe")],
            ["PUT" if wm_json is not None else "DELETE", wm_id, wm_json or b"", recipe_schema],
        )

    async def work_master(self, scope: str, wm_id: str) -> bytes | None:
        reply = await self.redis.execute("HGET", self.keys(scope).config("workmaster"), wm_id)
        return bytes(reply) if reply is not None else None

    async def set_max_jobs(self, scope: str, limit: int | None) -> None:
        """The scope's ``max_downloadable_job_orders`` (``None``: back to unlimited)."""
        key = self.keys(scope).config("max")
        if limit is None:
            await self.redis.execute("DEL", key)
        else:
            await self.redis.execute("SET", key, limit)

    # -- reading for the publisher ---------------------------------------------------------
    async def scopes(self) -> set[str]:
        """Every scope that has ever had a job."""
        members = await self.redis.execute("SMEMBERS", scopes_key(self.redis))
        return {_text(m) for m in members}

    async def snapshot(self, scope: str) -> Snapshot:
        """The scope's listed jobs with its change counter, in one atomic read."""
        k = self.keys(scope)
        flat = await self.redis.run_script("jobs.snapshot", [k.list, k.seq, k.changes], [k.base])
        jobs = [
            (_text(flat[i]), _status(flat[i + 1], flat[i + 2]), _text(flat[i + 3]) == "1")
            for i in range(2, len(flat), 4)
        ]
        return Snapshot(seq=int(flat[0]), last_id=_text(flat[1]), jobs=jobs)

    async def listed(self, scope: str, job_id: str) -> JobRecord | None:
        """A listed job as it is now (``None`` once it left the list)."""
        fields = await self.redis.execute("HMGET", self.keys(scope).job(job_id), *_RECORD_FIELDS)
        return _record(job_id, fields)

    async def listed_many(self, jobs: Sequence[tuple[str, str]]) -> list[JobRecord | None]:
        """:meth:`listed` for many (scope, job id) pairs in one pipelined round trip."""
        replies = await self.redis.execute_many(
            [("HMGET", self.keys(scope).job(job_id), *_RECORD_FIELDS) for scope, job_id in jobs]
        )
        records = []
        for (_, job_id), fields in zip(jobs, replies, strict=True):
            if isinstance(fields, Exception):
                raise fields
            records.append(_record(job_id, fields))
        return records


_RECORD_FIELDS = ("order", "st", "sub", "started", "ended", "rdata", "res")


def _record(job_id: str, fields: Sequence[Any]) -> JobRecord | None:
    order, st, sub, started, ended, rdata, res = fields
    if order is None:
        return None
    return JobRecord(
        job_id, bytes(order), _status(st, sub), _text(started) or None,
        _text(ended) or None, rdata or None, _text(res) == "1",
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A scope's job list at change counter ``seq`` (stream entry ``last_id``)."""

    seq: int
    last_id: str
    jobs: list[tuple[str, JobStatus, bool]]
