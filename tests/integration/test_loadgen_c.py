"""The benchmarks' C load generator (bench/mqttload.c) against a real runtime.

It must build warning-free, measure the greeting round trip without losses, count replies
that miss ``expect`` as failed, and report exactly the keys of the Python generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from microdcs.app.config import AppConfig
from tests.conftest import running

BENCH = Path(__file__).resolve().parents[2] / "bench"
GREETED = '"name":"bench"'
JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"
STORE_CANCEL = [
    (f"{JC}.Store.v2", '{{"JobOrder": {{"JobOrderID": "{n}", "Priority": 3}}}}'),
    (f"{JC}.Cancel.v2", '{{"JobOrderID": "{n}"}}'),
]


def gcc() -> str:
    found = shutil.which("gcc")
    if found is None:
        pytest.fail("gcc is not installed; it is part of the expected toolchain (apt install gcc)")
    return found


@pytest.fixture(scope="module")
def loadgen() -> ModuleType:
    """bench/loadgen.py (bench is no package)."""
    spec = importlib.util.spec_from_file_location("bench_loadgen", BENCH / "loadgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def c_generator(monkeypatch: pytest.MonkeyPatch, loadgen: ModuleType) -> ModuleType:
    gcc()
    loadgen.build_c_generator()
    monkeypatch.setenv("BENCH_LOADGEN", "c")
    return loadgen


def test_builds_without_warnings(tmp_path: Path) -> None:
    build = subprocess.run(
        [gcc(), "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(tmp_path / "mqttload"),
         str(BENCH / "mqttload.c")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr


async def load(loadgen: ModuleType, config: AppConfig, *args: Any, **kwargs: Any) -> Any:
    """``run_load`` in a thread while the runtime serves in this event loop."""
    topic = f"{config.greeting_prefix}/cell{{slot}}/commands"
    return await asyncio.to_thread(
        loadgen.run_load, config.mqtt.port, topic, *args, warmup=False, **kwargs
    )


async def test_greeting_round_trips_are_measured(
    config: AppConfig, c_generator: ModuleType
) -> None:
    async with running(config):
        result = await load(c_generator, config, 1.0, 8, expect=GREETED)
    assert result["generator"] == "c"
    assert result["requests"] > 0
    assert result["lost"] == 0
    assert result["failed"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]


async def test_replies_without_expected_text_count_as_failed(
    config: AppConfig, c_generator: ModuleType
) -> None:
    async with running(config):
        result = await load(c_generator, config, 0.5, 8, expect='"name":"somebody else"')
    assert result["requests"] > 0
    assert result["failed"] == result["requests"]  # every call is call 0 of its sequence


async def test_call_sequences_share_the_iteration_id(
    config: AppConfig, c_generator: ModuleType
) -> None:
    """Store J-n, then Cancel J-n: each Store gets a fresh id, so every one is accepted."""
    topic = f"{config.jobs_prefix}/cell{{slot}}/commands"
    async with running(config):
        result = await asyncio.to_thread(
            c_generator.run_load, config.mqtt.port, topic, 0.5, 4, STORE_CANCEL,
            expect='"ReturnStatus":1', warmup=False,
        )  # fmt: skip
    assert result["requests"] > 2
    assert result["lost"] == 0
    assert result["failed"] == 0


@pytest.fixture
def tiny_reads(tmp_path: Path) -> Path:
    """The C generator reading 7 bytes at a time: every packet arrives in pieces."""
    binary = tmp_path / "mqttload-tiny-reads"
    subprocess.run(
        [gcc(), "-O2", "-DREAD_CHUNK=7", "-o", str(binary), str(BENCH / "mqttload.c")],
        check=True,
    )
    return binary


async def test_packets_split_across_reads(config: AppConfig, tiny_reads: Path) -> None:
    binary = tiny_reads
    topic = f"{config.greeting_prefix}/cell{{slot}}/commands"
    async with running(config):
        proc = await asyncio.create_subprocess_exec(
            str(binary), str(config.mqtt.port), topic, "0.3", "4", "0", "--expect", GREETED,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0
    result = json.loads(out)
    assert result["requests"] > 0
    assert result["lost"] == result["failed"] == 0


async def test_same_keys_as_the_python_generator(
    config: AppConfig, c_generator: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(config):
        c = await load(c_generator, config, 0.3, 4, expect=GREETED)
        monkeypatch.setenv("BENCH_LOADGEN", "python")
        python = await load(c_generator, config, 0.3, 4, expect=GREETED)
    assert (c["generator"], python["generator"]) == ("c", "python")
    assert set(c) == set(python)
    assert python["requests"] > 0
    assert python["lost"] == python["failed"] == 0


def test_refused_connection_exits_with_a_message(c_generator: ModuleType) -> None:
    with unused_port() as port:
        gen = subprocess.run(
            [str(c_generator.C_BINARY), str(port), "t/{slot}", "0.2", "1", "0"],
            capture_output=True, text=True, timeout=15,
        )  # fmt: skip
    assert gen.returncode != 0
    assert "cannot connect" in gen.stderr
    assert gen.stdout == ""


@contextlib.contextmanager
def unused_port() -> Iterator[int]:
    """A loopback port nobody listens on (bound without listen, so connect is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
