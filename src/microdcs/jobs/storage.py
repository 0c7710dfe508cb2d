"""Job persistence on plain Redis data types, one Lua script per state change.

Each change is a single EVALSHA through the store's pipelined connection: the script checks
the current state (and station configuration), writes, bumps the version and appends to
the scope's change stream atomically, so two replicas racing on one job never both win,
and a request costs one Redis round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from microdcs.core.cloudevent import now_millis
from microdcs.jobs.changefeed import ChangeFeed
from microdcs.jobs.keys import ID_KINDS, ScopeKeys, scopes_key
from microdcs.jobs.ranking import rank
from microdcs.jobs.records import RECORD_FIELDS, JobRecord, Snapshot
from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.scripts import JobScripts
from microdcs.jobs.statemachine import RULES, Command, Removal
from microdcs.jobs.states import READY, JobState, JobStatus
from microdcs.storage.dedupe import event_digest
from microdcs.storage.redis import RedisStore
from microdcs.storage.replies import text
from microdcs_models.machinery_jobs import ISA95JobOrderDataType

__all__ = ["Change", "JobRecord", "JobStore", "Snapshot", "origin_of", "references"]


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
    #: A Store of the origin that stored the job, again: OK, and nothing changed.
    again: bool = False

    @property
    def ok(self) -> bool:
        return self.status is ReturnStatus.OK


def origin_of(source: str, event_id: str) -> bytes:
    """What a job keeps of the Store that stored it: the event's digest, as the dedupe
    registry names it."""
    return event_digest(source, event_id)


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

    def __init__(
        self,
        store: RedisStore,
        *,
        retention: int,
        maxlen: int,
        max_jobs: int = 1000,
        close_after: float = 0.0,
    ) -> None:
        self.redis = store
        self._retention = retention
        self._maxlen = maxlen
        #: Approximate length of each scope's change stream (the dispatcher appends too).
        self.maxlen = maxlen
        #: A scope's job list limit until the MES configures one (0: unlimited).
        self.max_jobs = max_jobs
        #: Seconds after which an Ended/Completed job becomes Closed (0: only on fetch).
        self.close_after = close_after
        self._known_scopes: set[str] = set()
        self._scripts = JobScripts(store)
        #: APP_REDIS_WAIT_REPLICAS > 0: a change is answered once replicas have it.
        self._replicated = store.config.wait_replicas > 0
        #: The scopes' change streams and the publisher's cursors.
        self.changes = ChangeFeed(store)

    def keys(self, scope: str) -> ScopeKeys:
        return ScopeKeys.of(self.redis, scope)

    async def register_scope(self, scope: str) -> None:
        """Make the scope discoverable (once per process; the set is another slot)."""
        if scope not in self._known_scopes:
            await self.redis.execute("SADD", scopes_key(self.redis), scope)
            self._known_scopes.add(scope)

    # -- jobs -------------------------------------------------------------------
    async def put_order(
        self,
        scope: str,
        order: ISA95JobOrderDataType,
        order_json: bytes,
        *,
        new: JobStatus | None,
        origin: bytes = b"",
    ) -> Change:
        """Store (``new`` = the initial status) or Update (``new=None``) a job order.

        ``origin`` (see :func:`origin_of`) makes a Store idempotent: a Store of the origin
        that stored the job (or a deleted or archived job of that id) changes nothing and
        returns ``Change(OK, again=True)``, the answer the first one got.
        """
        await self.register_scope(scope)
        k = self.keys(scope)
        refs = references(order)
        iso, ms = now_millis()
        initial = new or JobStatus(JobState.NOT_ALLOWED_TO_START, READY)
        priority, start_ms = rank(order)
        reply = await self._scripts.put_order(
            [k.job(order.job_order_id), k.list, k.changes, k.seq, k.config("max"),
             k.config("workmaster"), k.config("recipe"), *(k.config(x) for x in ID_KINDS),
             k.archived(order.job_order_id), k.tombstone(order.job_order_id)],
            ["store" if new is not None else "update", order.job_order_id, order_json,
             int(initial.state), initial.substate or 0, iso, ms, self._maxlen,
             *(len(r) for r in refs), *(i for r in refs for i in r),
             k.base, priority, start_ms, self.max_jobs, origin],
        )  # fmt: skip
        if reply.again:
            return Change(reply.status, again=True)
        if reply.job_status is None:
            return Change(reply.status)
        if self._replicated:
            await self.redis.replicated(k.job(order.job_order_id))
        record = JobRecord(order.job_order_id, order_json, reply.job_status)
        return Change(
            reply.status, record, version=reply.version, seq=reply.seq, recipe=reply.recipe
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
        iso, ms = now_millis()
        allowed = "," + ",".join(str(int(s)) for s in rule.allowed_from) + ","
        target = rule.target
        reply = await self._scripts.transition(
            [k.job(job_id), k.list, k.changes, k.seq, k.responses, k.archived(job_id),
             k.tombstone(job_id)],
            [job_id, allowed, int(target.state) if target else "",
             (target.substate or 0) if target else (rule.keep_substate or 0),
             rule.removal.value, iso, ms, self._maxlen, self._retention,
             "" if expected_version is None else expected_version, response_data or b"",
             k.base, "" if rule.substate_from is None else rule.substate_from,
             self.close_after],
        )  # fmt: skip
        if reply.status is not ReturnStatus.OK:
            return Change(reply.status)
        if self._replicated:
            await self.redis.replicated(k.job(job_id))
        return Change(
            reply.status,
            reply.record(job_id),
            version=reply.version,
            seq=reply.seq,
            removed=rule.removal is not Removal.NONE,
            recipe=reply.recipe,
        )

    async def job(self, scope: str, job_id: str) -> tuple[JobRecord, int] | None:
        """The job (or its archived response) and its version; ``None`` if unknown."""
        k = self.keys(scope)
        reply = await self._scripts.get_job([k.job(job_id), k.archived(job_id)], [])
        if reply is None:
            return None
        return reply.record(job_id), reply.version

    async def responses(self, scope: str) -> list[JobRecord]:
        """Every job of the scope that has a job response (listed or archived)."""
        k = self.keys(scope)
        _, ms = now_millis()
        return await self._scripts.responses([k.responses], [ms, k.base])

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
        await self._scripts.workmaster(
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
        return {text(m) for m in members}

    async def snapshot(self, scope: str) -> Snapshot:
        """The scope's listed jobs with its change counter, in one atomic read."""
        k = self.keys(scope)
        return await self._scripts.snapshot([k.list, k.seq, k.changes], [k.base])

    async def listed(self, scope: str, job_id: str) -> JobRecord | None:
        """A listed job as it is now (``None`` once it left the list)."""
        fields = await self.redis.execute("HMGET", self.keys(scope).job(job_id), *RECORD_FIELDS)
        return _listed(job_id, fields)

    async def listed_many(self, jobs: Sequence[tuple[str, str]]) -> list[JobRecord | None]:
        """:meth:`listed` for many (scope, job id) pairs in one pipelined round trip."""
        replies = await self.redis.execute_many(
            [("HMGET", self.keys(scope).job(job_id), *RECORD_FIELDS) for scope, job_id in jobs]
        )
        records = []
        for (_, job_id), fields in zip(jobs, replies, strict=True):
            if isinstance(fields, Exception):
                raise fields
            records.append(_listed(job_id, fields))
        return records


def _listed(job_id: str, fields: Sequence[Any]) -> JobRecord | None:
    """The record of a job hash's fields, ``None`` when the hash is gone."""
    return None if fields[0] is None else JobRecord.from_fields(job_id, fields)
