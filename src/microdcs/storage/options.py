"""Options of the Redis connections, declared next to the storage code that reads them.

The app's configuration composes this dataclass and fills it from the environment once;
storage takes it as a plain value and never imports the app.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.core.errors import ConfigurationError
from microdcs.core.settings import setting


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

    def __post_init__(self) -> None:
        if not self.command_timeout > 0:
            raise ConfigurationError(
                "APP_REDIS_COMMAND_TIMEOUT", "must be a positive number of seconds"
            )
