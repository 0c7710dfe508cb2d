"""Fixtures of the fault suite: a broker with persistence and a Redis with AOF per test
(the scenarios kill them), and the session's report (table + bench/results/chaos.json)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from microdcs.app.devstack import LocalMosquitto, LocalRedis
from tests.chaos.harness import Outcome, table, write_results

_outcomes: list[Outcome] = []


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalMosquitto]:
    with LocalMosquitto(tmp_path / "mosquitto") as server:
        yield server


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[LocalRedis]:
    with LocalRedis(tmp_path / "redis", appendonly=True, appendfsync="always") as server:
        yield server


@pytest.fixture
def report() -> Iterator[list[Outcome]]:
    """Where a scenario files its outcome; written out even when its assertions fail."""
    mine: list[Outcome] = []
    yield mine
    _outcomes.extend(mine)
    write_results(_outcomes)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _outcomes:
        terminalreporter.section("fault suite (bench/results/chaos.json)")
        terminalreporter.write_line(table(_outcomes))
