"""Options of the Redis connections, declared next to the storage code that reads them.

The app's configuration composes this dataclass and fills it from the environment once;
storage takes it as a plain value and never imports the app.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from microdcs.core.errors import ConfigurationError
from microdcs.core.settings import setting
from microdcs.core.tls import client_tls_context

#: How the runtime finds its Redis: one server, a Redis Cluster, or the primary that
#: Redis Sentinel names.
REDIS_MODES = ("standalone", "cluster", "sentinel")


@dataclass(frozen=True, slots=True)
class RedisConfig:
    hostname: str = setting("APP_REDIS_HOSTNAME", "localhost", "Redis host name.")
    port: int = setting("APP_REDIS_PORT", 6379, "Redis port.")
    password: str | None = setting("APP_REDIS_PASSWORD", None, "Redis password.")
    username: str | None = setting(
        "APP_REDIS_USERNAME",
        None,
        "Redis ACL user (``AUTH username password``); unset means the default user. A "
        "refused user or password stops the start-up with an error naming the user.",
    )
    command_timeout: float = setting(
        "APP_REDIS_COMMAND_TIMEOUT",
        2.0,
        "Seconds a Redis command may wait for its reply. When it fires (Redis frozen, "
        "network black-holed) every outstanding command fails as storage unavailable "
        "(requests are answered as unavailable and retried later, background tasks wait) "
        "and the connection is dropped and re-opened on the next command. Blocking stream "
        "reads get their block time on top.",
    )
    mode: str = setting(
        "APP_REDIS_MODE",
        "standalone",
        "'standalone' (one server at APP_REDIS_HOSTNAME:APP_REDIS_PORT), 'cluster' (a Redis "
        "Cluster: APP_REDIS_NODES are the seed nodes, every primary is used) or 'sentinel' "
        "(the primary APP_REDIS_SENTINEL_MASTER that the sentinels of APP_REDIS_SENTINELS "
        "name, looked up again after every lost connection).",
    )
    nodes: str = setting(
        "APP_REDIS_NODES",
        "",
        "Comma-separated host:port seed nodes of a Redis Cluster (mode 'cluster'); empty: "
        "APP_REDIS_HOSTNAME:APP_REDIS_PORT. The slot map is read from the first that answers.",
    )
    sentinels: str = setting(
        "APP_REDIS_SENTINELS",
        "",
        "Comma-separated host:port of the Redis Sentinels (mode 'sentinel').",
    )
    sentinel_master: str = setting(
        "APP_REDIS_SENTINEL_MASTER",
        "mymaster",
        "Name of the monitored primary the sentinels are asked for (mode 'sentinel').",
    )
    sentinel_username: str | None = setting(
        "APP_REDIS_SENTINEL_USERNAME", None, "ACL user for the sentinels, if they require one."
    )
    sentinel_password: str | None = setting(
        "APP_REDIS_SENTINEL_PASSWORD", None, "Password of the sentinels, if they require one."
    )
    tls: bool = setting("APP_REDIS_TLS", False, "Connect to Redis (and the sentinels) with TLS.")
    tls_ca_file: str | None = setting(
        "APP_REDIS_TLS_CA_FILE", None, "CA bundle to verify Redis (system CAs if unset)."
    )
    tls_cert_file: str | None = setting(
        "APP_REDIS_TLS_CERT_FILE",
        None,
        "Client certificate, for a Redis with ``tls-auth-clients yes``.",
    )
    tls_key_file: str | None = setting(
        "APP_REDIS_TLS_KEY_FILE", None, "Key of the client certificate."
    )
    tls_insecure: bool = setting(
        "APP_REDIS_TLS_INSECURE",
        False,
        "Skip Redis host name verification (the certificate is still checked against the CA).",
    )
    wait_replicas: int = setting(
        "APP_REDIS_WAIT_REPLICAS",
        0,
        "Replicas that must have a job change (WAIT) before its request is answered; 0: "
        "answer once the primary has it. With 1, a Store that was answered survives the "
        "loss of its primary when a replica is promoted.",
    )
    db: int = setting("APP_REDIS_DB", 0, "Redis database number.")
    key_prefix: str = setting("APP_REDIS_KEY_PREFIX", "microdcs", "Prefix of every Redis key.")
    dedupe_enabled: bool = setting(
        "APP_DEDUPE_ENABLED",
        True,
        "Detect duplicate events (source+id) in Redis and answer them from the stored "
        "responses. Turn off only where handlers are idempotent anyway.",
    )
    dedupe_ttl: int = setting(
        "APP_DEDUPE_TTL_SECONDS",
        86400,
        "How long a processed event id (source+id) is remembered for duplicate detection.",
    )
    dedupe_claim_seconds: float = setting(
        "APP_DEDUPE_CLAIM_SECONDS",
        15.0,
        "How long a replica's claim on an event it is processing lives (seconds). A copy "
        "of the event arriving meanwhile (on any replica) waits for the first one's "
        "responses; if the holder dies the claim expires and the copy is processed then. "
        "Keep it above the longest handling time and APP_SHUTDOWN_GRACE_SECONDS (default "
        "10 s plus 5 s): a holder still working past its claim can be overtaken by a copy.",
    )

    def __post_init__(self) -> None:
        if not self.command_timeout > 0:
            raise ConfigurationError(
                "APP_REDIS_COMMAND_TIMEOUT", "must be a positive number of seconds"
            )
        if self.mode not in REDIS_MODES:
            raise ConfigurationError("APP_REDIS_MODE", f"must be one of {', '.join(REDIS_MODES)}")
        if self.mode == "sentinel" and not self.sentinels.strip():
            raise ConfigurationError("APP_REDIS_SENTINELS", "must name a sentinel in mode sentinel")
        if self.mode == "cluster" and self.db:
            raise ConfigurationError("APP_REDIS_DB", "a Redis Cluster has only database 0")
        if self.wait_replicas < 0:
            raise ConfigurationError("APP_REDIS_WAIT_REPLICAS", "must be >= 0")
        if not self.dedupe_claim_seconds > 0:
            raise ConfigurationError("APP_DEDUPE_CLAIM_SECONDS", "must be a positive number")
        for name, text in (
            ("APP_REDIS_NODES", self.nodes),
            ("APP_REDIS_SENTINELS", self.sentinels),
        ):
            parse_addresses(text, name)

    def seed_nodes(self) -> list[tuple[str, int]]:
        """The cluster's seed nodes: ``APP_REDIS_NODES``, else hostname and port."""
        return parse_addresses(self.nodes, "APP_REDIS_NODES") or [(self.hostname, self.port)]

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return parse_addresses(self.sentinels, "APP_REDIS_SENTINELS")


def parse_addresses(text: str, setting_name: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` as pairs; a ConfigurationError naming the setting when not."""
    addresses: list[tuple[str, int]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(setting_name, f"{item!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def tls_context(config: RedisConfig) -> ssl.SSLContext | None:
    """The TLS context of ``APP_REDIS_TLS*``, or ``None`` for plain TCP."""
    return client_tls_context(
        config.tls,
        ca_file=config.tls_ca_file,
        cert_file=config.tls_cert_file,
        key_file=config.tls_key_file,
        check_hostname=not config.tls_insecure,
    )
