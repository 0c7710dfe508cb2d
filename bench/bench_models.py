"""Decode + encode of the woodworking job order: our model codec vs plain mashumaro.

Run ``python bench/bench_models.py [--rounds N] [--json OUT]``. "ours" is what the runtime
does per message (``Model.decode`` with the nesting check, type and schema-constraint
validation, then ``Model.encode``); "mashumaro" is mashumaro's own ``from_dict``/``to_dict``
on the same generated classes, which checks neither types nor constraints; "plain" is
``loads`` + ``dumps`` of the payload as a dict. The variants run interleaved, round after
round, and each figure is the median over the rounds, so drift of a shared machine hits
them alike. The bar (issue 16, item 4): ours no slower than mashumaro.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import orjson

from microdcs_models.machinery_jobs import StoreRequest

ROOT = Path(__file__).parents[1]
ORDER = ROOT / "tests" / "data" / "models" / "woodworking_job_order.json"
DEFAULT_OUT = ROOT / "bench" / "results" / "bench_models.json"
JSON, MSGPACK = "application/json", "application/msgpack"


def calls_per_round(func: Callable[[], object], seconds: float) -> int:
    """How many calls take about ``seconds`` (after a warm-up)."""
    for _ in range(200):
        func()
    start = time.perf_counter_ns()
    for _ in range(200):
        func()
    return max(1, int(seconds / ((time.perf_counter_ns() - start) / 200 / 1e9)))


def interleaved_medians(
    funcs: dict[str, Callable[[], object]], rounds: int, seconds: float = 0.05
) -> dict[str, float]:
    """Median µs per call of each function, the functions taking turns every round."""
    batches = {name: calls_per_round(func, seconds) for name, func in funcs.items()}
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(rounds):
        for name, func in funcs.items():
            start = time.perf_counter_ns()
            for _ in range(batches[name]):
                func()
            samples[name].append((time.perf_counter_ns() - start) / batches[name] / 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def run(rounds: int = 21) -> dict[str, Any]:
    payload = {"JobOrder": json.loads(ORDER.read_text())}
    as_json, as_msgpack = orjson.dumps(payload), msgpack.packb(payload)
    model = StoreRequest.decode(as_json, JSON)
    assert orjson.loads(model.encode(JSON)) == payload
    assert msgpack.unpackb(StoreRequest.decode(as_msgpack, MSGPACK).encode(MSGPACK)) == payload
    assert StoreRequest.from_dict(payload) == model and model.to_jsonb() == model.encode(JSON)
    funcs: dict[str, Callable[[], object]] = {
        "ours_json_us": lambda: StoreRequest.decode(as_json, JSON).encode(JSON),
        "mashumaro_json_us": lambda: StoreRequest.from_dict(orjson.loads(as_json)).to_jsonb(),
        "plain_orjson_us": lambda: orjson.dumps(orjson.loads(as_json)),
        "ours_msgpack_us": lambda: StoreRequest.decode(as_msgpack, MSGPACK).encode(MSGPACK),
        "mashumaro_msgpack_us": lambda: StoreRequest.from_msgpack(as_msgpack).to_msgpack(),
        "plain_msgpack_us": lambda: msgpack.packb(msgpack.unpackb(as_msgpack)),
        "ours_decode_json_us": lambda: StoreRequest.decode(as_json, JSON),
        "mashumaro_decode_json_us": lambda: StoreRequest.from_dict(orjson.loads(as_json)),
        "ours_encode_json_us": lambda: model.encode(JSON),
        "mashumaro_encode_json_us": lambda: model.to_jsonb(),
    }
    timings = interleaved_medians(funcs, rounds)
    return {
        "payload": "StoreRequest with the OPC 40001-3 woodworking job order",
        "json_bytes": len(as_json),
        "msgpack_bytes": len(as_msgpack),
        "python": platform.python_version(),
        "rounds": rounds,
        **{k: round(v, 2) for k, v in timings.items()},
        "json_vs_mashumaro": round(timings["ours_json_us"] / timings["mashumaro_json_us"], 3),
        "msgpack_vs_mashumaro": round(
            timings["ours_msgpack_us"] / timings["mashumaro_msgpack_us"], 3
        ),
        "json_vs_plain": round(timings["ours_json_us"] / timings["plain_orjson_us"], 2),
        "msgpack_vs_plain": round(timings["ours_msgpack_us"] / timings["plain_msgpack_us"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds (median)")
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT, help="where to write results")
    args = parser.parse_args()
    result = run(args.rounds)
    print(f"payload: {result['payload']} ({result['json_bytes']} B JSON)")
    print(f"medians of {result['rounds']} interleaved rounds, µs per call")
    print(f"{'':<22}{'ours':>8}{'mashumaro':>11}{'plain':>8}{'ours/mash':>11}")
    for name, key in (("JSON decode+encode", "json"), ("msgpack decode+encode", "msgpack")):
        plain = result["plain_orjson_us" if key == "json" else "plain_msgpack_us"]
        print(
            f"{name:<22}{result[f'ours_{key}_us']:>8.1f}{result[f'mashumaro_{key}_us']:>11.1f}"
            f"{plain:>8.1f}{result[f'{key}_vs_mashumaro']:>10.2f}x"
        )
    for part in ("decode", "encode"):
        ours, mash = result[f"ours_{part}_json_us"], result[f"mashumaro_{part}_json_us"]
        print(f"{'JSON ' + part:<22}{ours:>8.1f}{mash:>11.1f}{'':>8}{ours / mash:>10.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
