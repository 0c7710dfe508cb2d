"""The web pages' ports over the runtime's stores: jobs and their change streams, SFC
executions, alarms, plant data definitions, and this replica's health.

Everything here only reads (alarm actions go straight to the alarm manager, which gives
them the same validation and journal as the MQTT command); the pages get the result as
one :class:`~microdcs.web.pages.deps.PageDeps` from :func:`page_deps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry.sdk.metrics.export import Gauge, MetricsData

from microdcs.alarms.contract import AlarmAction, AlarmView
from microdcs.alarms.manager import AlarmManager
from microdcs.app.application import AdditionalTask
from microdcs.app.runtime import Runtime
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

#: How far back a job's status history is searched in its scope's change stream.
HISTORY_SCAN = 5000


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
        reply = await self.store.redis.execute(
            "XREVRANGE", self.store.keys(scope).changes, "+", "-", "COUNT", HISTORY_SCAN
        )
        entries = stream_reply([[b"", reply]]) if reply else []
        return [
            StatusChange(e.time, e.status)
            for e in reversed(entries)
            if e.job_id == job_id and not e.removed
        ]

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


class LocalReplica:
    """This replica's health: its transports connected and no task in a crash loop (as
    /readyz has it, without the Redis ping: the pages read Redis anyway), and from its
    metrics the publisher lease and lag."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def replicas(self) -> Sequence[ReplicaStatus]:
        gauges = _gauges(self.runtime.metrics.collect())
        return [
            ReplicaStatus(
                name=self.runtime.config.resolved_instance_id,
                ready=self.runtime.app.ready and all(self.runtime.app.task_health().values()),
                publisher_leader=gauges.get("microdcs.publisher.leader", 0.0) >= 1.0,
                publisher_lag=gauges.get("microdcs.publisher.lag_seconds"),
                sfc_active=int(gauges.get("microdcs.sfc.active_executions", 0)),
            )
        ]


def page_deps(
    runtime: Runtime, *, hub: LiveHub | None = None, title: str = "", serve_hub: bool = True
) -> PageDeps:
    """The pages' ports over ``runtime``; with ``serve_hub`` the live hub runs as one of
    the runtime's tasks (call this while wiring, before the runtime runs)."""
    hub = hub or LiveHub()
    if serve_hub:
        runtime.app.add_task(AdditionalTask("web-live", hub.run))
    return PageDeps(
        jobs=StoreJobReader(runtime.jobs.jobs, runtime.sfc_engine.store),
        alarms=ManagerAlarms(runtime.alarms),
        tags=PlantTagDirectory(runtime.plantdata.store),
        tag_reader=runtime.plantdata,
        replicas=LocalReplica(runtime),
        hub=hub,
        title=title or f"microdcs - {runtime.config.resolved_instance_id}",
    )
