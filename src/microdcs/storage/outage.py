"""One warning per outage of a dependency, not one per failed retry.

Background tasks (the publisher, the SFC engine's loops) retry every fraction of a
second while Redis or the broker is away; logging each attempt buries the one line an
operator needs. An :class:`OutageLog` logs when an outage starts and when it ends, and
hands out the back-off delay to wait before the next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from microdcs.core.errors import MicroDCSError


class OutageLog:
    """The state of one dependency as a task sees it: available, or away since when."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        first_delay: float = 0.1,
        max_delay: float = 2.0,
    ) -> None:
        self._logger = logger
        self._what = what
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._since: float | None = None
        self._failures = 0
        #: Outages seen so far (read by tests and metrics).
        self.outages = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> float:
        """Note a failed attempt; the seconds to wait before the next one.

        Only the first failure of an outage is logged (as a warning)."""
        if self._since is None:
            self._since = time.monotonic()
            self._failures = 0
            self.outages += 1
            self._logger.warning("%s unavailable, retrying until it is back: %s", self._what, error)
        else:
            self._logger.debug("%s still unavailable: %s", self._what, error)
        delay = min(self._max_delay, self._first_delay * 2.0 ** min(self._failures, 16))
        self._failures += 1
        return delay

    def recovered(self) -> None:
        """Note a successful attempt; logs the end of an outage if one was going on."""
        if self._since is not None:
            self._logger.info(
                "%s available again after %.1fs", self._what, time.monotonic() - self._since
            )
            self._since = None


async def retry_until_done(
    step: Callable[[], Awaitable[None]], outage: OutageLog, shutdown: asyncio.Event
) -> None:
    """Run ``step`` until it succeeds once (or shutdown), waiting out storage outages with
    ``outage``'s back-off: start-up work such as storing a configuration file."""
    while not shutdown.is_set():
        try:
            await step()
            outage.recovered()
            return
        except MicroDCSError as exc:
            delay = outage.failed(exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shutdown.wait(), timeout=delay)
