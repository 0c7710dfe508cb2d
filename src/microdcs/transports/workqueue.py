"""The hand-off between a transport's receive callback and its pool of workers."""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class WorkQueue(Generic[T]):
    """First-in first-out items for a pool of worker tasks, with :meth:`join` for draining.

    The interface of :class:`asyncio.Queue` that the workers need, with less work per
    item: :meth:`put` hands an item straight to an idle worker's future, and no loop is
    looked up per call (on Python 3.11 every lookup is a ``getpid`` system call). Capacity
    is bounded by the transport (MQTT Receive Maximum), not here.
    """

    def __init__(self) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._idle: collections.deque[asyncio.Future[T]] = collections.deque()
        self._unfinished = 0
        self._all_done = asyncio.Event()
        self._all_done.set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def qsize(self) -> int:
        """Items waiting for a worker (not those being worked on)."""
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    @property
    def unfinished(self) -> int:
        """Items put and not yet reported done (waiting or being worked on)."""
        return self._unfinished

    def reserve(self) -> None:
        """Count an item that will be :meth:`put` later (``reserved=True``), so that
        :meth:`join` waits for it already, e.g. while it is being looked up."""
        self._unfinished += 1
        self._all_done.clear()

    def put(self, item: T, *, reserved: bool = False) -> None:
        """Queue ``item``, or give it to a worker that is waiting; never blocks."""
        if not reserved:
            self._unfinished += 1
            self._all_done.clear()
        idle = self._idle
        while idle:
            waiter = idle.popleft()
            if not waiter.done():  # a cancelled worker left its future behind
                waiter.set_result(item)
                return
        self._items.append(item)

    async def get(self) -> T:
        """The next item; waits while there is none. Call :meth:`done` after each."""
        if self._items:
            return self._items.popleft()
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._idle.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Cancelled after an item was handed over: give it to the next worker.
            if waiter.done() and not waiter.cancelled():
                self._items.appendleft(waiter.result())
            raise

    def done(self) -> None:
        """One item got by :meth:`get` is finished."""
        self._unfinished -= 1
        if self._unfinished <= 0:
            self._unfinished = 0
            self._all_done.set()

    async def join(self) -> None:
        """Until every item put so far is done."""
        await self._all_done.wait()
