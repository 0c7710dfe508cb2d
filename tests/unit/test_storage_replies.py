"""Script replies are read into typed values in one place per script."""

from __future__ import annotations

import pytest

from microdcs.jobs.changefeed import ChangeEntry, stream_reply
from microdcs.jobs.records import JobRecord, Snapshot
from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.scripts import GetJobReply, PutOrderReply, TransitionReply, responses_reply
from microdcs.jobs.states import JobState, JobStatus
from microdcs.sfc.engine.store import CasReply
from microdcs.storage.replies import number, optional_text, text

RUNNING = JobStatus(JobState.RUNNING)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, ""), (False, ""), (b"ab", "ab"), ("ab", "ab"), (3, "3")]
)
def test_text_reads_nil_as_empty(value: object, expected: str) -> None:
    assert text(value) == expected


def test_optional_text_and_number_read_nil_and_empty() -> None:
    assert optional_text(b"") is None and optional_text(None) is None
    assert optional_text(b"x") == "x"
    assert number(None) == 0 and number(b"") == 0 and number(b"7") == 7 and number(7) == 7


def test_put_order_failure_has_only_a_status() -> None:
    assert PutOrderReply.from_reply([16]) == PutOrderReply(ReturnStatus(16))
    assert PutOrderReply.from_reply([8, b"3"]).job_status is None


def test_put_order_success_carries_version_seq_recipe_and_status() -> None:
    reply = PutOrderReply.from_reply([1, 2, 5, b"schema", int(JobState.RUNNING), 0])
    assert reply == PutOrderReply(ReturnStatus.OK, 2, 5, "schema", RUNNING)


def test_transition_success_is_the_job_afterwards() -> None:
    reply = TransitionReply.from_reply(
        [1, 3, 9, int(JobState.RUNNING), 0, b"{}", b"t0", b"", b"", b"0", b""]
    )
    assert (reply.status, reply.version, reply.seq, reply.recipe) == (ReturnStatus.OK, 3, 9, "")
    assert reply.record("J") == JobRecord("J", b"{}", RUNNING, "t0", None, None, False)


def test_transition_failure_has_only_a_status() -> None:
    assert TransitionReply.from_reply([2]) == TransitionReply(ReturnStatus(2))


def test_get_job_of_an_unknown_job_is_none() -> None:
    assert GetJobReply.from_reply([]) is None


def test_get_job_reads_the_fields_and_version() -> None:
    reply = GetJobReply.from_reply(
        [b"{}", str(int(JobState.RUNNING)).encode(), None, b"t0", None, b"[]", b"1", b"4"]
    )
    assert reply is not None and reply.version == 4
    assert reply.record("J") == JobRecord("J", b"{}", RUNNING, "t0", None, b"[]", True)


def test_responses_are_records_with_a_response() -> None:
    running = str(int(JobState.RUNNING)).encode()
    flat = [b"A", b"{}", running, b"0", b"t0", b"", b""] * 2
    assert responses_reply(flat) == [JobRecord("A", b"{}", RUNNING, "t0", None, None, True)] * 2


def test_snapshot_reads_seq_last_id_and_jobs() -> None:
    running = str(int(JobState.RUNNING)).encode()
    snapshot = Snapshot.from_reply([b"7", b"1-0", b"A", running, b"0", b"1"])
    assert snapshot == Snapshot(7, "1-0", [("A", RUNNING, True)])


def test_cas_reply_says_whether_it_stored() -> None:
    assert CasReply.from_reply([1]) == CasReply(True)
    assert CasReply.from_reply([0, b"v3"]) == CasReply(False, "v3")


def test_a_stream_reply_becomes_change_entries() -> None:
    fields = [b"id", b"J", b"op", b"remove", b"v", b"2", b"st", b"2", b"sub", b"0",
              b"res", b"1", b"seq", b"12"]  # fmt: skip
    (entry,) = stream_reply([[b"stream", [[b"1700000000123-0", fields]]]])
    assert entry == ChangeEntry("1700000000123-0", "J", "remove", 12, 2, 0, True)
    assert entry.removed and entry.time == 1700000000.123
    assert stream_reply(None) == []
