"""The Redis connections of a process.

Per-message commands (dedupe, job compare-and-swap scripts) go through one pipelined
:class:`RespConnection`: everything issued during one event-loop iteration leaves in one
write, so 64 concurrent handlers share round trips instead of queueing behind each
other. ``client`` (redis-py) serves everything else, such as blocking stream reads.
In mode ``cluster`` they are a :class:`~microdcs.storage.cluster.ClusterConnection` (one
pipelined connection per primary, each command routed by its key's slot) and redis-py's
cluster client.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    AuthenticationError,
    ClusterDownError,
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from microdcs.core.errors import ConfigurationError, StorageUnavailableError
from microdcs.core.tracing import Tracing
from microdcs.storage.cluster import ClusterConnection
from microdcs.storage.options import RedisConfig, tls_context
from microdcs.storage.resp import Redirect, RespConnection, is_transient_reply
from microdcs.storage.sentinel import SentinelLocator

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: redis-py errors that mean "Redis is not serving right now" (as opposed to a bad
#: command): unreachable, loading its dataset (``BusyLoadingError`` is a
#: ``ConnectionError``), or in a failover (read-only replica, cluster down, try again).
#: Mapped to :class:`StorageUnavailableError` here, at the boundary: callers of the
#: store catch that, never these.
_UNAVAILABLE_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    TryAgainError,
    ClusterDownError,
    # The cluster client's own: no node reachable, a slot not covered, redirected
    # too often.
    RedisClusterException,
    ClusterError,
    ConnectionError,
    OSError,
)


#: The option of a read-timeout override passed from ``execute_command`` to
#: ``parse_response`` (popped there: redis-py never sees it).
_READ_TIMEOUT = "_microdcs_read_timeout"

#: Error replies of a refused login (wrong password, unknown or disabled user).
_REFUSED_LOGIN = (
    "WRONGPASS",
    "NOAUTH",
    "NOPERM",
    "invalid username-password",
    "without any password configured",
)


def redis_version(info: bytes) -> tuple[int, int] | None:
    """``(major, minor)`` from the reply of ``INFO server``; None when it names none."""
    for line in info.splitlines():
        if line.startswith(b"redis_version:"):
            parts = line.partition(b":")[2].split(b".")
            try:
                return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
            except ValueError:
                return None
    return None


def _misconfiguration(message: str) -> str | None:
    """The setting to blame for a connection failure that waiting does not cure."""
    if any(marker in message for marker in _REFUSED_LOGIN):
        return "APP_REDIS_USERNAME/APP_REDIS_PASSWORD"
    if "CERTIFICATE_VERIFY_FAILED" in message or "WRONG_VERSION_NUMBER" in message:
        return "APP_REDIS_TLS/APP_REDIS_TLS_CA_FILE"
    return None


def block_seconds(args: tuple[Any, ...]) -> float | None:
    """The ``BLOCK`` time of a command in seconds (``math.inf`` for ``BLOCK 0``), or None
    when the command does not block on purpose."""
    if b"BLOCK" in args:  # how redis-py spells it
        index = args.index(b"BLOCK")
    elif "BLOCK" in args:
        index = args.index("BLOCK")
    else:
        return None
    try:
        milliseconds = int(args[index + 1])
    except (IndexError, TypeError, ValueError):
        return None
    return math.inf if milliseconds == 0 else milliseconds / 1000


class _Client(aioredis.Redis):
    """redis-py with ``socket_timeout`` as the command timeout, extended by the block
    time of a command that waits on purpose (``XREADGROUP ... BLOCK``), so a blocking
    stream read is not cut by the timeout meant for a frozen server."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        blocking = block_seconds(args)
        if blocking is not None:
            timeout = self.connection_pool.connection_kwargs.get("socket_timeout")
            options[_READ_TIMEOUT] = blocking + (timeout or 0.0)
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    async def parse_response(
        self, connection: Any, command_name: str | bytes, **options: Any
    ) -> Any:
        read_timeout = options.pop(_READ_TIMEOUT, None)
        if read_timeout is None:
            return await super().parse_response(connection, command_name, **options)
        saved = connection.socket_timeout
        connection.socket_timeout = None if read_timeout == math.inf else read_timeout
        try:
            return await super().parse_response(connection, command_name, **options)
        finally:
            connection.socket_timeout = saved


class _BlockingConnection(Connection):
    """A redis-py connection that reads the reply of a blocking command
    (``XREADGROUP ... BLOCK``) with its block time on top of ``socket_timeout``.

    The cluster client routes through its own nodes and never calls
    :meth:`_Client.parse_response`, so the allowance is made where every command is
    packed and every reply read: the block time is taken from the packed command and
    applies to the next read of its reply (a health-check PING sent in between is read
    with the plain timeout)."""

    _block_read: float | None = None

    def pack_command(self, *args: Any) -> list[bytes]:
        blocking = block_seconds(args)
        if blocking is not None:
            self._block_read = blocking + (self.socket_timeout or 0.0)
        return super().pack_command(*args)

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        pending, self._block_read = self._block_read, None  # not for a health check's PING
        await super().send_packed_command(command, check_health)
        self._block_read = pending

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 (redis-py's signature)
        **options: Any,
    ) -> Any:
        if timeout is None and self._block_read is not None:
            timeout, self._block_read = self._block_read, None
        return await super().read_response(disable_decoding, timeout, **options)


class _BlockingSSLConnection(_BlockingConnection, SSLConnection):
    """:class:`_BlockingConnection` over TLS."""


class _ClusterClient(RedisCluster):
    """redis-py's cluster client (slot routing, MOVED/ASK, failover) for what does not
    go through the pipelined connection, with :class:`_BlockingConnection` so that a
    blocking stream read is not cut by the command timeout."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        blocking = _BlockingSSLConnection if options.get("ssl") else _BlockingConnection
        # redis-py builds every node's connections from these kwargs (the startup nodes
        # were built already): the only seam to choose the connection class.
        self.connection_kwargs["connection_class"] = blocking
        for node in self.startup_nodes:
            node.connection_class = blocking


def _cluster_client(config: RedisConfig) -> _ClusterClient:
    options = _redis_py_options(config)
    # The cluster client retries a lost node (re-reading the slot map) and a timeout
    # alike, each try up to the command timeout: few tries, so a frozen primary fails
    # its commands in a few command timeouts rather than ten.
    options["retry"] = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), 2)
    return _ClusterClient(
        startup_nodes=[ClusterNode(host, port) for host, port in config.seed_nodes()],
        **options,
    )


def _redis_py_tls(config: RedisConfig) -> dict[str, Any]:
    """redis-py's spelling of ``APP_REDIS_TLS*``."""
    if not config.tls:
        return {}
    return {
        "ssl": True,
        "ssl_ca_certs": config.tls_ca_file,
        "ssl_certfile": config.tls_cert_file,
        "ssl_keyfile": config.tls_key_file,
        "ssl_check_hostname": not config.tls_insecure,
    }


def _redis_py_options(config: RedisConfig) -> dict[str, Any]:
    """Login, TLS, timeouts and retries of a redis-py client, in every mode."""
    return {
        "username": config.username,
        "password": config.password,
        "socket_connect_timeout": 2.0,
        "socket_timeout": config.command_timeout,
        # redis-py's default retry policy (10 tries, 10 ms to 1 s backoff) for a lost
        # connection, but a command timeout is not retried: against a frozen server the
        # tries would multiply the timeout the operator configured.
        "retry": Retry(
            ExponentialWithJitterBackoff(base=0.01, cap=1.0),
            10,
            supported_errors=(RedisConnectionError,),
        ),
        "health_check_interval": 15,
        "decode_responses": False,
        **_redis_py_tls(config),
    }


def _resp_connection(
    config: RedisConfig,
    tls: ssl.SSLContext | None,
    host: str,
    port: int,
    locate: Callable[[], Awaitable[tuple[str, int]]] | None = None,
    redirect: Redirect | None = None,
) -> RespConnection:
    """The pipelined connection to one server with the configured login and TLS."""
    return RespConnection(
        host,
        port,
        username=config.username,
        password=config.password,
        db=config.db,
        command_timeout=config.command_timeout,
        ssl_context=tls,
        locate=locate,
        redirect=redirect,
    )


class RedisStore:
    """Owns the Redis connections; ``async with RedisStore(cfg) as store``."""

    def __init__(self, config: RedisConfig, *, tracing: Tracing | None = None) -> None:
        self.config = config
        tls = tls_context(config)
        self.client: aioredis.Redis | RedisCluster
        self.pipeline: RespConnection | ClusterConnection
        if config.mode == "cluster":
            self.client = _cluster_client(config)
            self.pipeline = ClusterConnection(
                config.seed_nodes(),
                lambda host, port, redirect: _resp_connection(
                    config, tls, host, port, redirect=redirect
                ),
            )
        elif config.mode == "sentinel":
            locator = SentinelLocator(
                config.sentinel_addresses(),
                config.sentinel_master,
                username=config.sentinel_username,
                password=config.sentinel_password,
                ssl_context=tls,
            )
            # redis-py types Sentinel's constructor from 8.0 on, not before.
            sentinel_class: Any = Sentinel
            sentinel = sentinel_class(
                config.sentinel_addresses(),
                sentinel_kwargs={
                    "username": config.sentinel_username,
                    "password": config.sentinel_password,
                    "socket_connect_timeout": 2.0,
                    "socket_timeout": config.command_timeout,
                    **_redis_py_tls(config),
                },
                **_redis_py_options(config),
            )
            self.client = sentinel.master_for(config.sentinel_master, redis_class=_Client)
            self.pipeline = _resp_connection(config, tls, config.hostname, config.port, locator)
        else:
            self.client = _Client(
                host=config.hostname, port=config.port, db=config.db, **_redis_py_options(config)
            )
            self.pipeline = _resp_connection(config, tls, config.hostname, config.port)
        #: Script calls are traced as CLIENT spans (records nothing without an exporter).
        self.tracing = tracing or Tracing()

    def key(self, *parts: str) -> str:
        """A key under the configured prefix, parts joined by ``:``."""
        return ":".join((self.config.key_prefix, *parts))

    async def __aenter__(self) -> Self:
        """Checks once, when Redis answers, what waiting would never cure: a refused user
        or password, a certificate the CA does not vouch for, a cluster node configured
        as a single server. Each is a configuration error naming its setting instead of
        a loop of unavailable-storage retries. Redis being down is not (the runtime
        waits for it)."""
        try:
            await self.pipeline.connect()
            await self._check_server()
        except StorageUnavailableError as exc:
            problem = _misconfiguration(str(exc))
            if problem is not None:
                await self._close()
                raise ConfigurationError(problem, str(exc)) from None
        except ConfigurationError:
            await self._close()
            raise
        return self

    async def _check_server(self) -> None:
        """What the server says of itself, checked once: Redis 7 or newer (the dedupe
        claim is ``SET ... NX GET``, which Redis 6 refuses), and not a cluster node used
        as one server (it would answer MOVED for most keys)."""
        try:
            info = await self.pipeline.execute("INFO", "server")
            cluster = await self.pipeline.execute("INFO", "cluster")
        except ResponseError:  # an ACL without INFO: nothing to learn, nothing wrong
            return
        version = redis_version(info)
        if version is not None and version < (7, 0):
            raise ConfigurationError(
                "APP_REDIS_HOSTNAME",
                f"Redis {'.'.join(map(str, version))} at {self.config.hostname}:"
                f"{self.config.port}; microdcs needs Redis 7.0 or newer",
            )
        if self.config.mode == "standalone" and b"cluster_enabled:1" in cluster:
            raise ConfigurationError(
                "APP_REDIS_MODE",
                f"{self.config.hostname}:{self.config.port} is a Redis Cluster node; "
                "set APP_REDIS_MODE=cluster",
            )

    async def _close(self) -> None:
        self.pipeline.close()
        await self.client.aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    def execute(self, *args: Any) -> Awaitable[Any]:
        """One command (await it), pipelined with those of concurrent callers.

        Raises :class:`StorageUnavailableError` when Redis cannot be reached and
        ``redis.exceptions.ResponseError`` for an error reply. A plain function returning
        the connection's awaitable (the reply's future while connected): no coroutine on
        the path of every message.
        """
        return self.pipeline.execute(*args)

    def execute_many(self, commands: list[tuple[Any, ...]]) -> Coroutine[Any, Any, list[Any]]:
        """Commands sent together in one write (await it): each reply, or the exception
        of its failure (``StorageUnavailableError``, ``ResponseError``), in order."""
        return self.pipeline.execute_many(commands)

    def execute_on(self, key: Any, *args: Any) -> Awaitable[Any]:
        """A keyless command (``WAIT``) on the connection that serves ``key``'s slot: in a
        cluster, that of the primary that took the last write to the key; otherwise the
        one connection."""
        if isinstance(self.pipeline, ClusterConnection):
            return self.pipeline.execute_on(key, *args)
        return self.pipeline.execute(*args)

    async def replicated(self, key: Any) -> None:
        """Return once ``APP_REDIS_WAIT_REPLICAS`` replicas have every write this process
        made so far to ``key``'s primary (``WAIT``); raise :class:`StorageUnavailableError`
        when fewer have it within half the command timeout (the other half is left for the
        reply and the commands queued behind the blocking ``WAIT``).

        Called after the write's reply, not pipelined with it: a write re-sent after
        ``NOSCRIPT`` or a redirection is then covered too. A reply of the primary alone is
        lost when it dies before its replicas have the write; this closes that window for
        what the runtime answers Good.
        """
        needed = self.config.wait_replicas
        if needed <= 0:
            return
        timeout_ms = max(1, int(self.config.command_timeout * 500))
        try:
            reached = int(await self.execute_on(key, "WAIT", needed, timeout_ms))
        except ResponseError as exc:  # e.g. the node was demoted to a replica meanwhile
            raise StorageUnavailableError(f"Redis WAIT failed: {exc}") from exc
        if reached < needed:
            raise StorageUnavailableError(
                f"only {reached} of {needed} Redis replicas (APP_REDIS_WAIT_REPLICAS) "
                f"acknowledged the write within {timeout_ms} ms"
            )

    async def guarded(self, operation: Awaitable[T]) -> T:
        """Await a call of ``client`` (redis-py) with its errors mapped like those of the
        pipelined connection: everything that waiting cures (unreachable, ``LOADING``,
        ``BUSY``, failover) becomes :class:`StorageUnavailableError`; other error replies
        stay ``ResponseError``."""
        try:
            return await operation
        except AuthenticationError as exc:
            user = self.config.username or "default"
            raise StorageUnavailableError(
                f"Redis refused the login of user {user!r}: {exc}"
            ) from exc
        except _UNAVAILABLE_ERRORS as exc:
            raise StorageUnavailableError(f"Redis unavailable: {exc}") from exc
        except ResponseError as exc:
            if is_transient_reply(str(exc)):
                raise StorageUnavailableError(f"Redis not serving: {exc}") from exc
            raise

    async def ping(self) -> bool:
        """True when Redis answers (a cluster: every primary, and every slot served);
        never raises."""
        if isinstance(self.pipeline, ClusterConnection):
            return await self.pipeline.healthy()
        try:
            return bool(await self.client.ping())
        except _UNAVAILABLE_ERRORS:
            return False
