"""Payloads of the retained job topics (pure functions, JSON bytes)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

from microdcs.publisher.ports import ListedJob


def index_entry(job_id: str, path: str, has_result: bool) -> bytes:
    """One job of a ``state-index``, encoded once per change of the job.

    The index is the concatenation of these fragments, so republishing a scope with many
    jobs costs a join, not a re-encoding of every entry.

    The fragment is kept for as long as the job is listed, so it is copied to its own
    size: ``orjson.dumps`` hands out its 4 KiB working buffer as the bytes object (a
    98-byte entry held 4 KiB of heap; 40,000 listed jobs took 160 MB).
    """
    encoded = orjson.dumps({"job_order_id": job_id, "state": path, "has_result": has_result})
    return memoryview(encoded).tobytes()


def order_payload(record: ListedJob) -> bytes:
    """``order/{id}``: the job order and its state."""
    state = orjson.dumps(record.status.to_wire())
    return b'{"JobOrder":' + record.order_json + b',"State":' + state + b"}"


def result_payload(record: ListedJob) -> bytes:
    """``result/{id}``: the job response."""
    return orjson.dumps(record.response_raw())


def index_payload(revision: int, subject: str | None, entries: Iterable[bytes]) -> bytes:
    """``state-index``: every listed job's state (:func:`index_entry` fragments).

    ``seq`` is the index revision: one more than the previously published index of the
    scope, so an MES sees a lost publication as a gap.
    """
    published = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    head = orjson.dumps({"seq": revision, "scope": subject or "", "published_at": published})
    return head[:-1] + b',"jobs":[' + b",".join(entries) + b"]}"
