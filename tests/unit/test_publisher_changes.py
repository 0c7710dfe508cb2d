"""How a batch of a scope's changes folds into the publisher's plan, and its cursor."""

from __future__ import annotations

from microdcs.jobs.changefeed import ChangeEntry
from microdcs.jobs.states import JobState
from microdcs.publisher.changes import Cursor, Scope, entry_time, fold_changes

RUNNING = int(JobState.RUNNING)


def entry(n: int, job_id: str, op: str = "upsert") -> ChangeEntry:
    return ChangeEntry(f"{n}-0", job_id, op, n, RUNNING, 0, False)


def test_cursor_round_trips_and_reads_the_old_two_part_form() -> None:
    assert Cursor.decode(Cursor("5-0", 3, 9).encode()) == Cursor("5-0", 3, 9)
    assert Cursor.decode("5-0 4") == Cursor("5-0", 4, 4)


def test_the_last_change_of_a_job_decides_upsert_or_remove() -> None:
    plan = fold_changes(Scope("s"), [entry(1, "A"), entry(2, "B"), entry(3, "A", "remove")])
    assert (plan.upserts, plan.removes) == (["B"], ["A"])
    assert (plan.cursor, plan.cursor_seq, plan.changed) == ("3-0", 3, True)
    assert list(plan.scope.index) == ["B"]


def test_changes_the_index_already_reflects_change_nothing() -> None:
    scope = Scope("s", seq=5)
    plan = fold_changes(scope, [entry(4, "A")])
    assert not plan.changed and plan.upserts == ["A"] and scope.index == {}


def test_the_next_cursor_counts_a_revision_only_when_the_index_changed() -> None:
    scope = Scope("s", revision=7)
    assert fold_changes(scope, [entry(1, "A")]).next_cursor() == Cursor("1-0", 8, 1)
    assert fold_changes(scope, [entry(1, "A")]).next_cursor() == Cursor("1-0", 7, 1)


def test_entry_time_is_the_milliseconds_of_the_stream_id() -> None:
    assert entry_time("1700000000123-4") == 1700000000.123
