"""MessagePack-RPC ``publish`` round trips on the greeting echo processor.

The server (the RPC handler bound to the greeting processor, no Redis) runs in its own
process, so on a 2-core machine it and the load generator each get a core. Measures:

- 1 client, one call at a time (latency-bound);
- 8 clients x 16 calls in flight each (throughput);
- server memory per idle connection (RSS delta over 500 connections / 500).

Traffic goes to 127.0.0.1 only; the whole run takes well under a minute.

    python bench/bench_rpc.py [--seconds 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import msgpack

from microdcs.app.config import AppConfig, RpcConfig
from microdcs.examples.greeting import GREETING_TYPE, GreetingProcessor
from microdcs.transports.msgpack_rpc import MessagePackRpcClient, MessagePackRpcHandler
from microdcs.transports.replica import ReplicaOptions

RESULTS = Path(__file__).resolve().parent / "results" / "bench_rpc.json"
IDLE_CONNECTIONS = 500


# -- server process ---------------------------------------------------------------------
async def serve() -> None:
    """Run the RPC handler until stdin closes; print the bound port first."""
    logging.basicConfig(level=logging.WARNING)
    config = AppConfig(
        instance_id="bench-rpc",
        rpc=RpcConfig(
            enabled=True, host="127.0.0.1", port=0, max_connections=IDLE_CONNECTIONS + 64
        ),
        shutdown_grace=1.0,
    )
    replica = ReplicaOptions(
        instance_id=config.resolved_instance_id,
        source=config.resolved_source,
        shutdown_grace=config.shutdown_grace,
    )
    handler = MessagePackRpcHandler(config.rpc, replica)
    handler.bind(GreetingProcessor(source="microdcs/bench"))
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: shutdown.set() if not sys.stdin.read(1) else None)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(handler.run(shutdown))
        await handler.wait_ready()
        print(handler.port, flush=True)


# -- load generator ---------------------------------------------------------------------
def event(n: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{uuid.uuid4().hex[:8]}-{n}",
        "source": "bench/sidecar",
        "type": GREETING_TYPE,
        "datacontenttype": "application/json",
        "data": {"name": f"n{n}"},
    }


async def drive(port: int, clients: int, inflight: int, seconds: float) -> dict[str, float]:
    """Calls per second and latency percentiles with ``clients`` x ``inflight`` loops."""
    latencies: list[float] = []
    errors = 0
    stop_at = 0.0

    async def loop(client: MessagePackRpcClient, worker: int) -> None:
        nonlocal errors
        n = worker * 10_000_000
        while time.perf_counter() < stop_at:
            n += 1
            started = time.perf_counter()
            result = await client.publish(event(n))
            latencies.append(time.perf_counter() - started)
            if result[0]["data"]["name"] != f"n{n}":
                errors += 1

    async with contextlib.AsyncExitStack() as stack:
        rpc = [
            await stack.enter_async_context(MessagePackRpcClient("127.0.0.1", port))
            for _ in range(clients)
        ]
        for client in rpc:  # warm up
            await asyncio.gather(*(client.publish(event(i)) for i in range(inflight)))
        stop_at = time.perf_counter() + seconds
        started = time.perf_counter()
        async with asyncio.TaskGroup() as tasks:
            for c, client in enumerate(rpc):
                for w in range(inflight):
                    tasks.create_task(loop(client, c * inflight + w))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "clients": clients,
        "inflight_per_client": inflight,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
    }


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def idle_memory(pid: int, port: int) -> dict[str, float]:
    """RSS growth of the server per idle connection that made one call."""
    ping = msgpack.packb([0, 1, "heartbeat", [0]])
    time.sleep(0.3)
    before = rss_kb(pid)
    sockets = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(ping)
            sock.recv(64)
            sockets.append(sock)
        time.sleep(0.5)
        after = rss_kb(pid)
    finally:
        for sock in sockets:
            sock.close()
    per_connection = (after - before) * 1024 / IDLE_CONNECTIONS
    return {
        "idle_connections": IDLE_CONNECTIONS,
        "rss_before_kb": before,
        "rss_after_kb": after,
        "bytes_per_idle_connection": round(per_connection),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return 0
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        memory = idle_memory(server.pid, port)
        sequential = asyncio.run(drive(port, 1, 1, args.seconds))
        parallel = asyncio.run(drive(port, 8, 16, args.seconds))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    results = {"sequential": sequential, "8x16": parallel, "memory": memory}
    print(f"{'run':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, row in (("1 x 1", sequential), ("8 x 16", parallel)):
        print(
            f"{name:<12}{row['requests_per_second']:>10}{row['p50_ms']:>10}"
            f"{row['p99_ms']:>10}{row['errors']:>8}"
        )
    print(f"memory per idle connection: {memory['bytes_per_idle_connection'] / 1024:.1f} KB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
