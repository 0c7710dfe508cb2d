"""How a batch of a scope's changes folds into the publisher's plan, and its cursor."""

from __future__ import annotations

import pytest

from microdcs.jobs.changefeed import ChangeEntry
from microdcs.jobs.states import JobState
from microdcs.publisher import changes
from microdcs.publisher.changes import Cursor, Scope, entry_time, fold_changes, index_pause

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


# -- O(changes) per pass, and the paced index ------------------------------------------------


def test_cursor_carries_how_far_the_published_index_reflects_the_stream() -> None:
    assert Cursor.decode(Cursor("5-0", 3, 9, 7).encode()) == Cursor("5-0", 3, 9, 7)
    assert Cursor.decode("5-0 3 9") == Cursor("5-0", 3, 9, 9)  # before pacing: all indexed


def test_folding_changes_into_a_large_index_touches_only_the_changed_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scope = Scope("s", seq=10_000, cursor_seq=10_000)
    scope.index = {f"J{n}": b"{}" for n in range(10_000)}
    untouched = scope.index["J5"]
    encoded: list[str] = []

    def counting(job_id: str, path: str, has_result: bool) -> bytes:
        encoded.append(job_id)
        return job_id.encode()

    monkeypatch.setattr(changes, "index_entry", counting)
    changed = [entry(10_001, "J1"), entry(10_002, "NEW"), entry(10_003, "J2", "remove")]
    plan = fold_changes(scope, changed)
    assert encoded == ["J1", "NEW"]  # one encoding per change, none per listed job
    assert (plan.upserts, plan.removes, plan.changed) == (["J1", "NEW"], ["J2"], True)
    assert len(scope.index) == 10_000 and "J2" not in scope.index
    assert scope.index["J5"] is untouched


def test_index_pause_is_the_interval_for_small_scopes_and_bounds_entries_per_second() -> None:
    assert index_pause(100, 0.1, 20_000) == 0.1
    assert index_pause(2_000, 0.1, 20_000) == 0.1
    assert index_pause(10_000, 0.1, 20_000) == 0.5
    assert index_pause(100_000, 0.1, 20_000) == 5.0
    assert index_pause(100_000, 0.1, 0) == 0.1  # pacing off
    assert Scope("s").index_due(5.0) == 0.0  # never published: due at once
    assert Scope("s", index_at=100.0).index_due(0.5) == 100.5


def test_a_deferred_index_keeps_its_revision_and_the_next_one_covers_everything() -> None:
    scope = Scope("s", revision=4, seq=3, cursor_seq=3, indexed=3)
    plan = fold_changes(scope, [entry(4, "A"), entry(5, "B")])
    plan.defer_index()
    deferred = plan.next_cursor()
    assert deferred == Cursor("5-0", 4, 5, 3)  # jobs published, index still at seq 3
    scope.resume(deferred)
    assert scope.dirty and scope.indexed == 3
    # The next pass (a change, or none once the index is due) publishes revision 5 of all.
    plan = fold_changes(scope, [entry(6, "C")])
    assert plan.changed
    assert plan.next_cursor() == Cursor("6-0", 5, 6, 6)
    assert list(scope.index) == ["A", "B", "C"]
    # With nothing new, a still dirty scope's plan asks for the index all the same.
    scope = Scope("s", revision=4, seq=5, cursor_seq=5, indexed=3, dirty=True)
    assert fold_changes(scope, [entry(5, "B")]).changed
