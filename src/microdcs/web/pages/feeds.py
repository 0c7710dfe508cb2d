"""The live feeds behind each page (see :mod:`microdcs.web.live`): what a new page gets
as its snapshot, and what changed since the last poll, as JSON-ready values.

Each feed follows the source the publisher follows where there is one (a scope's job
change stream, the alarm change counter) and compares current values where there is
none (tags, a job's recipe progress), so a poll of an idle page costs one small read.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import orjson

from microdcs.alarms.contract import AlarmPriority, AlarmState, AlarmView
from microdcs.plantdata.contract import TagSample
from microdcs.web.pages.deps import PageDeps
from microdcs.web.ports import JobDetail, RecipeProgress, TagInfo

PRIORITY_ORDER = {p: i for i, p in enumerate(AlarmPriority)}
#: The states an operator must see (the others are normal or deliberately hidden).
ACTIVE_STATES = frozenset(
    {
        AlarmState.UNACKNOWLEDGED,
        AlarmState.ACKNOWLEDGED,
        AlarmState.RETURNED_UNACKNOWLEDGED,
        AlarmState.LATCHED,
    }
)


def alarm_json(view: AlarmView) -> dict[str, Any]:
    return {
        "alarm": view.alarm,
        "tag": view.tag,
        "kind": view.kind.value,
        "priority": view.priority.value,
        "state": view.state.value,
        "message": view.message,
        "condition": view.condition,
        "activeSince": view.active_since,
        "changedAt": view.changed_at,
        "value": view.value,
        "shelvedUntil": view.shelved_until,
        "operator": view.operator,
        "comment": view.comment,
    }


def listed_alarms(views: Sequence[AlarmView]) -> list[AlarmView]:
    """Every alarm not in normal, by priority (critical first), then newest first."""
    shown = [v for v in views if v.state is not AlarmState.NORMAL]
    return sorted(
        shown,
        key=lambda v: (PRIORITY_ORDER[v.priority], -(v.active_since or v.changed_at)),
    )


def sample_json(sample: TagSample | None) -> dict[str, Any]:
    if sample is None:
        return {"value": None, "quality": "", "stale": False, "time": None}
    return {
        "value": sample.value,
        "quality": sample.quality.value,
        "stale": sample.stale,
        "time": sample.source_time,
    }


def detail_json(detail: JobDetail, progress: RecipeProgress | None) -> dict[str, Any]:
    return {
        "row": detail.row.to_json(),
        "history": [{"at": h.at, "status": h.status.path} for h in detail.history],
        "response": dict(detail.response),
        "progress": progress.to_json() if progress is not None else None,
    }


async def overview_data(deps: PageDeps) -> dict[str, Any]:
    """Scopes with job counts per state, active alarms by priority, the replicas."""
    jobs = []
    for scope in await deps.jobs.scopes():
        listed = await deps.jobs.jobs(scope)
        counts = Counter(row.status.state.browse_name for row in listed.rows)
        jobs.append({"scope": scope, "counts": dict(counts), "total": len(listed.rows)})
    alarms = []
    for scope in await deps.alarms.scopes():
        views = await deps.alarms.alarms(scope)
        active = [v for v in views if v.state in ACTIVE_STATES]
        by_priority = Counter(v.priority.value for v in active)
        alarms.append(
            {
                "scope": scope,
                "byPriority": {p.value: by_priority.get(p.value, 0) for p in AlarmPriority},
                "unacknowledged": sum(
                    v.state in (AlarmState.UNACKNOWLEDGED, AlarmState.RETURNED_UNACKNOWLEDGED)
                    for v in active
                ),
                "total": len(active),
            }
        )
    tags = [
        {"scope": scope, "count": len(await deps.tags.tags(scope))}
        for scope in await deps.tags.scopes()
    ]
    replicas = [r.to_json() for r in await deps.replicas.replicas()]
    return {"jobs": jobs, "alarms": alarms, "tags": tags, "replicas": replicas}


class OverviewFeed:
    """The whole overview, recomputed every ``every`` polls and sent when it changed."""

    def __init__(self, deps: PageDeps, *, every: int = 10) -> None:
        self.deps = deps
        self.every = every
        self._tick = 0
        self._last = b""

    async def start(self) -> None:
        self._last = orjson.dumps(await overview_data(self.deps))

    async def snapshot(self) -> Any:
        return orjson.loads(self._last)

    async def poll(self) -> Any | None:
        self._tick += 1
        if self._tick % self.every:
            return None
        data = await overview_data(self.deps)
        encoded = orjson.dumps(data)
        if encoded == self._last:
            return None
        self._last = encoded
        return data


class JobsFeed:
    """A scope's job table: the rows of the jobs its change stream names."""

    def __init__(self, deps: PageDeps, scope: str) -> None:
        self.deps = deps
        self.scope = scope
        self._cursor = "0"

    async def start(self) -> None:
        self._cursor = (await self.deps.jobs.jobs(self.scope)).cursor

    async def snapshot(self) -> Any:
        listed = await self.deps.jobs.jobs(self.scope)
        return {"rows": [row.to_json() for row in listed.rows], "removed": []}

    async def poll(self) -> Any | None:
        changes = await self.deps.jobs.changed(self.scope, self._cursor)
        self._cursor = changes.cursor
        if not changes.changed and not changes.removed:
            return None
        rows = await self.deps.jobs.rows(self.scope, sorted(changes.changed))
        present = {row.job_id for row in rows}
        removed = (changes.removed | changes.changed) - present
        return {"rows": [row.to_json() for row in rows], "removed": sorted(removed)}


class JobFeed:
    """One job: its row, status history and recipe progress, sent when any changed."""

    def __init__(self, deps: PageDeps, scope: str, job_id: str) -> None:
        self.deps = deps
        self.scope = scope
        self.job_id = job_id
        self._last = b""

    async def _read(self) -> dict[str, Any] | None:
        detail = await self.deps.jobs.job(self.scope, self.job_id)
        if detail is None:
            return None
        progress = await self.deps.jobs.progress(self.scope, self.job_id)
        return detail_json(detail, progress)

    async def start(self) -> None:
        self._last = orjson.dumps(await self._read())

    async def snapshot(self) -> Any:
        return orjson.loads(self._last)

    async def poll(self) -> Any | None:
        data = await self._read()
        encoded = orjson.dumps(data)
        if encoded == self._last:
            return None
        self._last = encoded
        return data


class AlarmsFeed:
    """A scope's alarm list, refetched when its change counter moved."""

    def __init__(self, deps: PageDeps, scope: str) -> None:
        self.deps = deps
        self.scope = scope
        self._seq = -1

    async def _read(self) -> dict[str, Any]:
        self._seq, views = await self.deps.alarms.snapshot(self.scope)
        return {"alarms": [alarm_json(v) for v in listed_alarms(views)], "now": time.time()}

    async def start(self) -> None:
        self._seq, _ = await self.deps.alarms.snapshot(self.scope)

    async def snapshot(self) -> Any:
        return await self._read()

    async def poll(self) -> Any | None:
        seq, _ = await self.deps.alarms.snapshot(self.scope)
        if seq == self._seq:
            return None
        return await self._read()


class TagsFeed:
    """A scope's current values, compared with the last poll; each tag's last values
    are kept here for the trend (so pages that join later see the same trend)."""

    def __init__(self, deps: PageDeps, scope: str, *, refresh: int = 50) -> None:
        self.deps = deps
        self.scope = scope
        self.refresh = refresh
        self._tick = 0
        self._tags: Sequence[TagInfo] = ()
        self._last: dict[str, tuple[Any, ...]] = {}
        self._samples: dict[str, dict[str, Any]] = {}
        self._trends: dict[str, deque[float]] = {}

    async def start(self) -> None:
        self._tags = await self.deps.tags.tags(self.scope)
        await self._changes()

    async def _changes(self) -> list[dict[str, Any]]:
        reader = self.deps.tag_reader
        if reader is None or not self._tags:
            return []
        samples = await reader.read(self.scope, [t.name for t in self._tags])
        changed = []
        for name, sample in samples.items():
            key = (sample.value, sample.quality, sample.stale, sample.source_time)
            if self._last.get(name) == key:
                continue
            self._last[name] = key
            entry = {"tag": name, **sample_json(sample)}
            value = sample.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                trend = self._trends.get(name)
                if trend is None:
                    trend = self._trends[name] = deque(maxlen=self.deps.trend_points)
                trend.append(float(value))
            self._samples[name] = entry
            changed.append(entry)
        return changed

    async def snapshot(self) -> Any:
        """Every tag with its whole trend; updates then carry only new values, which the
        page appends to its trend (so a busy scope's update stays small)."""
        return {
            "points": self.deps.trend_points,
            "tags": [
                {
                    **self._samples.get(t.name, {"tag": t.name, **sample_json(None)}),
                    "trend": list(self._trends.get(t.name, ())),
                }
                for t in self._tags
            ],
        }

    async def poll(self) -> Any | None:
        self._tick += 1
        if self._tick % self.refresh == 0:
            self._tags = await self.deps.tags.tags(self.scope)
        changed = await self._changes()
        return {"tags": changed} if changed else None
