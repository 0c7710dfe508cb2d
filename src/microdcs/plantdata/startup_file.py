"""Tag definitions from a file read at start-up (``APP_PLANT_TAGS_FILE``).

The file is JSON: an object mapping each scope (``line1``, ``site/area/line1``) to a list
of tag objects with the wire names of ``...config.tag.v1`` (``Name``, ``DataType``,
``Unit``, ``Deadband``, ``StaleTimeout``, ``Description``). It is parsed before the
runtime connects, so a typo stops the start with every bad entry named; storing it then
runs as a task that retries while Redis is away. A definition already stored with the
same content is left alone; definitions stored only in Redis (a PUT over MQTT) are kept:
the file adds and updates, it never deletes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import orjson

from microdcs.core.errors import InputError, InvalidRequestError
from microdcs.core.startupfile import read_scoped_file
from microdcs.plantdata.store import PlantDataStore
from microdcs.plantdata.tags import TagDefinition, definition_from_config
from microdcs.storage.outage import OutageLog, retry_until_done
from microdcs_models.plant_tag_config import PlantTagConfig

__all__ = ["TagFileLoader", "read_tag_file"]

logger = logging.getLogger(__name__)
VARIABLE = "APP_PLANT_TAGS_FILE"


def _definitions(entries: object) -> list[TagDefinition]:
    """The tags of one scope's list; an :class:`InputError` names each bad entry."""
    if not isinstance(entries, list):
        raise InvalidRequestError("a list of tags is required")
    definitions: list[TagDefinition] = []
    problems: list[str] = []
    for i, entry in enumerate(entries):
        try:
            definitions.append(definition_from_config(PlantTagConfig.from_raw(entry)))
        except InputError as exc:
            problems.append(f"[{i}]: {exc}")
    if problems:
        raise InvalidRequestError("; ".join(problems))
    return definitions


def read_tag_file(path: str) -> dict[str, list[TagDefinition]]:
    """The definitions per scope; a :class:`ConfigurationError` names every problem."""
    return read_scoped_file(path, VARIABLE, _definitions, "tags")


class TagFileLoader:
    """Stores the file's definitions once, retrying until Redis takes them."""

    def __init__(
        self, store: PlantDataStore, scopes: Mapping[str, Sequence[TagDefinition]]
    ) -> None:
        self.store = store
        self.scopes = scopes
        self.stored = 0
        self.outage = OutageLog(logger, "storing the tag file")

    async def run(self, shutdown: asyncio.Event) -> None:
        await retry_until_done(self.store_all, self.outage, shutdown)

    async def store_all(self) -> None:
        for scope, definitions in self.scopes.items():
            stored = await self.store.definitions(scope)
            for definition in definitions:
                data = orjson.dumps(definition.to_config().to_raw())
                if stored.get(definition.name) != data:
                    await self.store.put_definition(scope, definition)
                    self.stored += 1
        if self.stored:
            logger.info("tag file: %d definition(s) stored", self.stored)
