"""The cost of tracing: Store->response throughput with tracing off and on, same run.

"On" means what an operator turns on: ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, every span
exported over OTLP/HTTP by the batch processor, here to a local sink that accepts and
counts the export requests. "Off" is the default (no exporter: spans are no-ops, an
incoming trace context is still propagated). A third run samples 10% of the traces with
the standard ``OTEL_TRACES_SAMPLER`` variables. Each run stores new jobs in its own scope.

    python bench/bench_tracing.py [--seconds 10] [--inflight 64] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from loadgen import Call, run_load, start_runtime, wait_ready

from microdcs.app.devstack import LocalMosquitto, LocalRedis, free_port

STORE = "org.opcfoundation.ISA95-JOBCONTROL_V2.Store.v2"
ORDER = '{{"JobOrder": {{"JobOrderID": "J-{n}"}}, "Comment": []}}'
CALLS: list[Call] = [(STORE, ORDER)]
STORED = '"ReturnStatus":1'


class OtlpSink(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports (protobuf) and counts bytes; answers an empty success."""

    received = 0
    requests = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        type(self).received += length
        type(self).requests += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--json", default="bench/results/bench_tracing.json")
    args = parser.parse_args()

    sink_port = free_port()
    sink = ThreadingHTTPServer(("127.0.0.1", sink_port), OtlpSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    variants = {
        "tracing off": {},
        "tracing on (OTLP/HTTP export)": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        },
        "tracing on, 10% sampled": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
    }
    results: dict[str, dict[str, float]] = {}
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            LocalMosquitto(Path(tmp) / "broker") as broker,
            LocalRedis(Path(tmp) / "redis", appendonly=False) as redis,
        ):
            for n, (label, env) in enumerate(variants.items()):
                runtime = start_runtime(broker.port, redis.port, env)
                topic = f"app/jobs/tracing{n}/commands"
                try:
                    wait_ready(broker.port, topic, CALLS)
                    time.sleep(1.0)
                    results[label] = run_load(
                        broker.port, topic, args.seconds, args.inflight, CALLS, expect=STORED
                    )
                finally:
                    runtime.terminate()
                    runtime.wait()
    finally:
        sink.shutdown()

    off, on = results["tracing off"], results["tracing on (OTLP/HTTP export)"]
    print(f"\nStore->response, {args.inflight} in flight, {args.seconds:.0f} s each")
    print(f"{'runtime':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'fail':>6}")
    for name, r in results.items():
        print(
            f"{name:32} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {int(r['lost']):6d}"
            f" {int(r['failed']):6d}"
        )
    overhead = 1 - on["rps"] / off["rps"]
    sampled = 1 - results["tracing on, 10% sampled"]["rps"] / off["rps"]
    print(f"tracing overhead on throughput: {overhead:.1%} (all spans), {sampled:.1%} (10%)")
    print(f"OTLP sink received {OtlpSink.requests} exports, {OtlpSink.received / 1e6:.1f} MB")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {
                "inflight": args.inflight,
                "seconds": args.seconds,
                "results": results,
                "overhead": overhead,
                "overhead_sampled_10pct": sampled,
                "otlp_exports": OtlpSink.requests,
            },
            indent=2,
        )
    )
    return 0 if OtlpSink.requests > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
