"""Wire the capability metadata: every MQTT binding announced, a Redis replica roster.

See :mod:`microdcs.processing.metadata` for when a description is published and removed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from microdcs.app.application import AdditionalTask, Application
from microdcs.app.config import AppConfig
from microdcs.processing.metadata import ROSTER_SECONDS, Announced, MetadataAnnouncer
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.metadata import MqttMetadataOutlet


class RedisRoster:
    """Per prefix, a sorted set of replica ids scored by when their membership expires.

    Leaving is ``ZREM`` then a count of the live members: of two replicas leaving at
    once, each count follows its own removal, so the later count sees neither and at
    least one of them removes the metadata (never none).
    """

    def __init__(self, store: RedisStore, instance_id: str, seconds: float) -> None:
        self._store = store
        self._member = instance_id
        self._ms = max(1, int(seconds * 1000))

    def _key(self, prefix: str) -> str:
        return self._store.key("metadata", "replicas", prefix)

    async def refresh(self, prefixes: Sequence[str]) -> None:
        now = int(time.time() * 1000)
        commands: list[tuple[object, ...]] = []
        for prefix in prefixes:
            key = self._key(prefix)
            commands += [
                ("ZADD", key, now + self._ms, self._member),
                ("ZREMRANGEBYSCORE", key, "-inf", now),
                ("PEXPIRE", key, 2 * self._ms),
            ]
        for reply in await self._store.execute_many(commands):
            if isinstance(reply, Exception):
                raise reply

    async def leave(self, prefix: str) -> bool:
        key = self._key(prefix)
        await self._store.execute("ZREM", key, self._member)
        live = await self._store.execute("ZCOUNT", key, f"({int(time.time() * 1000)}", "+inf")
        return int(live) == 0


def wire_metadata(
    config: AppConfig, store: RedisStore, mqtt: MqttHandler, app: Application
) -> MetadataAnnouncer:
    """Announce every processor bound to ``mqtt`` (call it once all are bound).

    Only processing replicas announce: a replica that takes no requests offers nothing.
    """
    announcer = MetadataAnnouncer(
        [Announced(b.processor, MqttMetadataOutlet(mqtt, b.layout)) for b in mqtt.bindings],
        RedisRoster(store, config.resolved_instance_id, ROSTER_SECONDS),
        source=config.resolved_source,
        remove_when_last=config.mqtt.end_session_on_shutdown,
    )
    if config.is_processor_instance:
        mqtt.session_listeners.append(lambda _session_present: announcer.republish())
        app.add_task(AdditionalTask("metadata", announcer.run))
    return announcer
