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
import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson

from microdcs.core.errors import ConfigurationError, InputError, MicroDCSError
from microdcs.plantdata.store import PlantDataStore
from microdcs.plantdata.tags import TagDefinition, definition_from_config
from microdcs.storage.outage import OutageLog
from microdcs_models.plant_tag_config import PlantTagConfig

__all__ = ["TagFileLoader", "read_tag_file"]

logger = logging.getLogger(__name__)
VARIABLE = "APP_PLANT_TAGS_FILE"


def _definitions(entries: object) -> tuple[list[TagDefinition], list[str]]:
    if not isinstance(entries, list):
        return [], ["a list of tags is required"]
    definitions: list[TagDefinition] = []
    problems: list[str] = []
    for i, entry in enumerate(entries):
        try:
            definitions.append(definition_from_config(PlantTagConfig.from_raw(entry)))
        except InputError as exc:
            problems.append(f"[{i}]: {exc}")
    return definitions, problems


def read_tag_file(path: str) -> dict[str, list[TagDefinition]]:
    """The definitions per scope; a :class:`ConfigurationError` names every problem."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigurationError(VARIABLE, f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(VARIABLE, f"{path} is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigurationError(VARIABLE, f"{path}: an object of scope -> list of tags")
    scopes: dict[str, list[TagDefinition]] = {}
    problems: list[str] = []
    for scope, entries in data.items():
        if not scope.strip("/"):
            problems.append("a scope name must not be empty")
            continue
        definitions, bad = _definitions(entries)
        scopes[scope.strip("/").replace("/", ".")] = definitions
        problems += (f"scope {scope!r} {p}" for p in bad)
    if problems:
        raise ConfigurationError(VARIABLE, f"{path}: " + "; ".join(problems))
    return scopes


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
        while not shutdown.is_set():
            try:
                await self.store_all()
                self.outage.recovered()
                return
            except MicroDCSError as exc:
                delay = self.outage.failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), timeout=delay)

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
