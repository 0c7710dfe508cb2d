"""Decode + encode of the woodworking job order: our model codec vs plain mashumaro.

Run ``python bench/bench_models.py [--rounds N] [--json OUT]``. "ours" is what the runtime
does per message (``Model.decode`` with the nesting check, type and schema-constraint
validation, then ``Model.encode``); "mashumaro" is mashumaro's own ``from_dict``/``to_dict``
on the same generated classes, which checks neither types nor constraints; "plain" is
``loads`` + ``dumps`` of the payload as a dict. The variants run interleaved, round after
round, and each figure is the median over the rounds, so drift of a shared machine hits
them alike. The bar (issue 16, item 4): ours no slower than mashumaro.

The second table is what the JSON Schema constraints cost (issue 20, item 3): the model of
``tests/data/models/constraints.schema.json`` (one property per keyword) generated twice,
as it is and with every validation keyword stripped from the schema, and a valid payload
decoded by each; the difference is the price of the checks per decode.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import orjson

from microdcs.codegen import render_module
from microdcs.models import Model
from microdcs_models.machinery_jobs import StoreRequest

ROOT = Path(__file__).parents[1]
ORDER = ROOT / "tests" / "data" / "models" / "woodworking_job_order.json"
DEFAULT_OUT = ROOT / "bench" / "results" / "bench_models.json"
JSON, MSGPACK = "application/json", "application/msgpack"
CONSTRAINTS = ROOT / "tests" / "data" / "models" / "constraints.schema.json"
#: A payload that passes every constraint of that schema.
CONSTRAINED_PAYLOAD: dict[str, Any] = {
    "RampSeconds": 30, "Gain": 2.5, "Label": "drum", "Code": "AB12", "Tags": ["a", "b"],
    "Kind": "drum", "Version": 2, "At": "2024-08-15T06:00:00.250+02:00",
    "Id": "123e4567-e89b-12d3-a456-426614174000", "Limit": None, "Stages": [{"Speed": 3}],
}  # fmt: skip
VALIDATION_KEYWORDS = frozenset({
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "pattern", "minItems", "maxItems", "const", "format",
})  # fmt: skip


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


def _strip(schema: Any, keywords: frozenset[str]) -> Any:
    if isinstance(schema, dict):
        return {k: _strip(v, keywords) for k, v in schema.items() if k not in keywords}
    if isinstance(schema, list):
        return [_strip(v, keywords) for v in schema]
    return schema


def _drum_model(schema: dict[str, Any], name: str, directory: Path) -> type[Model]:
    """The ``DrumConfig`` model generated from ``schema`` (imported from ``directory``)."""
    path = directory / f"{name}.py"
    path.write_text(render_module(json.dumps(schema), CONSTRAINTS.name))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    model: type[Model] = module.DrumConfig
    return model


def constraint_cost(rounds: int) -> dict[str, float]:
    """Decode of the constraints model with its checks, without any, and without the
    ``format`` checks only (date-time and uuid parse their strings)."""
    schema = json.loads(CONSTRAINTS.read_text())
    data = orjson.dumps(CONSTRAINED_PAYLOAD)
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "constrained_decode_us": _drum_model(schema, "bench_constrained", Path(tmp)),
            "no_format_decode_us": _drum_model(
                _strip(schema, frozenset({"format"})), "bench_no_format", Path(tmp)
            ),
            "unconstrained_decode_us": _drum_model(
                _strip(schema, VALIDATION_KEYWORDS), "bench_unconstrained", Path(tmp)
            ),
        }
    for model in models.values():
        model.decode(data, JSON)  # each accepts the payload
    funcs: dict[str, Callable[[], object]] = {
        name: (lambda m=model: m.decode(data, JSON)) for name, model in models.items()
    }
    timings = interleaved_medians(funcs, rounds)
    return {k: round(v, 2) for k, v in timings.items()}


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
    cost = constraint_cost(args.rounds)
    result["constraints"] = cost
    with_checks, without = cost["constrained_decode_us"], cost["unconstrained_decode_us"]
    keywords = len(VALIDATION_KEYWORDS)
    print(f"\nschema constraints ({CONSTRAINTS.name}, {keywords} keywords), µs per JSON decode")
    print(f"{'with every check':<28}{with_checks:>8.2f}")
    print(f"{'without format checks':<28}{cost['no_format_decode_us']:>8.2f}")
    print(f"{'without any check':<28}{without:>8.2f}")
    share = with_checks / without - 1
    print(f"{'cost of the checks':<28}{with_checks - without:>8.2f} ({share:+.0%})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
