"""Local Mosquitto and Redis servers on loopback, for tests and ``make run``.

Each server runs as a child process with its own temporary configuration and data
directory, on a free port, and is stopped by its owner. The broker settings are the
ones shipped in ``mosquitto/mosquitto.conf`` (no queue limit, Nagle off, persistence).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

BROKER_SETTINGS = """\
per_listener_settings false
allow_anonymous true
persistence true
autosave_interval 30
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 1000
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
"""


class ServiceError(RuntimeError):
    """A local server could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise ServiceError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class LocalService:
    """One server process; ``start``/``stop``/``kill``/``restart`` keep port and data."""

    def __init__(self, name: str, workdir: Path, port: int | None = None) -> None:
        self.name = name
        # Absolute: the server runs with its working directory set to ``workdir``.
        self.workdir = workdir.resolve()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        executable = self.command()[0]
        if shutil.which(executable) is None:
            raise ServiceError(f"{executable} is not installed (make install-services)")
        log = (self.workdir / f"{self.name}.log").open("ab")
        # A session of its own: a terminal's Ctrl-C goes to the foreground process group,
        # and the server must not die before its owner has stopped what uses it.
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        try:
            wait_for_port(self.port)
        except ServiceError:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate gracefully (servers persist their state on SIGTERM)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def crash_restart(self, down_seconds: float = 0.0) -> None:
        """SIGKILL, stay down ``down_seconds``, start again on the same port and data:
        what a crashed and rescheduled server looks like to its clients."""
        self.kill()
        if down_seconds > 0:
            time.sleep(down_seconds)
        self.start()

    @property
    def pid(self) -> int:
        """Process id of the running server (for RSS and CPU sampling)."""
        if self.process is None:
            raise ServiceError(f"{self.name} is not running")
        return self.process.pid

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LocalMosquitto(LocalService):
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__("mosquitto", workdir, port)
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        self.config_path = self.workdir / "mosquitto.conf"
        # As root, mosquitto drops to user 'mosquitto', which cannot write our temporary
        # data directory: persistence would silently fail. Keep the invoking user.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.config_path.write_text(
            f"listener {self.port} 127.0.0.1\n{BROKER_SETTINGS}{user}persistence_location {data}/\n"
        )

    def command(self) -> list[str]:
        return [_find("mosquitto"), "-c", str(self.config_path)]


class LocalRedis(LocalService):
    def __init__(self, workdir: Path, port: int | None = None, *, appendonly: bool = True):
        super().__init__("redis", workdir, port)
        self.appendonly = appendonly

    def command(self) -> list[str]:
        return [
            _find("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--protected-mode", "no",
        ]  # fmt: skip


def _find(executable: str) -> str:
    """Debian installs mosquitto in /usr/sbin, which is not always on PATH."""
    found = shutil.which(executable)
    if found:
        return found
    for directory in ("/usr/sbin", "/usr/local/sbin", "/usr/bin"):
        candidate = Path(directory) / executable
        if candidate.exists():
            return str(candidate)
    return executable
