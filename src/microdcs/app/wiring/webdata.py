"""The web pages' ports over the runtime's stores: jobs and their change streams, SFC
executions, alarms, plant data definitions, and this replica's health.

Everything here only reads (alarm actions go straight to the alarm manager, which gives
them the same validation and journal as the MQTT command); the pages get the result as
one :class:`~microdcs.web.pages.deps.PageDeps` from :func:`page_deps`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry.sdk.metrics.export import Gauge, MetricsData
from redis.exceptions import RedisError

from microdcs.alarms.contract import AlarmAction, AlarmView
from microdcs.alarms.manager import AlarmManager
from microdcs.app.application import AdditionalTask
from microdcs.app.runtime import Runtime
from microdcs.core.errors import UnavailableError
from microdcs.jobs.changefeed import ChangeEntry, ChangeFeed, stream_reply
from microdcs.jobs.contract import SFC_RECIPE_SCHEMA
from microdcs.jobs.records import JobRecord
from microdcs.jobs.storage import JobStore
from microdcs.plantdata.store import PlantDataStore
from microdcs.plantdata.tags import definition_from_config
from microdcs.sfc.engine.store import EngineStore
from microdcs.sfc.state import Execution
from microdcs.web.live import LiveHub
from microdcs.web.pages.deps import PageDeps
from microdcs.web.ports import (
    ActionRunView,
    JobChanges,
    JobDetail,
    JobList,
    JobRow,
    RecipeProgress,
    ReplicaStatus,
    StatusChange,
    StepTimer,
    StepVisit,
    TagInfo,
)
from microdcs_models.plant_tag_config import PlantTagConfig

logger = logging.getLogger(__name__)

#: How far back a job's status history is searched in its scope's change stream.
HISTORY_SCAN = 5000
#: How many jobs' histories are kept between reads (the jobs pages are open on).
HISTORY_CACHE = 256


def _work_master(order: dict[str, Any]) -> str:
    ids = [wm.get("ID", "") for wm in order.get("WorkMasterID") or () if isinstance(wm, dict)]
    return ", ".join(i for i in ids if i)


def job_row(record: JobRecord) -> JobRow:
    try:
        work_master = _work_master(record.order_raw())
    except orjson.JSONDecodeError:
        work_master = ""
    return JobRow(
        job_id=record.job_id,
        work_master=work_master,
        status=record.status,
        start=record.started or "",
        end=record.ended or "",
        has_result=record.has_response,
    )


def recipe_progress(execution: Execution) -> RecipeProgress:
    """What the chart shows of a stored execution (its summary's step entries)."""
    visits = [
        StepVisit(str(e[1]), int(e[2]), float(e[3]), None if e[4] is None else float(e[4]))
        for e in execution.history
        if e and e[0] == "step"
    ]
    timers = []
    for timer in execution.timers.values():
        run = execution.runs.get(timer.run)
        step, _, action = timer.run.partition("/")
        timers.append(
            StepTimer(
                timer.kind.value,
                run.step if run is not None else step,
                run.name if run is not None else action,
                timer.due_at,
                timer.remaining,
            )
        )
    runs = [ActionRunView(r.step, r.name, r.status.value) for r in execution.runs.values()]
    return RecipeProgress(
        execution.status.value, execution.version, execution.active, visits, timers, runs,
        execution.reason,
    )  # fmt: skip


class StoreJobReader:
    """JobReader over the job store, its change streams and the engine's executions."""

    def __init__(self, jobs: JobStore, engine: EngineStore) -> None:
        self.store = jobs
        self.engine = engine
        self.feed = ChangeFeed(jobs.redis)
        #: (scope, job) -> (last stream id read, the job's status changes), newest last.
        self._histories: dict[tuple[str, str], tuple[str, list[StatusChange]]] = {}

    async def scopes(self) -> Sequence[str]:
        return sorted(await self.store.scopes())

    async def jobs(self, scope: str) -> JobList:
        snapshot = await self.store.snapshot(scope)
        ids = [job_id for job_id, _, _ in snapshot.jobs]
        return JobList(await self.rows(scope, ids), snapshot.last_id or "0")

    async def changed(self, scope: str, after: str, *, limit: int = 1000) -> JobChanges:
        (entries,) = await self.feed.read([(scope, after)], count=limit)
        if not entries:
            return JobChanges(after)
        last: dict[str, ChangeEntry] = {e.job_id: e for e in entries}
        changed = frozenset(i for i, e in last.items() if not e.removed)
        removed = frozenset(i for i, e in last.items() if e.removed)
        return JobChanges(entries[-1].entry_id, changed, removed)

    async def rows(self, scope: str, job_ids: Sequence[str]) -> Sequence[JobRow]:
        if not job_ids:
            return []
        records = await self.store.listed_many([(scope, job_id) for job_id in job_ids])
        return [job_row(r) for r in records if r is not None]

    async def _history(self, scope: str, job_id: str) -> list[StatusChange]:
        """The job's status changes in the scope's change stream: the last
        :data:`HISTORY_SCAN` entries the first time, then only the entries added since
        (a job page asks ten times a second)."""
        key = self.store.keys(scope).changes
        cached = self._histories.pop((scope, job_id), None)
        if cached is None:
            reply = await self.store.redis.execute(
                "XREVRANGE", key, "+", "-", "COUNT", HISTORY_SCAN
            )
            entries = list(reversed(stream_reply([[b"", reply]]) if reply else []))
            changes: list[StatusChange] = []
            last = "0"
        else:
            last, changes = cached
            reply = await self.store.redis.execute(
                "XRANGE", key, f"({last}", "+", "COUNT", HISTORY_SCAN
            )
            entries = stream_reply([[b"", reply]]) if reply else []
        if entries:
            last = entries[-1].entry_id
        changes = changes + [
            StatusChange(e.time, e.status) for e in entries if e.job_id == job_id and not e.removed
        ]
        self._histories[(scope, job_id)] = (last, changes)
        while len(self._histories) > HISTORY_CACHE:
            del self._histories[next(iter(self._histories))]
        return changes

    async def _recipe(self, scope: str, order: dict[str, Any]) -> bytes | None:
        for wm in order.get("WorkMasterID") or ():
            wm_id = wm.get("ID") if isinstance(wm, dict) else None
            raw = await self.store.work_master(scope, wm_id) if wm_id else None
            if raw is None:
                continue
            master = orjson.loads(raw)
            if master.get("dataschema") == SFC_RECIPE_SCHEMA and master.get("data") is not None:
                return orjson.dumps(master["data"])
        return None

    async def job(self, scope: str, job_id: str) -> JobDetail | None:
        found = await self.store.job(scope, job_id)
        if found is None:
            return None
        record, _ = found
        order = record.order_raw()
        return JobDetail(
            row=job_row(record),
            order=order,
            response=record.response_raw(),
            history=await self._history(scope, job_id),
            recipe_json=await self._recipe(scope, order),
        )

    async def progress(self, scope: str, job_id: str) -> RecipeProgress | None:
        stored = await self.engine.load(scope, job_id)
        return None if stored is None else recipe_progress(stored.execution)


class ManagerAlarms:
    """The pages' alarm service: the alarm manager plus its store's scope list."""

    def __init__(self, manager: AlarmManager) -> None:
        self.manager = manager

    async def scopes(self) -> Sequence[str]:
        return sorted(await self.manager.store.scopes())

    async def snapshot(self, scope: str) -> tuple[int, Sequence[AlarmView]]:
        return await self.manager.snapshot(scope)

    async def alarms(self, scope: str) -> Sequence[AlarmView]:
        return await self.manager.alarms(scope)

    async def journal(self, scope: str, start: float, end: float, limit: int = 1000) -> Any:
        return await self.manager.journal(scope, start, end, limit)

    async def act(
        self,
        scope: str,
        action: AlarmAction,
        alarms: Sequence[str],
        *,
        operator: str,
        comment: str = "",
        shelve_seconds: float | None = None,
    ) -> Any:
        return await self.manager.act(
            scope, action, alarms, operator=operator, comment=comment,
            shelve_seconds=shelve_seconds,
        )  # fmt: skip


class PlantTagDirectory:
    """Configured tags from the plant data store's definitions."""

    def __init__(self, store: PlantDataStore) -> None:
        self.store = store

    async def scopes(self) -> Sequence[str]:
        return sorted(await self.store.scopes())

    async def tags(self, scope: str) -> Sequence[TagInfo]:
        infos = []
        for name, raw in sorted((await self.store.definitions(scope)).items()):
            try:
                definition = definition_from_config(PlantTagConfig.from_json(raw))
            except (ValueError, TypeError, KeyError):
                infos.append(TagInfo(name))
                continue
            infos.append(
                TagInfo(
                    name,
                    definition.unit,
                    definition.description,
                    {"type": definition.data_type.value, "deadband": definition.deadband},
                )
            )
        return infos


def _gauges(data: MetricsData | None) -> dict[str, float]:
    values: dict[str, float] = {}
    if data is None:
        return values
    for resource in data.resource_metrics:
        for scoped in resource.scope_metrics:
            for metric in scoped.metrics:
                if isinstance(metric.data, Gauge):
                    for point in metric.data.data_points:
                        values[metric.name] = float(point.value)
    return values


class ReplicaBoard:
    """Every replica's health for the overview: each replica writes its own status into
    one Redis hash every ``interval`` seconds (as a task of the runtime), and reads all
    of them; one that has not written for ``forget_after`` seconds is dropped from it.

    This replica's own status is read fresh (transports connected and no task in a crash
    loop, as /readyz has it without the Redis ping; the publisher lease and lag from its
    metrics); the others' are as old as their last report (``seen_ago``), and one that
    is late by more than three intervals is shown not ready.
    """

    def __init__(
        self, runtime: Runtime, *, interval: float = 2.0, forget_after: float = 60.0
    ) -> None:
        self.runtime = runtime
        self.interval = interval
        self.forget_after = forget_after
        self.key = runtime.store.key("web", "replicas")
        self.name = runtime.config.resolved_instance_id

    def own(self) -> ReplicaStatus:
        gauges = _gauges(self.runtime.metrics.collect())
        app = self.runtime.app
        return ReplicaStatus(
            name=self.name,
            ready=app.ready and all(app.task_health().values()),
            publisher_leader=gauges.get("microdcs.publisher.leader", 0.0) >= 1.0,
            publisher_lag=gauges.get("microdcs.publisher.lag_seconds"),
            sfc_active=int(gauges.get("microdcs.sfc.active_executions", 0)),
        )

    async def report(self) -> None:
        entry = {**self.own().to_json(), "at": time.time()}
        await self.runtime.store.execute("HSET", self.key, self.name, orjson.dumps(entry))

    async def run(self, shutdown: asyncio.Event) -> None:
        """The reporting task: until shutdown, then this replica's entry is removed."""
        while not shutdown.is_set():
            try:
                await self.report()
            except (OSError, RedisError, UnavailableError) as error:  # report again later
                logger.debug("replica report failed: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), self.interval)
        with contextlib.suppress(OSError, RedisError, UnavailableError):
            await self.runtime.store.execute("HDEL", self.key, self.name)

    async def replicas(self) -> Sequence[ReplicaStatus]:
        now = time.time()
        stored = await self.runtime.store.execute("HGETALL", self.key) or ()
        pairs = (
            list(stored.items())
            if isinstance(stored, dict)
            else list(zip(stored[::2], stored[1::2], strict=True))
        )
        out = {self.name: self.own()}
        gone = []
        for raw_name, raw in pairs:
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            if name == self.name:
                continue
            entry = orjson.loads(raw)
            age = now - float(entry.get("at", 0))
            if age > self.forget_after:
                gone.append(name)
                continue
            out[name] = ReplicaStatus(
                name=name,
                ready=bool(entry.get("ready")) and age <= 3 * self.interval,
                publisher_leader=bool(entry.get("leader")),
                publisher_lag=entry.get("lag"),
                sfc_active=entry.get("sfcActive"),
                seen_ago=round(age, 1),
            )
        if gone:
            await self.runtime.store.execute("HDEL", self.key, *gone)
        return [out[name] for name in sorted(out)]


def page_deps(
    runtime: Runtime, *, hub: LiveHub | None = None, title: str = "", serve_hub: bool = True
) -> PageDeps:
    """The pages' ports over ``runtime``; with ``serve_hub`` the live hub runs as one of
    the runtime's tasks (call this while wiring, before the runtime runs)."""
    hub = hub or LiveHub()
    board = ReplicaBoard(runtime)
    if serve_hub:
        runtime.app.add_task(AdditionalTask("web-live", hub.run))
        runtime.app.add_task(AdditionalTask("web-replicas", board.run))
    return PageDeps(
        jobs=StoreJobReader(runtime.jobs.jobs, runtime.sfc_engine.store),
        alarms=ManagerAlarms(runtime.alarms),
        tags=PlantTagDirectory(runtime.plantdata.store),
        tag_reader=runtime.plantdata,
        replicas=board,
        hub=hub,
        title=title or f"microdcs - {runtime.config.resolved_instance_id}",
    )
