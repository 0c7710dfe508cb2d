"""Pure parts of the station dispatcher: how an order is ranked, how a decision's reply
is read."""

from __future__ import annotations

from microdcs.jobs.dispatcher import DispatchReply
from microdcs.jobs.ranking import DEFAULT_PRIORITY, rank, start_time_ms
from microdcs.jobs.states import JobState, JobStatus
from microdcs_models.machinery_jobs import ISA95JobOrderDataType


def order(**fields: object) -> ISA95JobOrderDataType:
    return ISA95JobOrderDataType.from_raw({"JobOrderID": "J1", **fields})


def test_an_order_without_priority_or_start_time_ranks_as_priority_0_unplanned() -> None:
    assert rank(order()) == (DEFAULT_PRIORITY, 0)


def test_start_time_in_utc_milliseconds_with_or_without_offset() -> None:
    assert start_time_ms("1970-01-01T00:00:01.5Z") == 1500
    assert start_time_ms("1970-01-01T01:00:01+01:00") == 1000
    assert start_time_ms("1970-01-01T00:00:02") == 2000  # no offset: UTC


def test_an_unreadable_or_pre_epoch_start_time_does_not_hold_the_job_back() -> None:
    assert start_time_ms("tomorrow") == 0
    assert start_time_ms("1960-01-01T00:00:00Z") == 0
    assert start_time_ms(None) == 0


def test_priority_and_start_time_of_an_order() -> None:
    assert rank(order(Priority=-3, StartTime="1970-01-01T00:00:03Z")) == (-3, 3000)


def test_dispatch_reply_reads_moves_and_the_next_due_time() -> None:
    start = [b"start", b"J1", b'{"JobOrderID":"J1"}', b"3", b"0", b"2026-01-01T00:00:00.000Z",
             b"", b"", b"1", b"4", 17, b""]  # fmt: skip
    waiting = [b"sub", b"J2", b'{"JobOrderID":"J2"}', b"2", b"1", b"", b"", b"", b"0", b"2",
               18, b"https://x/recipe"]  # fmt: skip
    reply = DispatchReply.from_reply([1700000000123, *start, *waiting])
    assert reply.next_due_ms == 1700000000123
    assert [(m.kind, m.job_id) for m in reply.moves] == [("start", "J1"), ("sub", "J2")]
    first, second = (m.change for m in reply.moves)
    assert first.record is not None and first.record.status == JobStatus(JobState.RUNNING)
    assert first.record.started == "2026-01-01T00:00:00.000Z" and first.record.has_response
    assert (first.version, first.seq) == (4, 17)
    assert second.record is not None
    assert second.record.status == JobStatus(JobState.ALLOWED_TO_START, 1)
    assert second.recipe == "https://x/recipe"


def test_dispatch_reply_without_anything_due() -> None:
    assert DispatchReply.from_reply([-1]) == DispatchReply(None, [])
