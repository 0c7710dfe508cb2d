"""Bounds on what connections can cost the server: failed-token back-off, bounded logs.

Both keep a fixed amount of state whatever a peer does: the back-off remembers at most
``max_peers`` addresses (the least recently failing are forgotten first), and a burst
of refusals becomes one log line per interval instead of one per attempt.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Failures:
    count: int
    blocked_until: float


class AuthBackoff:
    """Per peer address: after a wrong token, refuse ``authenticate`` for a growing time.

    The n-th consecutive failure blocks the address for ``initial * 2**(n-1)`` seconds,
    at most ``maximum``. A blocked attempt is refused without looking at its token, so
    guessing over fresh connections gains nothing. The record is forgotten after a
    success, or once ``maximum`` seconds passed after the block ended without a failure.
    """

    def __init__(
        self,
        *,
        initial: float,
        maximum: float,
        max_peers: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._initial = initial
        self._maximum = maximum
        self._max_peers = max_peers
        self._clock = clock
        self._peers: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._peers)

    def retry_in(self, peer: str) -> float:
        """Seconds until ``peer`` may try a token again; 0 when it may now."""
        failures = self._peers.get(peer)
        if failures is None:
            return 0.0
        now = self._clock()
        if now >= failures.blocked_until + self._maximum:
            del self._peers[peer]
            return 0.0
        return max(0.0, failures.blocked_until - now)

    def failed(self, peer: str) -> float:
        """Record a wrong token from ``peer``; the seconds it is now blocked for."""
        self.retry_in(peer)  # forget an old record first
        failures = self._peers.pop(peer, None)
        count = failures.count + 1 if failures else 1
        delay: float = min(self._maximum, self._initial * 2.0 ** min(count - 1, 62))
        self._peers[peer] = _Failures(count, self._clock() + delay)
        while len(self._peers) > self._max_peers:
            self._peers.popitem(last=False)
        return delay

    def succeeded(self, peer: str) -> None:
        self._peers.pop(peer, None)


class BurstLog:
    """Logs the first of a burst of similar events, then at most one summary per interval."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self._suppressed += 1
            return
        if self._suppressed:
            self._logger.warning(
                message + " (and %d more like it since the last report)",
                *args,
                self._suppressed,
            )
        else:
            self._logger.warning(message, *args)
        self._last = now
        self._suppressed = 0


def peer_address(peer: object) -> str:
    """The host part of a peer name (``(host, port, ...)`` for TCP), used as its identity."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)
