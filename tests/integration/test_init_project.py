"""``microdcs init`` (issue 20, items 1 and 6): the project it writes passes its own tests
against a real Mosquitto and Redis, and ``microdcs run --processor`` started in it finds
its module in the current directory and logs the binding.

The project's tests run with this interpreter (the project on the path, not installed) to
keep this under a minute; its ``make test`` builds a virtualenv of its own instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from microdcs.app.cli import main
from microdcs.app.devstack import LocalMosquitto
from tests.conftest import RedisServer, single_redis

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("init") / "my-cell"
    assert main(["init", str(directory)]) == 0
    return directory


def test_init_writes_a_project_with_its_models_and_a_makefile(project: Path) -> None:
    for path in (
        "pyproject.toml",
        "Makefile",
        "schemas/batches.schema.json",
        "my_cell/processor.py",
        "my_cell/models/batches.py",
        "my_cell/models/index.py",
        "tests/conftest.py",
        "tests/test_processor.py",
    ):
        assert (project / path).is_file(), path
    makefile = (project / "Makefile").read_text()
    assert "\ntest: models\n" in makefile and "\nrun: models\n" in makefile
    assert f"MICRODCS ?= {Path(__file__).resolve().parents[2]}" in makefile


def test_the_new_project_passes_its_own_tests(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(project)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_new_project_is_ruff_clean(project: Path) -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [str(BIN / "ruff"), *args], cwd=project, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_init_refuses_a_directory_that_is_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["init", str(tmp_path)]) == 1
    assert "exists and is not an empty directory" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_init_takes_a_fresh_git_repository(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    assert main(["init", str(tmp_path)]) == 0
    assert (tmp_path / "Makefile").is_file()


@single_redis("one server named by APP_REDIS_PORT")
def test_run_in_the_project_finds_its_module_logs_the_binding_and_a_free_http_port(
    project: Path, mosquitto: LocalMosquitto, redis_server: RedisServer
) -> None:
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    http_port = taken.getsockname()[1]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("APP_") and key != "PYTHONPATH"
    }
    env.update(
        APP_MQTT_HOSTNAME="127.0.0.1",
        APP_MQTT_PORT=str(mosquitto.port),
        APP_REDIS_HOSTNAME="127.0.0.1",
        APP_REDIS_PORT=str(redis_server.port),  # type: ignore[union-attr]
        APP_REDIS_KEY_PREFIX=f"init{os.getpid()}",
        APP_INSTANCE_ID="init-test",
        APP_HTTP_PORT=str(http_port),
    )
    child = subprocess.Popen(
        [str(BIN / "microdcs"), "run", "--processor", "my_cell.processor:bind"],
        cwd=project,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and child.poll() is None:
            line = child.stderr.readline()
            lines.append(line)
            if "health and metrics on http" in line:
                break
    finally:
        child.terminate()
        child.wait(20)
        taken.close()
    log = "".join(lines)
    assert (
        "processor BatchProcessor (northbound): subscribes app/my_cell/[scope/]commands; "
        "publishes app/my_cell/[scope/]data, app/my_cell/[scope/]events, "
        "app/my_cell/[scope/]metadata; handles com.example.my_cell.startbatch.v1; "
        "emits com.example.my_cell.batchstarted.v1"
    ) in log, log
    assert f"APP_HTTP_PORT {http_port} is in use; health and metrics on free port" in log, log
    assert "Traceback" not in log
