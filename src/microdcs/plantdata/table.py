"""The current value table of one replica: ingest, reads, staleness, and who hears changes.

It is what the rest of the runtime knows of plant data: the processor hands it data
events and tag configuration, the stale task hands it due deadlines, the SFC engine and
the web view read it (a :class:`~.contract.TagReader`), and every registered
:class:`~.contract.TagChangeListener` (the alarm manager, the SFC tag watch) is awaited
once per stored batch of changes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from microdcs.core.errors import InvalidRequestError
from microdcs.plantdata.contract import TagChange, TagChangeListener, TagSample
from microdcs.plantdata.samples import describe_refusals, parse_samples
from microdcs.plantdata.store import PlantDataStore
from microdcs.plantdata.tags import TagDefinition

__all__ = ["CurrentValueTable", "SamplesRefusedError"]

#: At most this many problems are listed in an error event (the count says the rest).
MAX_LISTED = 20


class SamplesRefusedError(InvalidRequestError):
    """A data event with bad samples: nothing of it was stored; the message names each."""

    def __init__(self, problems: Sequence[str]) -> None:
        listed = "; ".join(problems[:MAX_LISTED])
        more = len(problems) - MAX_LISTED
        super().__init__(listed + (f"; and {more} more" if more > 0 else ""))
        self.problems = list(problems)


class CurrentValueTable:
    """Plant data of every scope, through one replica."""

    def __init__(self, store: PlantDataStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.listeners: list[TagChangeListener] = []
        #: Told the scope and tags of every stored change (the retained cvt publisher).
        self.on_change: Callable[[str, Sequence[TagChange]], None] | None = None
        #: Awaited with the scope and name of a deleted tag (its retained topic goes).
        self.on_delete: Callable[[str, str], Awaitable[None]] | None = None
        #: Told the earliest stale deadline an ingest set (the stale task's wake-up).
        self.on_deadline: Callable[[float], None] | None = None
        #: Counters for the metrics endpoint.
        self.stored = 0
        self.rejected = 0
        self.stale = 0

    def add_listener(self, listener: TagChangeListener) -> None:
        """``listener.tags_changed`` is awaited after every stored batch of changes."""
        self.listeners.append(listener)

    # -- configuration --------------------------------------------------------------------
    async def put_definition(self, scope: str, definition: TagDefinition) -> None:
        await self.store.put_definition(scope, definition)

    async def delete_definition(self, scope: str, tag: str) -> None:
        await self.store.delete_definition(scope, tag)
        if self.on_delete is not None:
            await self.on_delete(scope, tag)

    # -- data -----------------------------------------------------------------------------
    async def ingest(self, scope: str, payload: Any) -> list[TagChange]:
        """Store a data event's samples (its decoded payload), all or nothing; raises
        :class:`SamplesRefusedError` naming every bad sample."""
        now = self.clock()
        tags, args, problems = parse_samples(payload, now)
        if problems:
            self.rejected += len(problems)
            raise SamplesRefusedError(problems)
        result = await self.store.ingest(scope, now, args)
        if result.refused:
            self.rejected += len(result.refused)
            raise SamplesRefusedError(describe_refusals(tags, result.refused))
        if result.earliest != math.inf and self.on_deadline is not None:
            self.on_deadline(result.earliest)
        changes = result.changes
        if changes:
            self.stored += len(changes)
            await self._tell(scope, changes)
        return changes

    async def expire(self, scope: str, now: float, lease: float = 5.0) -> list[TagChange]:
        """Turn the scope's tags whose stale deadline passed bad and stale; tell the
        listeners, then release the deadlines (a replica dying in between leaves them to
        be reported again by another once the ``lease`` ends)."""
        lease_until = now + lease
        changes = await self.store.claim_stale(scope, now, lease_until)
        if changes:
            self.stale += sum(1 for c in changes if c.sample != c.previous)
            await self._tell(scope, changes)
            await self.store.stale_reported(scope, lease_until, [c.sample.tag for c in changes])
        return changes

    async def _tell(self, scope: str, changes: Sequence[TagChange]) -> None:
        if self.on_change is not None:
            self.on_change(scope, changes)
        if len(self.listeners) == 1:
            await self.listeners[0].tags_changed(scope, changes)
        elif self.listeners:
            await asyncio.gather(*(lst.tags_changed(scope, changes) for lst in self.listeners))

    # -- reading (TagReader) --------------------------------------------------------------
    async def read(self, scope: str, tags: Sequence[str]) -> Mapping[str, TagSample]:
        return await self.store.read(scope, tags)
