"""Alarm definitions from a file read at start-up (``APP_ALARMS_FILE``).

The file is JSON: an object mapping each scope (``line1``, ``site/area/line1``) to a list
of alarm objects with the wire names of ``...config.alarm.v1`` (``ID``, ``Tag``, ``Kind``,
``Setpoint``, ...). It is parsed before the runtime connects, so a typo stops the start
with every bad entry named; storing it then runs as a task that retries while Redis is
away. A definition already stored with the same content is left alone (replicas that all
start with the file do not bump the scope's version each time); definitions stored only
in Redis, by a ``PUT`` over MQTT, are kept: the file adds and updates, it never deletes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from microdcs.alarms.codec import definition_bytes
from microdcs.alarms.definitions import AlarmDefinition, definitions_from_data
from microdcs.alarms.store import AlarmStore
from microdcs.core.startupfile import read_scoped_file
from microdcs.storage.outage import OutageLog, retry_until_done

__all__ = ["AlarmFileLoader", "read_alarm_file"]

logger = logging.getLogger(__name__)
VARIABLE = "APP_ALARMS_FILE"


def read_alarm_file(path: str) -> dict[str, list[AlarmDefinition]]:
    """The definitions per scope; a :class:`ConfigurationError` names every problem."""
    return read_scoped_file(path, VARIABLE, definitions_from_data, "alarms")


class AlarmFileLoader:
    """Stores the file's definitions once, retrying until Redis takes them."""

    def __init__(self, store: AlarmStore, scopes: Mapping[str, Sequence[AlarmDefinition]]) -> None:
        self.store = store
        self.scopes = scopes
        self.stored = 0
        self.outage = OutageLog(logger, "storing the alarm file")

    async def run(self, shutdown: asyncio.Event) -> None:
        await retry_until_done(self.store_all, self.outage, shutdown)

    async def store_all(self) -> None:
        for scope, definitions in self.scopes.items():
            _, stored = await self.store.definitions(scope)
            for definition in definitions:
                data = definition_bytes(definition)
                if stored.get(definition.id) != data:
                    await self.store.put_definition(scope, definition.id, data)
                    self.stored += 1
        if self.stored:
            logger.info("alarm file: %d definition(s) stored", self.stored)
