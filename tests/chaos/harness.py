"""Pieces of the fault suite: runtime replicas as real processes, RSS sampling, the report.

A replica is ``python -m microdcs.app.cli run`` configured only by ``APP_*`` variables, as in
production, so SIGKILL hits a real process and a restart reads its session back from the
broker. Every scenario files one :class:`Outcome`; the session writes them all to
``bench/results/chaos.json`` and prints them as a table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from microdcs.app.config import AppConfig, MqttConfig, RpcConfig, to_environment
from microdcs.app.devstack import LocalRedisCluster
from tests.conftest import redis_config

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results" / "chaos.json"


def chaos_seconds() -> float:
    """Length of each loaded phase: ``CHAOS_SECONDS`` (``make chaos``), else a few seconds."""
    return float(os.environ.get("CHAOS_SECONDS", "4"))


def long_run() -> bool:
    return "CHAOS_SECONDS" in os.environ


def replica_config(
    broker: int, redis: int | LocalRedisCluster, tag: str, n: int, **overrides: Any
) -> AppConfig:
    """One replica of a scenario's group: shared key prefix, topics and subscription.
    ``redis`` is a server's port or a cluster (then in mode cluster, its nodes the seeds)."""
    config = AppConfig(
        instance_id=f"chaos-{tag}-{n}",
        jobs_prefix=f"chaos{tag}/jobs",
        greeting_enabled=True,
        greeting_prefix=f"chaos{tag}/greeting",
        equipment_prefix=f"chaos{tag}/equipment",
        shutdown_grace=5.0,
        storage_retry_seconds=30.0,
        log_level="WARNING",
        http_port=0,
        # The MES of the suite stores thousands of jobs in one scope, more than the job
        # list limit of a scope the MES did not configure.
        jobs_max_downloadable=0,
        mqtt=MqttConfig(
            hostname="127.0.0.1",
            port=broker,
            shared_subscription=f"chaos{tag}",
            response_topic_base=f"chaos{tag}/responses",
            end_session_on_shutdown=False,
        ),
        redis=redis_config(redis, key_prefix=f"chaos{tag}"),
        rpc=RpcConfig(enabled=False),
    )
    return replace(config, **overrides) if overrides else config


class Replica:
    """A runtime process that can be SIGKILLed and started again with the same identity."""

    def __init__(self, config: AppConfig, logdir: Path) -> None:
        self.config = config
        self.log_path = logdir / f"{config.instance_id}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.update(to_environment(self.config))
        env["PYTHONPATH"] = str(REPO)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "microdcs.app.cli", "run"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no DISCONNECT, the broker keeps the session."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def first_errors(self, count: int = 3) -> list[str]:
        """The first ERROR lines of the log (the cause, before the consequences)."""
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line[:300] for line in lines if " ERROR " in line][:count]

    def tracebacks(self) -> int:
        if not self.log_path.exists():
            return 0
        return self.log_path.read_text(errors="replace").count("Traceback")


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (psutil when installed, else /proc)."""
    try:
        import psutil  # type: ignore[import-untyped]

        return float(psutil.Process(pid).memory_info().rss) / 1e6
    except ImportError:
        pass
    except Exception:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return 0.0


class RssSampler:
    """Samples the RSS of some processes every ``period`` seconds in the event loop."""

    def __init__(self, pids: dict[str, int], period: float = 0.2) -> None:
        self.pids = pids
        self.period = period
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.period)

    def sample(self) -> None:
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], rss_mb(pid))

    async def __aenter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.sample()


async def wait_answering(port: int, topic: str, within: float = 30.0) -> float:
    """Until a Store on ``topic`` is answered Good; returns the seconds it took."""
    from tests.chaos.mesload import OK, MesLoad

    started = time.monotonic()
    async with MesLoad(port, topic) as mes:
        deadline = started + within
        while time.monotonic() < deadline:
            request = mes.send()
            answer_by = time.monotonic() + 1.0
            while time.monotonic() < answer_by and not request.answered:
                await asyncio.sleep(0.01)
            if request.status == OK:
                return time.monotonic() - started
        raise AssertionError(f"no Store on {topic} answered Good within {within} s")


@dataclass
class Outcome:
    """What one scenario found; ``lost`` (acknowledged but unreadable) must be 0."""

    scenario: str
    seconds: float
    lost: int = 0
    duplicates: int = 0
    recovery_seconds: float | None = None
    peak_rss_mb: float = 0.0
    alive: bool = True
    details: dict[str, Any] = field(default_factory=dict)


def new_tag() -> str:
    return uuid.uuid4().hex[:6]


def write_results(outcomes: list[Outcome]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "command": "make chaos" if long_run() else "pytest tests/chaos",
        "chaos_seconds": chaos_seconds(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scenarios": [asdict(o) for o in outcomes],
    }
    RESULTS.write_text(json.dumps(document, indent=2, default=str) + "\n")


def table(outcomes: list[Outcome]) -> str:
    header = f"{'scenario':<22}{'lost':>6}{'dups':>6}{'recovery s':>12}{'peak RSS MB':>13}  alive"
    rows = [header, "-" * len(header)]
    for o in outcomes:
        recovery = "-" if o.recovery_seconds is None else f"{o.recovery_seconds:.2f}"
        rows.append(
            f"{o.scenario:<22}{o.lost:>6}{o.duplicates:>6}{recovery:>12}"
            f"{o.peak_rss_mb:>13.1f}  {'yes' if o.alive else 'NO'}"
        )
    return "\n".join(rows)
