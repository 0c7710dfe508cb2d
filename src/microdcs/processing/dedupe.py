"""What the pipeline needs of a duplicate registry, and the batched lookup both transports use.

The registry itself (Redis) lives in storage and satisfies :class:`EventDedupe` by its
shape alone: storage does not import processing. The lookup of every event received in
one event-loop iteration goes out as one command (:class:`BatchLookup`), whichever
transport brought the events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Generic, Protocol, TypeVar

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import StorageUnavailableError


class EventDedupe(Protocol):
    """A registry of processed events (``source`` + ``id``) and the responses they produced."""

    def key(self, source: str, event_id: str) -> str:
        """The registry key of one event; computed once per event."""
        ...

    def lookup(self, key: str) -> Awaitable[list[CloudEvent] | None]:
        """The responses of an already processed event, or ``None`` if it is new."""
        ...

    def fetch_many(self, keys: list[str]) -> Awaitable[list[bytes | None]]:
        """The stored records of several keys in one command, for :meth:`recorded`."""
        ...

    def recorded(self, raw: bytes | None) -> list[CloudEvent] | None:
        """The responses kept in a stored record, ``None`` for no record (a new event)."""
        ...

    def mark(self, key: str, responses: list[CloudEvent]) -> Awaitable[None]:
        """Record the event behind ``key`` as processed with ``responses``."""
        ...


@dataclass(slots=True)
class Prefetched:
    """A dedupe lookup already made, e.g. for a whole batch in one command."""

    key: str
    record: bytes | None  # what the registry holds under ``key``: None for a new event


class Prefetchable(Protocol):
    """Something received that carries its dedupe lookup with it."""

    prefetched: Prefetched | None


T = TypeVar("T", bound=Prefetchable)

#: Gets a looked-up batch, and the error that made the lookup fail (records left unset).
BatchDelivery = Callable[[list[T], BaseException | None], None]


class BatchLookup(Generic[T]):
    """Looks up the records of every item added in one loop iteration in one command.

    ``add`` sets the item's :class:`Prefetched` key at once; at the end of the iteration
    one ``fetch_many`` goes out, and ``deliver`` gets the batch with the records filled
    in, or with ``prefetched`` reset to ``None`` and the error if the lookup failed (the
    pipeline then looks up each event alone, waiting out the outage). No task and no
    coroutine per item: the receive path stays a plain callback.
    """

    __slots__ = ("_batch", "_dedupe", "_deliver")

    def __init__(self, dedupe: EventDedupe, deliver: BatchDelivery[T]) -> None:
        self._dedupe = dedupe
        self._deliver = deliver
        self._batch: list[T] = []

    def add(self, item: T, event: CloudEvent) -> None:
        """Look ``event``'s record up with the rest of this iteration's items."""
        item.prefetched = Prefetched(self._dedupe.key(event.source, event.id), None)
        self._batch.append(item)
        if len(self._batch) == 1:
            asyncio.get_running_loop().call_soon(self._look_up)

    def _look_up(self) -> None:
        batch, self._batch = self._batch, []
        keys = [item.prefetched.key for item in batch if item.prefetched is not None]
        try:
            lookup = asyncio.ensure_future(self._dedupe.fetch_many(keys))
        except Exception as error:  # cannot even send: each event is looked up alone
            self._failed(batch, error)
            return
        lookup.add_done_callback(partial(self._looked_up, batch))

    def _looked_up(self, batch: list[T], lookup: asyncio.Future[list[bytes | None]]) -> None:
        if lookup.cancelled():
            self._failed(batch, StorageUnavailableError("dedupe lookup cancelled"))
            return
        error = lookup.exception()
        if error is not None:
            self._failed(batch, error)
            return
        records = lookup.result()
        if len(records) != len(batch):
            self._failed(batch, StorageUnavailableError("dedupe lookup answered wrongly"))
            return
        for item, record in zip(batch, records, strict=True):
            if item.prefetched is not None:
                item.prefetched.record = record
        self._deliver(batch, None)

    def _failed(self, batch: list[T], error: BaseException) -> None:
        for item in batch:
            item.prefetched = None
        self._deliver(batch, error)
