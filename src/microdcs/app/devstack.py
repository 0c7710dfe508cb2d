"""Local Mosquitto and Redis servers on loopback, for tests and ``make run``.

Each server runs as a child process with its own temporary configuration and data
directory, on a free port, and is stopped by its owner. The broker settings are the
ones shipped in ``mosquitto/mosquitto.conf`` (no queue limit, Nagle off, persistence).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import redis

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
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        appendonly: bool = True,
        appendfsync: Literal["always", "everysec", "no"] = "everysec",
    ):
        super().__init__("redis", workdir, port)
        self.appendonly = appendonly
        #: ``everysec`` can lose acknowledged writes when a server crashes while an fsync
        #: is slow (Redis then postpones its AOF writes up to 2 s); ``always`` cannot.
        self.appendfsync = appendfsync

    def command(self) -> list[str]:
        return [
            _find("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
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


#: Hash slots of a Redis Cluster.
CLUSTER_SLOTS = 16384


class LocalRedisNode(LocalRedis):
    """One ``redis-server`` of a cluster: its own directory, ``nodes.conf`` and bus port
    (chosen free, not port + 10000, which may be taken or out of range)."""

    def __init__(
        self, workdir: Path, port: int | None = None, *, appendonly: bool, node_timeout_ms: int
    ) -> None:
        super().__init__(workdir, port, appendonly=appendonly)
        self.bus_port = free_port()
        self.node_timeout_ms = node_timeout_ms

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            *super().command(),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-port", str(self.bus_port),
            # A replica's first sync starts at once, not after the 5 s default delay.
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip

    def call(self, *args: Any) -> Any:
        """One command on a plain (not cluster-aware) connection of its own, for set-up
        and checks; ``INFO`` comes back as redis-py's dict."""
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2.0)
        try:
            return client.execute_command(*args)  # type: ignore[no-untyped-call]
        finally:
            client.close()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class LocalRedisCluster:
    """A Redis Cluster on loopback: ``primaries`` primaries, each with ``replicas``
    replicas, every node a child process with its own directory under ``workdir``.

    The cluster is formed by hand (slots, config epochs, MEET, REPLICATE) rather than with
    ``redis-cli --cluster create``, whose one-second polls would double the start-up; the
    context manager returns once every node says ``cluster_state:ok`` and every replica is
    in sync (about 2 s: a new primary waits that long before it serves). The node timeout
    is small by default so that a killed primary's replica takes over within about 2 s.
    """

    def __init__(
        self,
        workdir: Path,
        primaries: int = 3,
        replicas: int = 0,
        *,
        appendonly: bool = False,
        node_timeout_ms: int = 1000,
    ) -> None:
        if primaries < 1 or replicas < 0:
            raise ValueError("a cluster needs a primary and a non-negative replica count")
        self.workdir = workdir.resolve()
        self.replicas_per_primary = replicas
        self.all_nodes: list[LocalRedisNode] = [
            LocalRedisNode(
                self.workdir / f"node{n}", appendonly=appendonly, node_timeout_ms=node_timeout_ms
            )
            for n in range(primaries * (1 + replicas))
        ]
        #: The primaries the cluster was created with (``primaries`` is who serves now).
        self.initial_primaries = self.all_nodes[:primaries]

    # -- what clients are configured with and what tests look at ----------------------------
    @property
    def nodes(self) -> str:
        """Every node as ``host:port,...`` (APP_REDIS_NODES), the initial primaries first."""
        return ",".join(node.address for node in self.all_nodes)

    @property
    def primaries(self) -> list[LocalRedisNode]:
        """The nodes that serve slots right now, as a running node sees the cluster."""
        serving: list[LocalRedisNode] = []
        for _slots, node in self._slot_table():
            if node not in serving:
                serving.append(node)
        return serving

    def primary_of(self, key: str) -> LocalRedisNode:
        """The node serving the hash slot of ``key`` right now."""
        slot = int(self._live_node().call("CLUSTER", "KEYSLOT", key))
        for (first, last), node in self._slot_table():
            if first <= slot <= last:
                return node
        raise ServiceError(f"no node serves slot {slot} of {key!r}")

    def replicas_of(self, primary: LocalRedisNode) -> list[LocalRedisNode]:
        """The replicas in sync with ``primary`` (``state=online``), as it reports them."""
        info: dict[str, Any] = primary.call("INFO", "replication")
        ports = {
            int(value["port"])
            for name, value in info.items()
            if name.startswith("slave") and isinstance(value, dict)
            if value.get("state") == "online"
        }
        return [node for node in self.all_nodes if node.port in ports]

    # -- faults -----------------------------------------------------------------------------
    def kill(self, node: LocalRedisNode) -> None:
        """SIGKILL one node, as in a crash (a replica takes over after the node timeout)."""
        node.kill()

    def stop(self, node: LocalRedisNode) -> None:
        """SIGTERM one node (it saves ``nodes.conf`` and, with AOF, its data)."""
        node.stop()

    def start(self, node: LocalRedisNode) -> None:
        """Start a stopped or killed node again on its port and ``nodes.conf``: it rejoins,
        as a replica if its slots were taken over meanwhile."""
        node.start()

    def pause(self, node: LocalRedisNode) -> None:
        """SIGSTOP: the node is frozen (connections stay open, nothing is answered)."""
        os.kill(node.pid, signal.SIGSTOP)

    def resume(self, node: LocalRedisNode) -> None:
        """SIGCONT after :meth:`pause`."""
        os.kill(node.pid, signal.SIGCONT)

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.create()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def create(self, timeout: float = 15.0) -> None:
        """Start every node, assign the slots, join the nodes, attach the replicas, and
        wait until the cluster serves every slot."""
        try:
            for node in self.all_nodes:
                node.start()
            self._form(timeout)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Kill every node: a test cluster's data goes with its directory."""
        for node in self.all_nodes:
            if node.running():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGCONT)  # a paused node cannot die otherwise
            node.kill()

    def wait_ok(self, timeout: float = 15.0) -> None:
        """Until every running node says ``cluster_state:ok`` and every running replica's
        link to its primary is up."""
        deadline = time.monotonic() + timeout
        while (problem := self._problem()) is not None:
            if time.monotonic() > deadline:
                raise ServiceError(f"Redis Cluster not ok after {timeout} s: {problem}")
            time.sleep(0.05)

    def wait_failover(self, key: str, old: LocalRedisNode, timeout: float = 15.0) -> float:
        """Until a node other than ``old`` serves the slot of ``key`` and the cluster is ok
        again; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            with contextlib.suppress(redis.RedisError, ServiceError):
                if self.primary_of(key) is not old and self._problem() is None:
                    return time.monotonic() - started
            time.sleep(0.05)
        raise ServiceError(f"no replica took over from {old.address} within {timeout} s")

    # -- inside -----------------------------------------------------------------------------
    def _form(self, timeout: float) -> None:
        primaries = len(self.initial_primaries)
        first = self.all_nodes[0]
        ids: dict[LocalRedisNode, str] = {}
        for n, node in enumerate(self.all_nodes):
            ids[node] = node.call("CLUSTER", "MYID").decode()
            # Distinct epochs up front: no epoch collision to resolve (as redis-cli does).
            node.call("CLUSTER", "SET-CONFIG-EPOCH", n + 1)
            if n < primaries:
                low = n * CLUSTER_SLOTS // primaries
                high = (n + 1) * CLUSTER_SLOTS // primaries - 1
                node.call("CLUSTER", "ADDSLOTSRANGE", low, high)
            if node is not first:
                node.call("CLUSTER", "MEET", "127.0.0.1", first.port, first.bus_port)
        self._wait_known(timeout)
        for n, node in enumerate(self.all_nodes[primaries:]):
            node.call("CLUSTER", "REPLICATE", ids[self.initial_primaries[n % primaries]])
        self.wait_ok(timeout)
        deadline = time.monotonic() + timeout
        for primary in self.initial_primaries:
            while len(self.replicas_of(primary)) < self.replicas_per_primary:
                if time.monotonic() > deadline:
                    raise ServiceError(f"replicas of {primary.address} not in sync in {timeout} s")
                time.sleep(0.02)

    def _wait_known(self, timeout: float) -> None:
        """Until every node knows every other (a replica can only follow a known primary)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            known = [
                sum(1 for line in lines if "handshake" not in line and "noaddr" not in line)
                for lines in (
                    node.call("CLUSTER", "NODES").decode().splitlines() for node in self.all_nodes
                )
            ]
            if min(known) >= len(self.all_nodes):
                return
            time.sleep(0.02)
        raise ServiceError(f"Redis Cluster nodes did not meet within {timeout} s")

    def _problem(self) -> str | None:
        """Why the cluster is not ok, as its running nodes see it, or None."""
        for node in self.all_nodes:
            if not node.running():
                continue
            try:
                if b"cluster_state:ok" not in node.call("CLUSTER", "INFO"):
                    return f"{node.address}: cluster_state not ok"
                replication = node.call("INFO", "replication")
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    return f"{node.address}: replica link down"
            except redis.RedisError as exc:
                return f"{node.address}: {exc}"
        return None

    def _live_node(self) -> LocalRedisNode:
        for node in self.all_nodes:
            if node.running():
                return node
        raise ServiceError("no node of the Redis Cluster is running")

    def _slot_table(self) -> list[tuple[tuple[int, int], LocalRedisNode]]:
        """``((first, last), primary)`` for every slot range (``CLUSTER SLOTS``)."""
        by_port = {node.port: node for node in self.all_nodes}
        return [
            ((int(entry[0]), int(entry[1])), by_port[int(entry[2][1])])
            for entry in self._live_node().call("CLUSTER", "SLOTS")
            if int(entry[2][1]) in by_port
        ]


EJABBERD_SETTINGS = """\
# Written by microdcs.app.devstack.LocalEjabberd: MQTT v5 only, on loopback.
hosts:
  - "localhost"
loglevel: warning
hide_sensitive_log_data: true
# mod_mqtt wants a user name and a non-empty password; anonymous authentication with
# login_anon accepts any pair, like Mosquitto's allow_anonymous.
auth_method: [anonymous]
anonymous_protocol: login_anon
listen:
  -
    port: {port}
    ip: "127.0.0.1"
    module: mod_mqtt
    backlog: 1000
modules:
  mod_mqtt:
    max_queue: unlimited
    session_expiry: 5 min
    max_topic_depth: 32
"""


class LocalEjabberd(LocalService):
    """ejabberd's MQTT v5 broker (``mod_mqtt``): a second, independent implementation.

    It offers no shared subscriptions (CONNACK Shared Subscription Available = 0), so the
    runtime runs in its plain-subscription mode against it. Run as a bare Erlang VM,
    not through ``ejabberdctl``: the VM is not distributed (no node name, no epmd, no
    cookie), so parallel runs cannot meet, and the only port it opens is the MQTT
    listener on 127.0.0.1 (the configuration declares no XMPP listener).
    """

    #: Any user name with a non-empty password is accepted (see ``EJABBERD_SETTINGS``).
    username = "microdcs"
    password = "microdcs"
    #: The Debian package's Erlang libraries.
    LIBS = Path("/usr/lib/x86_64-linux-gnu")

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__("ejabberd", workdir, port)
        self.spool = self.workdir / "spool"
        self.spool.mkdir(exist_ok=True)
        self.config_path = self.workdir / "ejabberd.yml"
        self.config_path.write_text(EJABBERD_SETTINGS.format(port=self.port))

    def _libs(self) -> Path:
        for candidate in (self.LIBS, Path("/usr/lib/aarch64-linux-gnu"), Path("/usr/lib")):
            if any(candidate.glob("ejabberd-*/ebin/ejabberd.beam")):
                return candidate
        raise ServiceError("ejabberd is not installed (apt-get install ejabberd)")

    def command(self) -> list[str]:
        environment = {
            "EJABBERD_CONFIG_PATH": str(self.config_path),
            "EJABBERD_LOG_PATH": str(self.workdir / "ejabberd.log"),
            "ERL_LIBS": str(self._libs()),
            "ERL_CRASH_DUMP_BYTES": "0",
            "HOME": str(self.workdir),
        }
        # ``env`` execs the VM: the process stopped and killed is the VM itself.
        return [
            "env",
            *(f"{name}={value}" for name, value in environment.items()),
            _find("erl"),
            "-noinput",
            "-noshell",
            "-mnesia", "dir", f'"{self.spool}"',
            "-s", "ejabberd",
        ]  # fmt: skip
