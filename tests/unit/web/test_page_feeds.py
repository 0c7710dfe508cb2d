"""What the page feeds send, from plain fakes of the ports: the alarm list's order, the
job table's changed and removed rows, the tag trend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from microdcs.alarms.contract import AlarmKind, AlarmPriority, AlarmState, AlarmView
from microdcs.jobs.contract import JobState, JobStatus
from microdcs.plantdata.contract import Quality, TagSample
from microdcs.web.live import LiveHub
from microdcs.web.pages.deps import PageDeps
from microdcs.web.pages.feeds import JobsFeed, TagsFeed, listed_alarms
from microdcs.web.ports import JobChanges, JobList, JobRow, TagInfo


def alarm(name: str, priority: AlarmPriority, state: AlarmState, since: float) -> AlarmView:
    return AlarmView("s", name, "T", AlarmKind.HIGH, priority, state, "", True, since, since, 1)


def test_the_alarm_list_hides_normal_alarms_and_puts_priority_then_the_newest_first() -> None:
    views = [
        alarm("low-new", AlarmPriority.LOW, AlarmState.UNACKNOWLEDGED, 30),
        alarm("high-old", AlarmPriority.HIGH, AlarmState.ACKNOWLEDGED, 10),
        alarm("high-new", AlarmPriority.HIGH, AlarmState.UNACKNOWLEDGED, 20),
        alarm("quiet", AlarmPriority.CRITICAL, AlarmState.NORMAL, 40),
        alarm("critical", AlarmPriority.CRITICAL, AlarmState.SHELVED, 5),
    ]
    assert [v.alarm for v in listed_alarms(views)] == [
        "critical", "high-new", "high-old", "low-new"
    ]  # fmt: skip


class FakeJobs:
    def __init__(self) -> None:
        self.listed: dict[str, JobRow] = {}
        self.pending = JobChanges("1")

    async def jobs(self, scope: str) -> JobList:
        return JobList(list(self.listed.values()), "1")

    async def changed(self, scope: str, after: str, *, limit: int = 1000) -> JobChanges:
        changes, self.pending = self.pending, JobChanges(self.pending.cursor)
        return changes

    async def rows(self, scope: str, job_ids: Sequence[str]) -> Sequence[JobRow]:
        return [self.listed[i] for i in job_ids if i in self.listed]


class FakeTags:
    def __init__(self) -> None:
        self.value = 1.0

    async def tags(self, scope: str) -> Sequence[TagInfo]:
        return [TagInfo("TI", "degC")]

    async def read(self, scope: str, tags: Sequence[str]) -> Mapping[str, TagSample]:
        return {"TI": TagSample("TI", self.value, Quality.GOOD, self.value, self.value)}


def deps(**ports: Any) -> PageDeps:
    fields: dict[str, Any] = {"jobs": None, "alarms": None, "tags": None, "tag_reader": None,
                              "replicas": None, "hub": LiveHub(), "trend_points": 3}  # fmt: skip
    fields.update(ports)
    return PageDeps(**fields)


async def test_the_job_table_gets_changed_rows_and_the_ids_of_jobs_that_left() -> None:
    jobs = FakeJobs()
    feed = JobsFeed(deps(jobs=jobs), "s")
    await feed.start()
    assert await feed.poll() is None
    jobs.listed["A"] = JobRow("A", "WM", JobStatus(JobState.RUNNING))
    jobs.pending = JobChanges("2", frozenset({"A", "B"}), frozenset({"C"}))
    update = await feed.poll()
    assert update is not None
    assert [r["id"] for r in update["rows"]] == ["A"] and update["rows"][0]["state"] == "Running"
    assert update["removed"] == ["B", "C"]


async def test_the_snapshot_has_the_trend_of_the_last_values_and_updates_only_new_values() -> None:
    tags = FakeTags()
    feed = TagsFeed(deps(tags=tags, tag_reader=tags), "s")
    await feed.start()
    assert await feed.poll() is None
    sent = []
    for value in (2.0, 3.0, 4.0):
        tags.value = value
        sent.append(await feed.poll())
    assert sent[-1] == {"tags": [{"tag": "TI", "value": 4.0, "quality": "good", "stale": False,
                                  "time": 4.0}]}  # fmt: skip
    snapshot = await feed.snapshot()
    assert snapshot["points"] == 3
    assert snapshot["tags"][0]["trend"] == [2.0, 3.0, 4.0]
