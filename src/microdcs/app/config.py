"""Typed configuration built once from ``APP_*`` environment variables.

Every setting is a dataclass field whose metadata names its variable and says what it
is for; :func:`load_config` parses and validates them all at start-up and names the
variable in every error. Nothing else in microdcs reads the environment.
"""

from __future__ import annotations

import dataclasses
import socket
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin, get_type_hints

from microdcs.alarms.options import AlarmsConfig as AlarmsConfig
from microdcs.core.errors import ConfigurationError
from microdcs.core.limits import LimitsConfig as LimitsConfig
from microdcs.core.settings import setting
from microdcs.plantdata.options import PlantDataConfig as PlantDataConfig
from microdcs.storage.options import RedisConfig as RedisConfig
from microdcs.transports.mqtt.auth import METHODS as AUTH_METHODS
from microdcs.transports.mqtt.options import MqttConfig as MqttConfig
from microdcs.transports.msgpack_rpc.options import RpcConfig as RpcConfig
from microdcs.web.options import WebConfig as WebConfig


@dataclass(frozen=True, slots=True)
class AppConfig:
    instance_id: str = setting(
        "APP_INSTANCE_ID",
        "",
        "Stable id of this replica (MQTT client id, response topic). Default: host name.",
    )
    source: str = setting(
        "APP_SOURCE", "", "CloudEvent 'source' of outgoing events. Default: microdcs/{instance_id}."
    )
    is_processor_instance: bool = setting(
        "APP_IS_PROCESSOR_INSTANCE", True, "Subscribe to and process incoming events."
    )
    is_publisher_instance: bool = setting(
        "APP_IS_PUBLISHER_INSTANCE", True, "Take part in the retained-topic publisher role."
    )
    workers: int = setting("APP_WORKERS", 64, "Concurrent message handlers per transport.")
    queue_size: int = setting(
        "APP_QUEUE_SIZE", 512, "Bounded queue of received messages waiting for a worker."
    )
    shutdown_grace: float = setting(
        "APP_SHUTDOWN_GRACE_SECONDS", 10.0, "Time in-flight messages get to finish on SIGTERM."
    )
    storage_retry_seconds: float = setting(
        "APP_STORAGE_RETRY_SECONDS",
        30.0,
        "How long a message waits for Redis before it gets a 'storage_unavailable' error.",
    )
    scope_levels: int = setting(
        "APP_TOPIC_SCOPE_LEVELS", 3, "Maximum scope levels between topic prefix and intent."
    )
    response_expiry_seconds: int = setting(
        "APP_RESPONSE_EXPIRY_SECONDS",
        60,
        "Message Expiry (s) of a response to a request that carries none, for processors"
        " without their own 'response_expiry_seconds' (a request with an expiry gets what"
        " is left of it); 0 = responses never expire.",
    )
    jobs_prefix: str = setting(
        "APP_JOBS_TOPIC_PREFIX", "app/jobs", "Topic prefix of the job management processor."
    )
    jobs_response_retention: int = setting(
        "APP_JOBS_RESPONSE_RETENTION_SECONDS",
        604800,
        "How long the job response of a cancelled or cleared job stays queryable.",
    )
    jobs_retained_expiry: int = setting(
        "APP_JOBS_RETAINED_EXPIRY_SECONDS",
        172800,
        "Message Expiry Interval (s) of the retained job topics (order, result, index).",
    )
    jobs_changes_maxlen: int = setting(
        "APP_JOBS_CHANGES_MAXLEN",
        100000,
        "Approximate length each scope's job change stream is trimmed to.",
    )
    jobs_max_downloadable: int = setting(
        "APP_JOBS_MAX_DOWNLOADABLE",
        1000,
        "Job list limit of a scope until the MES configures one (config.jobacceptance); "
        "0 = unlimited. Stops a runaway MES from filling Redis.",
    )
    jobs_close_after_seconds: float = setting(
        "APP_JOBS_CLOSE_AFTER_SECONDS",
        3600.0,
        "An Ended/Completed job becomes Ended/Closed once the MES fetched its job response, "
        "or after this time; 0 = only when fetched.",
    )
    jobs_dispatch_poll_seconds: float = setting(
        "APP_JOBS_DISPATCH_POLL_SECONDS",
        1.0,
        "How often the station dispatcher looks for slots freed and jobs queued by other "
        "replicas; StartTimes and Close times it knows of are met on time, without polling.",
    )
    publisher_lease_seconds: float = setting(
        "APP_PUBLISHER_LEASE_SECONDS",
        10.0,
        "Lease time of the publisher role: a dead holder is replaced after at most this.",
    )
    publisher_poll_seconds: float = setting(
        "APP_PUBLISHER_POLL_SECONDS",
        0.1,
        "How often the publisher looks for changes made by other replicas.",
    )
    publisher_interval_seconds: float = setting(
        "APP_PUBLISHER_INTERVAL_SECONDS",
        0.1,
        "Least time between two publishing passes: changes made meanwhile are coalesced, so "
        "a scope's state-index is published at most once per interval, whatever the load.",
    )
    publisher_index_entries_per_second: int = setting(
        "APP_PUBLISHER_INDEX_ENTRIES_PER_SECOND",
        20_000,
        "Pacing of a large scope's state-index, which lists all its jobs: at most this many "
        "entries a second per scope (a 10,000-job scope every 0.5 s; smaller ones every "
        "interval), so its cost stays flat as jobs accumulate. 0: no pacing.",
    )
    equipment_prefix: str = setting(
        "APP_EQUIPMENT_TOPIC_PREFIX", "app/equipment", "Topic prefix of southbound equipment."
    )
    sfc_engine_enabled: bool = setting(
        "APP_SFC_ENGINE_ENABLED", True, "Run the SFC recipe engine task on this replica."
    )
    sfc_claim_idle_seconds: float = setting(
        "APP_SFC_CLAIM_IDLE_SECONDS",
        3.0,
        "Idle time after which another replica claims (XAUTOCLAIM) an unacknowledged "
        "engine work item, e.g. of a replica that died.",
    )
    sfc_timer_poll_seconds: float = setting(
        "APP_SFC_TIMER_POLL_SECONDS", 0.05, "How often each replica looks for due SFC timers."
    )
    sfc_command_resend_seconds: float = setting(
        "APP_SFC_COMMAND_RESEND_SECONDS",
        5.0,
        "A command still unanswered after this is sent again with the same correlation id.",
    )
    sfc_step_events: bool = setting(
        "APP_SFC_STEP_EVENTS",
        True,
        "Publish a step progress event (sfc.step.v1) on the job's scope events topic for "
        "every step, transition, action and timer change of a recipe.",
    )
    sfc_step_events_qos: int = setting(
        "APP_SFC_STEP_EVENTS_QOS",
        0,
        "MQTT QoS of step progress events (0 or 1). 0: no acknowledgement on either side of "
        "the broker, the cheaper choice for a stream the job's retained step state and "
        "status events back up; 1: queued across reconnects until acknowledged.",
    )
    sfc_step_state_interval_seconds: float = setting(
        "APP_SFC_STEP_STATE_INTERVAL_SECONDS",
        0.1,
        "Least time between two publications of a job's retained step state "
        "(``{jobs prefix}/{scope}/steps/{job}``): steps passed meanwhile are coalesced into "
        "the latest state (the step events carry each one); 0 publishes every change.",
    )
    sfc_scope_scan_seconds: float = setting(
        "APP_SFC_SCOPE_SCAN_SECONDS", 1.0, "How often the engine looks for new scopes."
    )
    sfc_work_maxlen: int = setting(
        "APP_SFC_WORK_MAXLEN", 100000, "Approximate length each scope's work stream is trimmed to."
    )
    greeting_enabled: bool = setting(
        "APP_GREETING_ENABLED",
        False,
        "Bind the greeting example (an echo used by the README, the demo and the echo "
        "benchmark); a production replica runs only job management, the engine and the "
        "processors given with --processor.",
    )
    greeting_prefix: str = setting(
        "APP_GREETING_TOPIC_PREFIX", "app/greeting", "Topic prefix of the greeting example."
    )
    log_level: str = setting("APP_LOG_LEVEL", "INFO", "Log level (DEBUG, INFO, WARNING, ERROR).")
    log_format: str = setting(
        "APP_LOG_FORMAT",
        "text",
        "Log format on stderr: 'text' for people, 'json' (one object per line, with trace "
        "ids) for log collectors.",
    )
    http_host: str = setting(
        "APP_HTTP_HOST", "0.0.0.0", "Address of the /healthz, /readyz and /metrics endpoint."
    )
    http_port: int = setting(
        "APP_HTTP_PORT",
        8080,
        "Port of the /healthz, /readyz and /metrics (Prometheus) endpoint; 0 turns it off.",
    )
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    rpc: RpcConfig = field(default_factory=RpcConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    alarms: AlarmsConfig = field(default_factory=AlarmsConfig)
    plantdata: PlantDataConfig = field(default_factory=PlantDataConfig)
    web: WebConfig = field(default_factory=WebConfig)

    @property
    def resolved_instance_id(self) -> str:
        return self.instance_id or socket.gethostname()

    @property
    def resolved_source(self) -> str:
        return self.source or f"microdcs/{self.resolved_instance_id}"


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(env: str, raw: str, annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        if raw == "":
            return None
        annotation = inner[0]
    if annotation is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigurationError(env, f"expected true/false, got {raw!r}")
    if annotation is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(env, f"expected an integer, got {raw!r}") from None
    if annotation is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigurationError(env, f"expected a number, got {raw!r}") from None
    return raw


def _build(cls: type[Any], environ: Mapping[str, str]) -> Any:
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        env = f.metadata.get("env")
        if env is None:
            values[f.name] = _build(hints[f.name], environ)
        elif env in environ:
            values[f.name] = _convert(env, environ[env], hints[f.name])
    return cls(**values)


def iter_settings(cls: type[Any] = AppConfig) -> Iterator[tuple[str, Any, str, Any]]:
    """``(variable, type, doc, default)`` of every setting, for documentation."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        env = f.metadata.get("env")
        if env is None:
            yield from iter_settings(hints[f.name])
        else:
            yield env, hints[f.name], f.metadata["doc"], f.default


def to_environment(config: Any) -> dict[str, str]:
    """The ``APP_*`` variables that reproduce ``config`` (unset optionals left out)."""
    result: dict[str, str] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        env = f.metadata.get("env")
        if env is None:
            result.update(to_environment(value))
        elif value is not None:
            result[env] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return result


def _valid_topic_prefix(prefix: str) -> bool:
    return (
        bool(prefix)
        and not prefix.startswith(("/", "$"))
        and not prefix.endswith("/")
        and "//" not in prefix
        and not any(c in prefix for c in "+#\x00")
    )


def _valid_topic_filter(pattern: str) -> bool:
    levels = pattern.split("/")
    for index, level in enumerate(levels):
        if level in ("+", "#"):
            if level == "#" and index != len(levels) - 1:
                return False
        elif "+" in level or "#" in level or "\x00" in level:
            return False
    return True


def _disjoint(prefix: str, others: tuple[str, ...]) -> bool:
    """Neither ``prefix`` nor any of ``others`` lies below (or is) the other: their
    ``{prefix}/{scope}/{intent}`` subscriptions never take each other's messages."""
    return all(
        prefix != other
        and not prefix.startswith(other + "/")
        and not other.startswith(prefix + "/")
        for other in others
    )


def validate(config: AppConfig) -> None:
    """Range checks that a type alone cannot express."""
    checks: list[tuple[str, bool, str]] = [
        ("APP_MQTT_PORT", 0 < config.mqtt.port < 65536, "must be 1..65535"),
        ("APP_REDIS_PORT", 0 < config.redis.port < 65536, "must be 1..65535"),
        ("APP_MQTT_RECEIVE_MAXIMUM", 0 < config.mqtt.receive_maximum < 65536, "must be 1..65535"),
        (
            "APP_MQTT_TOPIC_ALIAS_MAXIMUM",
            0 <= config.mqtt.topic_alias_maximum < 65536,
            "must be 0..65535",
        ),
        (
            "APP_MQTT_WILL_TOPIC",
            not any(c in config.mqtt.will_topic for c in "+#\x00"),
            "must be a topic name (no wildcards)",
        ),
        ("APP_MQTT_WILL_QOS", config.mqtt.will_qos in (0, 1, 2), "must be 0, 1 or 2"),
        ("APP_SFC_STEP_EVENTS_QOS", config.sfc_step_events_qos in (0, 1), "must be 0 or 1"),
        (
            "APP_SFC_STEP_STATE_INTERVAL_SECONDS",
            config.sfc_step_state_interval_seconds >= 0,
            "must be >= 0",
        ),
        ("APP_MQTT_WILL_DELAY", 0 <= config.mqtt.will_delay < 2**32, "must be 0..4294967295"),
        (
            "APP_MQTT_AUTH_METHOD",
            config.mqtt.auth_method in AUTH_METHODS,
            f"must be one of {', '.join(repr(m) for m in AUTH_METHODS)}",
        ),
        ("APP_MQTT_SESSION_EXPIRY", config.mqtt.session_expiry > 0, "must be > 0"),
        ("APP_MQTT_KEEPALIVE", config.mqtt.keepalive > 0, "must be > 0"),
        ("APP_MQTT_PUBLISH_ATTEMPTS", config.mqtt.publish_attempts > 0, "must be > 0"),
        (
            "APP_MQTT_MAX_UNACKED_PUBLISHES",
            1 < config.mqtt.max_unacked_publishes <= 60000,
            "must be 2..60000",
        ),
        (
            "APP_MQTT_RESPONSE_TOPIC_ALLOW",
            all(
                _valid_topic_filter(p.strip())
                for p in config.mqtt.response_topic_allow.split(",")
                if p.strip()
            ),
            "must be comma-separated MQTT topic filters",
        ),
        ("APP_MQTT_MAX_PAYLOAD_BYTES", config.mqtt.max_payload_bytes > 0, "must be > 0"),
        ("APP_WORKERS", config.workers > 0, "must be > 0"),
        ("APP_RPC_PORT", 0 <= config.rpc.port < 65536, "must be 0..65535"),
        ("APP_RPC_MAX_BUFFER_BYTES", config.rpc.max_buffer_bytes > 0, "must be > 0"),
        (
            "APP_RPC_MAX_CONCURRENT_REQUESTS",
            config.rpc.max_concurrent_requests > 0,
            "must be > 0",
        ),
        ("APP_RPC_MAX_CONNECTIONS", config.rpc.max_connections > 0, "must be > 0"),
        ("APP_RPC_AUTH_TIMEOUT_SECONDS", config.rpc.auth_timeout > 0, "must be > 0"),
        ("APP_RPC_IDLE_TIMEOUT_SECONDS", config.rpc.idle_timeout >= 0, "must be >= 0 (0: off)"),
        ("APP_RPC_AUTH_BACKOFF_SECONDS", config.rpc.auth_backoff > 0, "must be > 0"),
        (
            "APP_RPC_AUTH_BACKOFF_MAX_SECONDS",
            config.rpc.auth_backoff_max >= config.rpc.auth_backoff,
            "must be >= APP_RPC_AUTH_BACKOFF_SECONDS",
        ),
        ("APP_QUEUE_SIZE", config.queue_size > 0, "must be > 0"),
        ("APP_SHUTDOWN_GRACE_SECONDS", config.shutdown_grace >= 0, "must be >= 0"),
        ("APP_TOPIC_SCOPE_LEVELS", 0 <= config.scope_levels <= 16, "must be 0..16"),
        (
            "APP_RESPONSE_EXPIRY_SECONDS",
            0 <= config.response_expiry_seconds < 2**32,
            "must be 0..4294967295",
        ),
        ("APP_DEDUPE_TTL_SECONDS", config.redis.dedupe_ttl > 0, "must be > 0"),
        ("APP_JOBS_RESPONSE_RETENTION_SECONDS", config.jobs_response_retention > 0, "must be > 0"),
        ("APP_JOBS_RETAINED_EXPIRY_SECONDS", config.jobs_retained_expiry > 0, "must be > 0"),
        ("APP_JOBS_CHANGES_MAXLEN", config.jobs_changes_maxlen > 0, "must be > 0"),
        ("APP_JOBS_MAX_DOWNLOADABLE", config.jobs_max_downloadable >= 0, "must be >= 0"),
        ("APP_JOBS_CLOSE_AFTER_SECONDS", config.jobs_close_after_seconds >= 0, "must be >= 0"),
        ("APP_JOBS_DISPATCH_POLL_SECONDS", config.jobs_dispatch_poll_seconds > 0, "must be > 0"),
        ("APP_PUBLISHER_LEASE_SECONDS", config.publisher_lease_seconds > 0, "must be > 0"),
        ("APP_PUBLISHER_POLL_SECONDS", config.publisher_poll_seconds > 0, "must be > 0"),
        (
            "APP_PUBLISHER_INTERVAL_SECONDS",
            config.publisher_interval_seconds >= 0,
            "must be >= 0",
        ),
        (
            "APP_PUBLISHER_INDEX_ENTRIES_PER_SECOND",
            config.publisher_index_entries_per_second >= 0,
            "must be >= 0",
        ),
        (
            "APP_MQTT_SHARED_SUBSCRIPTION",
            not any(c in config.mqtt.shared_subscription for c in "/+#"),
            "must be a name without / + # (empty: plain subscriptions)",
        ),
        (
            "APP_MQTT_INGRESS_LEASE_SECONDS",
            config.mqtt.ingress_lease_seconds > 0,
            "must be > 0",
        ),
        (
            "APP_INSTANCE_ID",
            not any(c in config.resolved_instance_id for c in "/+#"),
            "must not contain / + #",
        ),
    ]
    checks.append(
        (
            "APP_LOG_LEVEL",
            config.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
            "must be DEBUG, INFO, WARNING, ERROR or CRITICAL",
        )
    )
    for env, prefix in (
        ("APP_JOBS_TOPIC_PREFIX", config.jobs_prefix),
        ("APP_EQUIPMENT_TOPIC_PREFIX", config.equipment_prefix),
        ("APP_GREETING_TOPIC_PREFIX", config.greeting_prefix),
        ("APP_PLANT_TOPIC_PREFIX", config.plantdata.topic_prefix),
        ("APP_MQTT_RESPONSE_TOPIC_BASE", config.mqtt.response_topic_base),
    ):
        checks.append(
            (
                env,
                _valid_topic_prefix(prefix),
                "must be a topic without + # or $, and without a leading or trailing /",
            )
        )
    checks += [
        ("APP_LOG_FORMAT", config.log_format in ("text", "json"), "must be text or json"),
        ("APP_HTTP_PORT", 0 <= config.http_port < 65536, "must be 0..65535 (0: off)"),
        ("APP_REDIS_DB", config.redis.db >= 0, "must be >= 0"),
        ("APP_MQTT_RECONNECT_MAX_SECONDS", config.mqtt.reconnect_max_seconds > 0, "must be > 0"),
        ("APP_STORAGE_RETRY_SECONDS", config.storage_retry_seconds >= 0, "must be >= 0"),
        # Limits: a JobOrderID of 4096 characters still fits a topic (<= 65535 bytes).
        ("APP_LIMIT_ID_LENGTH", 0 < config.limits.id_length <= 4096, "must be 1..4096"),
        (
            "APP_LIMIT_ATTRIBUTE_LENGTH",
            0 < config.limits.attribute_length <= 16383,
            "must be 1..16383 (an MQTT string holds 65535 bytes)",
        ),
        ("APP_LIMIT_NESTING_DEPTH", 0 < config.limits.nesting_depth <= 250, "must be 1..250"),
        ("APP_LIMIT_LOG_VALUE_CHARS", config.limits.log_value_chars >= 16, "must be >= 16"),
    ]
    checks.append(
        (
            "APP_PLANT_TOPIC_PREFIX",
            _disjoint(
                config.plantdata.topic_prefix,
                (config.alarms.topic_prefix, config.jobs_prefix, config.equipment_prefix),
            ),
            "must not equal or contain (or lie below) the alarm, job or equipment prefix",
        )
    )
    checks.append(
        (
            "APP_PLANT_CVT_PUBLISH_INTERVAL_SECONDS",
            config.plantdata.cvt_publish_interval_seconds >= 0,
            "must be >= 0",
        )
    )
    checks.append(
        ("APP_PLANT_STALE_RESCAN_SECONDS", config.plantdata.stale_rescan_seconds > 0, "must be > 0")
    )
    web = config.web
    checks.append(("APP_WEB_SESSION_HOURS", web.session_hours > 0, "must be > 0"))
    checks.append(
        (
            "APP_WEB_SESSION_SECRET",
            web.session_secret is None or len(web.session_secret) >= 32,
            "must be at least 32 characters",
        )
    )
    for env, ok, message in checks:
        if not ok:
            raise ConfigurationError(env, message)
    if bool(config.rpc.tls_cert_file) != bool(config.rpc.tls_key_file):
        raise ConfigurationError(
            "APP_RPC_TLS_KEY_FILE", "APP_RPC_TLS_CERT_FILE and APP_RPC_TLS_KEY_FILE go together"
        )
    if config.mqtt.tls_cert_file and not config.mqtt.tls_key_file:
        raise ConfigurationError("APP_MQTT_TLS_KEY_FILE", "required with APP_MQTT_TLS_CERT_FILE")


def load_config(environ: Mapping[str, str]) -> AppConfig:
    """Parse and validate the configuration; raises :class:`ConfigurationError`."""
    config: AppConfig = _build(AppConfig, environ)
    validate(config)
    return config
