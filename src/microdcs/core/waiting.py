"""The one way background tasks sleep: a timeout that an event may cut short.

Every loop of the runtime (publisher passes, timers, dispatchers, lease campaigns) sleeps
until its next due time unless shutdown or a wake-up of its own comes first; none polls
faster than it must. The events' waiters are cancelled however the sleep ends, so none
is left behind per round.
"""

from __future__ import annotations

import asyncio


async def sleep_unless(seconds: float | None, *events: asyncio.Event | None) -> None:
    """Sleep ``seconds`` (``None``: no limit) unless one of ``events`` is (or gets) set
    first; ``None`` events are skipped (a caller may leave its wake-up out, say while it
    backs off)."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events if event is not None]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
