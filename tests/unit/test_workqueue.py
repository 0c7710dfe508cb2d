"""The hand-off queue between a transport's receive callback and its workers."""

from __future__ import annotations

import asyncio

from microdcs.transports.workqueue import WorkQueue


async def test_items_come_out_in_order_and_join_waits_for_done() -> None:
    queue: WorkQueue[int] = WorkQueue()
    for n in range(3):
        queue.put(n)
    assert queue.qsize() == 3
    got = [await queue.get() for _ in range(3)]
    assert got == [0, 1, 2]
    joined = asyncio.ensure_future(queue.join())
    await asyncio.sleep(0)
    queue.done()
    queue.done()
    await asyncio.sleep(0)
    assert not joined.done()  # one item is still being worked on
    queue.done()
    await asyncio.wait_for(joined, 1)
    assert queue.unfinished == 0


async def test_a_waiting_worker_gets_the_item_directly() -> None:
    queue: WorkQueue[str] = WorkQueue()
    worker = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put("x")
    assert queue.qsize() == 0  # handed over, not queued
    assert await asyncio.wait_for(worker, 1) == "x"


async def test_a_reserved_item_counts_for_join_before_it_is_put() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.reserve()
    joined = asyncio.ensure_future(queue.join())
    await asyncio.sleep(0.01)
    assert not joined.done()
    queue.put("late", reserved=True)
    assert queue.unfinished == 1  # reserved once, not counted twice
    assert await queue.get() == "late"
    queue.done()
    await asyncio.wait_for(joined, 1)


async def test_an_item_handed_to_a_worker_cancelled_before_it_ran_goes_to_the_next() -> None:
    queue: WorkQueue[str] = WorkQueue()
    first = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put("kept")  # set on first's future; first has not resumed yet
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert first.cancelled()
    assert await asyncio.wait_for(queue.get(), 1) == "kept"


async def test_a_cancelled_idle_worker_does_not_swallow_a_later_item() -> None:
    queue: WorkQueue[str] = WorkQueue()
    idle = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    idle.cancel()
    await asyncio.gather(idle, return_exceptions=True)
    queue.put("next")
    assert await asyncio.wait_for(queue.get(), 1) == "next"
