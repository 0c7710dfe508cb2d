"""The ``APP_RPC_*`` settings of the MessagePack-RPC server.

Declared by the transport that reads them; the app's configuration composes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.core.settings import setting


@dataclass(frozen=True, slots=True)
class RpcConfig:
    enabled: bool = setting(
        "APP_RPC_ENABLED", False, "Serve MessagePack-RPC for sidecar containers."
    )
    host: str = setting("APP_RPC_HOST", "127.0.0.1", "Address the MessagePack-RPC server binds.")
    port: int = setting("APP_RPC_PORT", 9090, "MessagePack-RPC TCP port.")
    tls_cert_file: str | None = setting(
        "APP_RPC_TLS_CERT_FILE", None, "Server certificate; TLS is on when set."
    )
    tls_key_file: str | None = setting("APP_RPC_TLS_KEY_FILE", None, "Server private key.")
    tls_client_ca_file: str | None = setting(
        "APP_RPC_TLS_CLIENT_CA_FILE", None, "CA for client certificates; required when set."
    )
    token: str | None = setting(
        "APP_RPC_TOKEN", None, "Shared secret clients must present (authenticate) when set."
    )
    max_buffer_bytes: int = setting(
        "APP_RPC_MAX_BUFFER_BYTES",
        1_048_576,
        "Per-connection limit in bytes, each way: a larger incoming frame closes the "
        "connection; more unsent output pauses reading, and a client that does not read "
        "pushed events beyond it is disconnected.",
    )
    max_concurrent_requests: int = setting(
        "APP_RPC_MAX_CONCURRENT_REQUESTS",
        64,
        "Requests one client may have in progress; reading pauses beyond it.",
    )
    tokens_file: str | None = setting(
        "APP_RPC_TOKENS_FILE",
        None,
        "JSON file of per-sidecar tokens: {name: {token, scopes}}; a sidecar may publish and "
        "receive only events whose subject is within its scopes ('*': all). See "
        "docs/sidecar.md. APP_RPC_TOKEN, when also set, keeps acting on all scopes.",
    )
    max_connections: int = setting(
        "APP_RPC_MAX_CONNECTIONS",
        256,
        "Open connections the server keeps; a connection beyond it is closed at once "
        "(logged once per burst, counted), so idle sockets cannot exhaust file descriptors.",
    )
    auth_timeout: float = setting(
        "APP_RPC_AUTH_TIMEOUT_SECONDS",
        5.0,
        "With a token required: a connection not authenticated within it is closed.",
    )
    idle_timeout: float = setting(
        "APP_RPC_IDLE_TIMEOUT_SECONDS",
        300.0,
        "A connection that sends nothing for this long (and has no request in progress) "
        "is closed; sidecars send a heartbeat more often. 0: off.",
    )
    auth_backoff: float = setting(
        "APP_RPC_AUTH_BACKOFF_SECONDS",
        1.0,
        "After a wrong token, authenticate from the same peer address is refused for this "
        "long, doubling with each further failure up to APP_RPC_AUTH_BACKOFF_MAX_SECONDS.",
    )
    auth_backoff_max: float = setting(
        "APP_RPC_AUTH_BACKOFF_MAX_SECONDS",
        60.0,
        "Upper bound of the failed-token back-off of one peer address.",
    )
