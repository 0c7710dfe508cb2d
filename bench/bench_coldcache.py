"""Why the Store path costs more CPU per request at one in flight than at 64.

At one request in flight the broker, Redis, the load generator and the kernel's TCP stack
run between two requests of the runtime, and the runtime's code then runs with cold CPU
caches; at 64 in flight it handles request after request while they stay warm. This
measures that effect without any I/O: the CPU time of one unit of the Store path's
interpreted work (decode and encode of the woodworking job status event) back to back,
after a sleep of 0.3 ms (an idle core), and after other code has touched a few MB (as
the other processes do). ``bench_jobs.py --inflight 1`` against ``--inflight 64`` shows
the same ratio for the whole path.

    python bench/bench_coldcache.py [--units 3000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from microdcs.core.contenttypes import JSON
from microdcs.jobs.states import JobState, JobStatus
from microdcs_models.machinery_jobs import ISA95JobOrderStatusEventType

ORDER = Path(__file__).parents[1] / "tests" / "data" / "models" / "woodworking_job_order.json"
POLLUTION = os.urandom(4_000_000)


def unit_of_work(raw: dict[str, object]) -> None:
    ISA95JobOrderStatusEventType.from_raw(raw).encode(JSON)


def nothing() -> None:
    return None


def sleep() -> None:
    time.sleep(0.0003)


def other_code() -> None:
    zlib.crc32(POLLUTION)
    sorted(POLLUTION[:40_000])


def cpu_per_unit(raw: dict[str, object], between: Callable[[], None], units: int) -> float:
    """CPU µs of one unit, ``between`` run before each (and not counted)."""
    spent = 0.0
    for _ in range(units):
        between()
        started = time.thread_time()
        unit_of_work(raw)
        spent += time.thread_time() - started
    return spent / units * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--json", default="bench/results/bench_coldcache.json")
    args = parser.parse_args()
    raw = {
        "JobOrder": json.loads(ORDER.read_text()),
        "JobState": JobStatus(JobState.NOT_ALLOWED_TO_START).to_wire(),
    }
    cases = {"back to back": nothing, "after a 0.3 ms sleep": sleep, "after other code": other_code}
    results = {name: cpu_per_unit(raw, between, args.units) for name, between in cases.items()}
    base = results["back to back"]
    print(f"{'one unit of the status event, run':34} {'µs CPU':>8} {'x':>6}")
    for name, micros in results.items():
        print(f"{name:34} {micros:8.1f} {micros / base:6.2f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"units": args.units, "us_cpu": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
