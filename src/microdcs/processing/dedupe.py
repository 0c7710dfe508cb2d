"""What the pipeline needs of a duplicate registry, and the batched claim both transports use.

An event (``source`` + ``id``) is *claimed* before it is processed: one atomic command
per event that takes the registry key when it is free and otherwise returns what it
holds, i.e. the claim of another copy still being processed or the responses of a
processed one. The claim expires if its holder dies, so a crash means a later retry,
never a lost event; the record with the responses then replaces it. The registry itself
(Redis) lives in storage and satisfies :class:`EventDedupe` by its shape alone: storage
does not import processing. The claims of every event received in one event-loop
iteration leave in one pipelined write (:class:`BatchLookup`), whichever transport
brought the events.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Generic, Protocol, TypeVar

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import StorageUnavailableError

#: First pause of a copy waiting for another holder's responses, and the longest one.
FIRST_WAIT_SECONDS = 0.005
LONGEST_WAIT_SECONDS = 0.25


class EventDedupe(Protocol):
    """A registry of claimed and processed events and the responses they produced."""

    @property
    def claim_seconds(self) -> float:
        """How long a claim lives unless its holder records the responses first."""
        ...

    def key(self, source: str, event_id: str) -> str:
        """The registry key of one event; computed once per event."""
        ...

    def new_claim(self) -> bytes:
        """A claim marker no other claim (of any replica) carries."""
        ...

    def claim(self, key: str, marker: bytes) -> Awaitable[bytes | None]:
        """Claim ``key`` with ``marker`` unless it is taken: ``None`` (or ``marker``
        itself) when we hold it now, else what the key holds (see :meth:`is_claim`)."""
        ...

    def claim_many(
        self, claims: list[tuple[str, bytes]]
    ) -> Awaitable[list[bytes | BaseException | None]]:
        """:meth:`claim` of several keys sent together: each reply, or its error."""
        ...

    def is_claim(self, raw: bytes) -> bool:
        """``raw`` (what a key holds) is a claim, not a record of responses."""
        ...

    def recorded(self, raw: bytes) -> list[CloudEvent]:
        """The responses kept in a stored record."""
        ...

    def mark(self, key: str, responses: list[CloudEvent]) -> Awaitable[None]:
        """Record the event behind ``key`` as processed with ``responses`` (replaces
        the claim)."""
        ...

    def release(self, key: str, marker: bytes) -> Awaitable[None]:
        """Give up the claim ``marker`` on ``key`` (only that one), so a retry processes."""
        ...


@dataclass(slots=True)
class Prefetched:
    """An event's claim, made e.g. for a whole batch in one write."""

    key: str
    marker: bytes  # our claim marker for ``key``
    #: What ``key`` held when we claimed it: None (or ``marker``) means ours now.
    record: bytes | None = None
    #: False: the claim's reply is not known (Redis unavailable); claim again.
    answered: bool = False


class Prefetchable(Protocol):
    """Something received that carries its dedupe claim with it."""

    prefetched: Prefetched | None


class ClaimWait:
    """When a copy that found another holder's claim looks again, and when it gives up.

    The pauses grow from :data:`FIRST_WAIT_SECONDS` to :data:`LONGEST_WAIT_SECONDS`, so
    a copy of a request that takes a millisecond is answered within a few, and one of a
    slow or dead holder costs Redis four commands a second. A claim outlives its holder
    by at most the claim time, so the copy gives up only when one claim is still seen
    after that (a clock or a registry that does not expire keys); a new holder (another
    copy took over an expired claim) starts the count again.
    """

    __slots__ = ("_claim_seconds", "_delay", "_holder", "_since")

    def __init__(self, claim_seconds: float) -> None:
        self._claim_seconds = claim_seconds
        self._holder = b""
        self._since = 0.0
        self._delay = FIRST_WAIT_SECONDS

    def next_delay(self, holder: bytes, now: float) -> float | None:
        """The pause before looking again at a key held by ``holder``; None: give up."""
        if holder != self._holder:
            self._holder = holder
            self._since = now
            self._delay = FIRST_WAIT_SECONDS
        if now - self._since > self._claim_seconds + LONGEST_WAIT_SECONDS:
            return None
        delay = self._delay
        self._delay = min(delay * 2, LONGEST_WAIT_SECONDS)
        return delay


def release_soon(dedupe: EventDedupe, claim: Prefetched) -> None:
    """Release ``claim`` without awaiting, for a cancelled holder: the command is queued on
    the connection now (its reply ignored); not connected, the claim just expires."""
    reply = dedupe.release(claim.key, claim.marker)
    if isinstance(reply, asyncio.Future):
        reply.add_done_callback(_forget)
    elif inspect.iscoroutine(reply):
        reply.close()


def _forget(reply: asyncio.Future[object]) -> None:
    """Retrieve a best-effort command's outcome, so a failure is not logged as unretrieved."""
    if not reply.cancelled():
        reply.exception()


T = TypeVar("T", bound=Prefetchable)

#: Gets a claimed batch, and the first error of a claim that failed (left unanswered).
BatchDelivery = Callable[[list[T], BaseException | None], None]


class BatchLookup(Generic[T]):
    """Claims the events of every item added in one loop iteration in one write.

    ``add`` sets the item's :class:`Prefetched` key and marker at once; at the end of
    the iteration the claims go out together (``claim_many``: one ``SET ... NX GET`` per
    event, pipelined), and ``deliver`` gets the batch with each reply filled in, or left
    unanswered with the error for the claims that failed (the pipeline then claims each
    of those alone, waiting out the outage, with the same marker). No task and no
    coroutine per item: the receive path stays a plain callback.
    """

    __slots__ = ("_batch", "_dedupe", "_deliver")

    def __init__(self, dedupe: EventDedupe, deliver: BatchDelivery[T]) -> None:
        self._dedupe = dedupe
        self._deliver = deliver
        self._batch: list[T] = []

    def add(self, item: T, event: CloudEvent) -> None:
        """Claim ``event`` with the rest of this iteration's items."""
        dedupe = self._dedupe
        item.prefetched = Prefetched(dedupe.key(event.source, event.id), dedupe.new_claim())
        self._batch.append(item)
        if len(self._batch) == 1:
            asyncio.get_running_loop().call_soon(self._look_up)

    def _look_up(self) -> None:
        batch, self._batch = self._batch, []
        claims = [(p.key, p.marker) for item in batch if (p := item.prefetched) is not None]
        try:
            lookup = asyncio.ensure_future(self._dedupe.claim_many(claims))
        except Exception as error:  # cannot even send: each event is claimed alone
            self._deliver(batch, error)
            return
        lookup.add_done_callback(partial(self._looked_up, batch))

    def _looked_up(
        self, batch: list[T], lookup: asyncio.Future[list[bytes | BaseException | None]]
    ) -> None:
        if lookup.cancelled():
            self._deliver(batch, StorageUnavailableError("dedupe claim cancelled"))
            return
        error = lookup.exception()
        if error is not None:
            self._deliver(batch, error)
            return
        replies = lookup.result()
        claimed = [item.prefetched for item in batch if item.prefetched is not None]
        if len(replies) != len(claimed):
            self._deliver(batch, StorageUnavailableError("dedupe claim answered wrongly"))
            return
        first: BaseException | None = None
        for prefetched, reply in zip(claimed, replies, strict=True):
            if isinstance(reply, BaseException):
                first = first or reply
                continue
            prefetched.record = reply
            prefetched.answered = True
        self._deliver(batch, first)
