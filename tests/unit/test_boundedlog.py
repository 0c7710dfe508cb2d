"""Rejection logs stay bounded whatever a client sends."""

from __future__ import annotations

import logging

import pytest

from microdcs.core.boundedlog import RateLimitedLog, clip


def test_clip_keeps_short_values_and_says_how_long_long_ones_were() -> None:
    assert clip("short") == "short"
    clipped = clip("t" * 10_000, 50)
    assert clipped.startswith("t" * 50) and "10000 chars" in clipped and len(clipped) < 80


def test_burst_then_suppressed_then_summary(caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(logging.getLogger("t"), burst=3, period=0.0001)
    caplog.set_level(logging.INFO)
    bounded = RateLimitedLog(logging.getLogger("t"), burst=3, period=3600)
    for n in range(100):
        bounded.log(logging.WARNING, "kind", "bad %s", "x" * 500 + str(n))
    assert len(caplog.records) == 3
    assert all(len(r.getMessage()) < 300 for r in caplog.records)
    caplog.clear()
    for _ in range(5):
        log.log(logging.WARNING, "k", "line %d", 1)
    assert caplog.records  # a new window each time: nothing lost when the rate is low


def test_keys_have_separate_budgets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    log = RateLimitedLog(logging.getLogger("t"), burst=1, period=3600)
    log.log(logging.WARNING, "a", "a")
    log.log(logging.WARNING, "a", "a")
    log.log(logging.WARNING, "b", "b")
    assert [r.getMessage() for r in caplog.records] == ["a", "b"]
