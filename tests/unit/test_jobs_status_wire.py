"""The job status event sent from its stored wire form is byte for byte what the model
would encode (the processor publishes the stored record without rebuilding the model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack
import orjson
import pytest

from microdcs.core.contenttypes import JSON, MSGPACK
from microdcs.jobs.records import JobRecord
from microdcs.jobs.states import SUBSTATES, JobState, JobStatus
from microdcs_models.machinery_jobs import ISA95JobOrderStatusEventType

ORDER = Path(__file__).parents[1] / "data" / "models" / "woodworking_job_order.json"
STATUSES = [JobStatus(state) for state in JobState] + [
    JobStatus(state, sub) for state, subs in SUBSTATES.items() for sub in subs
]


def status_wire(record: JobRecord) -> dict[str, Any]:
    """The wire form the processor builds for the status event of a stored job."""
    raw: dict[str, Any] = {"JobOrder": record.order_raw(), "JobState": record.status.to_wire()}
    if record.has_response:
        raw["JobResponse"] = record.response_raw()
    return raw


@pytest.mark.parametrize("status", STATUSES, ids=lambda s: s.path)
@pytest.mark.parametrize("ended", [False, True], ids=["open", "with result"])
def test_the_stored_wire_form_encodes_as_the_model_does(status: JobStatus, ended: bool) -> None:
    stored = ISA95JobOrderStatusEventType.from_raw(
        {"JobOrder": json.loads(ORDER.read_text()), "JobState": JobStatus(JobState(1)).to_wire()}
    ).to_raw()["JobOrder"]
    record = JobRecord(
        stored["JobOrderID"],
        orjson.dumps(stored),  # as the Store stores the decoded order
        status,
        started="2026-12-04T06:00:00.000Z" if ended else None,
        ended="2026-12-04T06:05:00.000Z" if ended else None,
        response_data=orjson.dumps([{"ID": "JobResult", "Value": 1}]) if ended else None,
        has_response=ended,
    )
    wire = status_wire(record)
    model = ISA95JobOrderStatusEventType.from_raw(wire)
    assert orjson.dumps(wire) == model.encode(JSON)
    assert msgpack.packb(wire) == model.encode(MSGPACK)
