"""`make run` runs `microdcs demo`: servers, runtime and demo client start; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _children(pid: int) -> set[int]:
    """Descendant pids of ``pid`` (from /proc, no extra dependency)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _demo_until(workdir: Path, wanted: str) -> str:
    """Run ``microdcs demo`` until a line containing ``wanted``, then press Ctrl-C.

    Checks that everything stops cleanly; returns the whole output.
    """
    demo = subprocess.Popen(
        [sys.executable, "-m", "microdcs.app.cli", "demo", "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, like a terminal's job
    )
    assert demo.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        lines.append(line)
        if wanted in line:
            break
    else:
        demo.kill()
        raise AssertionError(f"no {wanted!r} in the demo output:\n" + "".join(lines))
    spawned = _children(demo.pid)
    assert spawned, "the demo started no servers"
    os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
    out, _ = demo.communicate(timeout=40)
    assert demo.returncode == 0, "".join(lines) + out
    assert "[demo] stopped" in out
    assert "Traceback" not in out, out
    still_running = {pid for pid in spawned if Path(f"/proc/{pid}").exists()}
    assert not still_running, f"left behind: {still_running}"
    return "".join(lines) + out


def test_demo_serves_the_mes_client_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    _demo_until(tmp_path / "run", "[mes]")


def test_a_second_demo_on_the_kept_data_runs_new_jobs_to_the_end(tmp_path: Path) -> None:
    """`make run` keeps Redis data: a second run must not reuse the first run's job ids."""
    first = _demo_until(tmp_path / "run", "Ended/Completed")
    second = _demo_until(tmp_path / "run", "Ended/Completed")
    assert "ReturnStatus 16" not in second, second  # UnableToAcceptJobOrder: id taken
    ended = {line.split(":")[0] for line in second.splitlines() if "Ended/Completed" in line}
    assert ended
    assert not ended & {line.split(":")[0] for line in first.splitlines()}


def test_the_demo_prints_each_step_of_a_job_as_it_happens(tmp_path: Path) -> None:
    out = _demo_until(tmp_path / "run", "Ended/Completed").splitlines()
    job = next(line for line in out if "Ended/Completed" in line).split(":")[0].split()[-1]
    entered = [i for i, line in enumerate(out) if f"job {job}: step" in line and "entered" in line]
    ended = next(i for i, line in enumerate(out) if "Ended/Completed" in line)
    assert len(entered) >= 2 and entered[-1] < ended, "\n".join(out)


def test_the_demo_dryer_goes_into_alarm(tmp_path: Path) -> None:
    out = _demo_until(tmp_path / "run", "[alarm] dryer.temp.H raised")
    assert "-> unacknowledged (high" in out, out
