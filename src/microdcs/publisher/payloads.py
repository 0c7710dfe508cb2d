"""Payloads of the retained job topics (pure functions, JSON bytes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from microdcs_models.machinery_jobs import (
    CloudEventTypeInfo,
    ISA95JobOrderStatusEventType,
    JobManagementMetadata,
)

from microdcs.jobs.storage import JobRecord
from microdcs.processor import CloudEventProcessor


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One job in a scope's state index."""

    path: str
    has_result: bool


def order_payload(record: JobRecord) -> bytes:
    """``order/{id}``: the job order and its state."""
    state = orjson.dumps(record.status.to_wire())
    return b'{"JobOrder":' + record.order_json + b',"State":' + state + b"}"


def result_payload(record: JobRecord) -> bytes:
    """``result/{id}``: the job response."""
    return orjson.dumps(record.response_raw())


def index_payload(seq: int, subject: str | None, jobs: Iterable[tuple[str, IndexEntry]]) -> bytes:
    """``state-index``: every listed job's state, numbered by the scope's change counter."""
    published = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return orjson.dumps(
        {
            "seq": seq,
            "scope": subject or "",
            "published_at": published,
            "jobs": [
                {"job_order_id": job_id, "state": e.path, "has_result": e.has_result}
                for job_id, e in jobs
            ],
        }
    )


def metadata_payload(processor: CloudEventProcessor) -> bytes:
    """``metadata``: the methods the processor answers and the events it raises."""
    methods = []
    for event_type, spec in sorted(processor._mdcs_handlers.items()):
        response = spec.model.__response_type__
        methods.append(
            CloudEventTypeInfo(
                type=event_type,
                dataschema=spec.model.__ce_dataschema__,
                response_dataschema=response.__ce_dataschema__ if response else None,
            )
        )
    status = ISA95JobOrderStatusEventType
    events = [
        CloudEventTypeInfo(type=status.__ce_type__ or "", dataschema=status.__ce_dataschema__)
    ]
    return JobManagementMetadata(methods=methods, events=events).encode("application/json")
