"""ISA-18.2 alarm KPIs of one scope, from journal entries and current views."""

from __future__ import annotations

import pytest

from microdcs.alarms.contract import (
    AlarmKind,
    AlarmPriority,
    AlarmState,
    AlarmView,
    JournalEntry,
)
from microdcs.alarms.kpis import AlarmKpis

DAY = 86_400.0
NOW = 1_800_000_000.0  # a multiple of 600: periods align with it


def raised(alarm: str, at: float, state: AlarmState = AlarmState.UNACKNOWLEDGED) -> JournalEntry:
    return JournalEntry(
        scope="s", alarm=alarm, at=at, event="raised", state=state,
        previous=AlarmState.NORMAL, priority=AlarmPriority.HIGH,
    )  # fmt: skip


def view(alarm: str, state: AlarmState, *, condition: bool, since: float) -> AlarmView:
    return AlarmView(
        scope="s", alarm=alarm, tag="t", kind=AlarmKind.HIGH, priority=AlarmPriority.HIGH,
        state=state, message="", condition=condition, active_since=since if condition else None,
        changed_at=since, value=1.0,
    )  # fmt: skip


def test_rate_counts_annunciated_alarms_of_the_last_ten_minutes() -> None:
    kpis = AlarmKpis(DAY)
    kpis.add([raised("a", NOW - 700), raised("b", NOW - 500), raised("c", NOW - 10)])
    kpis.add([raised("d", NOW - 5, AlarmState.SHELVED)])  # not shown to anyone
    assert kpis.figures(NOW, []).rate == 2


def test_flood_is_the_share_of_ten_minute_periods_with_more_than_ten_alarms() -> None:
    kpis = AlarmKpis(DAY)
    # 11 in one period: a flood; 10 in another: not one.
    kpis.add([raised(f"f{i}", NOW - 3000 + i) for i in range(11)])
    kpis.add([raised(f"g{i}", NOW - 1200 + i) for i in range(10)])
    figures = kpis.figures(NOW, [])
    assert figures.flood_percent == pytest.approx(100 / 144)


def test_chattering_is_three_activations_within_a_minute() -> None:
    kpis = AlarmKpis(DAY)
    kpis.add([raised("chatty", NOW - 100), raised("chatty", NOW - 70), raised("chatty", NOW - 41)])
    kpis.add([raised("slow", NOW - 300), raised("slow", NOW - 200), raised("slow", NOW - 100)])
    assert kpis.figures(NOW, []).chattering == 1


def test_the_ten_most_frequent_alarms_with_their_counts() -> None:
    kpis = AlarmKpis(DAY)
    entries = [raised(f"a{n}", NOW - 5000 + n * 10 + i) for n in range(12) for i in range(n + 1)]
    kpis.add(sorted(entries, key=lambda e: e.at))
    top = kpis.figures(NOW, []).frequent
    assert len(top) == 10
    assert top[0] == ("a11", 12) and top[-1] == ("a2", 3)


def test_entries_older_than_the_window_are_forgotten() -> None:
    kpis = AlarmKpis(DAY)
    kpis.add([raised("old", NOW - DAY - 1), raised("new", NOW - 1)])
    assert kpis.figures(NOW, []).frequent == (("new", 1),)


def test_standing_stale_shelved_and_out_of_service_come_from_the_views() -> None:
    views = [
        view("standing", AlarmState.ACKNOWLEDGED, condition=True, since=NOW - DAY - 5),
        view("fresh", AlarmState.UNACKNOWLEDGED, condition=True, since=NOW - 60),
        view("stale", AlarmState.UNACKNOWLEDGED, condition=True, since=NOW - 2 * DAY),
        view("shelved", AlarmState.SHELVED, condition=False, since=NOW - 10),
        view("oos", AlarmState.OUT_OF_SERVICE, condition=False, since=NOW - 10),
    ]
    figures = AlarmKpis(DAY).figures(NOW, views)
    assert (figures.standing, figures.stale) == (2, 1)
    assert (figures.shelved, figures.out_of_service) == (1, 1)


def test_memory_is_bounded() -> None:
    kpis = AlarmKpis(DAY, max_activations=100)
    kpis.add([raised("a", NOW - 1000 + i) for i in range(500)])
    assert kpis.figures(NOW, []).frequent == (("a", 100),)


def test_a_window_shorter_than_the_rate_period_is_refused() -> None:
    with pytest.raises(ValueError):
        AlarmKpis(60.0)
