"""Decode + encode of the woodworking job order: generated model vs plain orjson/msgpack.

Run ``python bench/bench_models.py [--json OUT]``. The model figures include validation;
the plain figures are ``loads`` + ``dumps`` of the same payload as a dict, in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
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


def per_call_us(func: Callable[[], object], seconds: float = 2.0) -> float:
    """Best of five rounds (µs per call); each round runs about ``seconds / 5``."""
    for _ in range(200):
        func()
    start = time.perf_counter_ns()
    for _ in range(200):
        func()
    batch = max(1, int(seconds / 5 / ((time.perf_counter_ns() - start) / 200 / 1e9)))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(batch):
            func()
        best = min(best, (time.perf_counter_ns() - start) / batch / 1000)
    return best


def run() -> dict[str, Any]:
    payload = {"JobOrder": json.loads(ORDER.read_text())}
    as_json, as_msgpack = orjson.dumps(payload), msgpack.packb(payload)
    assert orjson.loads(StoreRequest.decode(as_json, JSON).encode(JSON)) == payload
    assert msgpack.unpackb(StoreRequest.decode(as_msgpack, MSGPACK).encode(MSGPACK)) == payload
    timings = {
        "model_json_us": per_call_us(lambda: StoreRequest.decode(as_json, JSON).encode(JSON)),
        "plain_orjson_us": per_call_us(lambda: orjson.dumps(orjson.loads(as_json))),
        "model_msgpack_us": per_call_us(
            lambda: StoreRequest.decode(as_msgpack, MSGPACK).encode(MSGPACK)
        ),
        "plain_msgpack_us": per_call_us(lambda: msgpack.packb(msgpack.unpackb(as_msgpack))),
        # For reference: mashumaro's own from_dict/to_jsonb (no type checks).
        "mashumaro_json_us": per_call_us(
            lambda: StoreRequest.from_dict(orjson.loads(as_json)).to_jsonb()
        ),
    }
    return {
        "payload": "StoreRequest with the OPC 40001-3 woodworking job order",
        "json_bytes": len(as_json),
        "msgpack_bytes": len(as_msgpack),
        "python": platform.python_version(),
        **{k: round(v, 2) for k, v in timings.items()},
        "json_ratio": round(timings["model_json_us"] / timings["plain_orjson_us"], 2),
        "msgpack_ratio": round(timings["model_msgpack_us"] / timings["plain_msgpack_us"], 2),
        "target_ratio": 2.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT, help="where to write results")
    args = parser.parse_args()
    result = run()
    print(f"payload: {result['payload']} ({result['json_bytes']} B JSON)")
    print(f"{'decode+encode':<16}{'model µs':>10}{'plain µs':>10}{'ratio':>8}")
    for name, model, plain, ratio in (
        ("JSON", "model_json_us", "plain_orjson_us", "json_ratio"),
        ("msgpack", "model_msgpack_us", "plain_msgpack_us", "msgpack_ratio"),
    ):
        print(f"{name:<16}{result[model]:>10.1f}{result[plain]:>10.1f}{result[ratio]:>7.2f}x")
    print(f"(mashumaro from_dict + to_jsonb, unvalidated: {result['mashumaro_json_us']:.1f} µs)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
