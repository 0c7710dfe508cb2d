"""Log lines that stay bounded whatever a client sends.

A hostile or broken client can send thousands of bad messages a second, each with
attributes of any length. Every rejection is counted in metrics; the log gets at most a
few lines per second per kind (then one line saying how many were suppressed), and each
value in a line is clipped, so the log can neither flood the disk nor hide the runtime's
own lines.
"""

from __future__ import annotations

import logging
import time

#: Characters of one client-supplied value kept in a log line.
DEFAULT_VALUE_CHARS = 200


def clip(value: object, limit: int = DEFAULT_VALUE_CHARS) -> str:
    """``value`` as text of at most ``limit`` characters (longer ones say how long)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} chars)"


class RateLimitedLog:
    """At most ``burst`` lines per ``period`` seconds for each key (e.g. error kind)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        period: float = 10.0,
        value_chars: int = DEFAULT_VALUE_CHARS,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._period = period
        self.value_chars = value_chars
        #: key -> [window start, lines logged in it, lines suppressed in it]
        self._windows: dict[str, list[float]] = {}

    def log(self, level: int, key: str, message: str, *args: object) -> None:
        """Log ``message % args`` (each text arg clipped) unless ``key`` is over budget."""
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self._period:
            if window is not None and window[2]:
                self._logger.log(
                    level,
                    "%d more %s lines suppressed in the last %.0fs",
                    int(window[2]),
                    key,
                    now - window[0],
                )
            if len(self._windows) >= 1024:  # keys come from our own code; stay bounded anyway
                self._windows.clear()
            window = [now, 0.0, 0.0]
            self._windows[key] = window
        if window[1] >= self._burst:
            window[2] += 1
            return
        window[1] += 1
        limit = self.value_chars
        clipped = (clip(a, limit) if isinstance(a, str) else a for a in args)
        self._logger.log(level, message, *clipped)
