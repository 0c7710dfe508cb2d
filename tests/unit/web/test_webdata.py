"""The adapters behind the pages, from plain stored values: what the chart is told of an
execution, and a job's table row from its stored record."""

from __future__ import annotations

import orjson

from microdcs.app.wiring.webdata import job_row, recipe_progress
from microdcs.jobs.records import JobRecord
from microdcs.jobs.states import JobState, JobStatus
from microdcs.sfc.state import ActionRun, Execution, ExecutionStatus, RunStatus, Timer, TimerKind


def test_the_chart_gets_active_steps_visits_timers_and_runs_of_an_execution() -> None:
    run = ActionRun("Heat/heat", "heat", "Heat", 1, RunStatus.WAITING, "c-1")
    execution = Execution(
        job_id="J1",
        status=ExecutionStatus.RUNNING,
        version=7,
        active=("Heat",),
        runs={run.key: run},
        timers={"t": Timer("t", TimerKind.DELAY, "Heat/heat", 105.0)},
        history=(("step", "Load", 1, 100.0, 101.0), ("action", "load", "Load", "completed", 101.0),
                 ("step", "Heat", 1, 101.0, None)),
    )  # fmt: skip
    progress = recipe_progress(execution).to_json()
    assert progress["status"] == "running" and progress["version"] == 7
    assert progress["active"] == ["Heat"]
    assert progress["visits"] == [
        {"step": "Load", "activation": 1, "entered": 100.0, "left": 101.0},
        {"step": "Heat", "activation": 1, "entered": 101.0, "left": None},
    ]
    assert progress["timers"] == [{"kind": "delay", "step": "Heat", "action": "heat",
                                   "due": 105.0, "remaining": None}]  # fmt: skip
    assert progress["runs"] == [{"step": "Heat", "action": "heat", "status": "waiting"}]


def test_a_job_row_names_its_work_masters_and_times() -> None:
    order = {"JobOrderID": "J1", "WorkMasterID": [{"ID": "WM-A"}, {"ID": "WM-B"}]}
    record = JobRecord("J1", orjson.dumps(order), JobStatus(JobState.ENDED, 1),
                       "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", None, True)  # fmt: skip
    row = job_row(record).to_json()
    assert row == {"id": "J1", "workMaster": "WM-A, WM-B", "state": "Ended",
                   "substate": "Completed", "start": "2026-01-01T00:00:00Z",
                   "end": "2026-01-01T00:01:00Z", "hasResult": True}  # fmt: skip
