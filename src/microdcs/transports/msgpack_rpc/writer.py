"""One writer per connection: frames queue up and go out in batches.

Whoever produces a frame (a finished request, an emitted event) only appends bytes; the
writer task joins everything queued since its last write into one ``write`` and then
waits for the socket to drain. Many small responses thus cost one system call, and the
backlog (queued bytes plus the transport's own buffer) is a number producers can check
to apply back-pressure.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)


class FrameWriter:
    """Owns the sending side of a stream; run :meth:`run` as a task of the connection."""

    def __init__(self, writer: asyncio.StreamWriter, *, high_water: int) -> None:
        self._writer = writer
        self._high_water = high_water
        self._frames: list[bytes] = []
        self._queued = 0
        self._wakeup = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._closing = False
        self.broken = False

    @property
    def backlog(self) -> int:
        """Bytes accepted for sending that the peer has not taken yet."""
        return self._queued + self._writer.transport.get_write_buffer_size()

    @property
    def over_high_water(self) -> bool:
        return self.backlog > self._high_water

    def send(self, frame: bytes) -> None:
        """Queue one frame; silently discarded once the stream is broken or closing."""
        if self.broken:
            return
        self._frames.append(frame)
        self._queued += len(frame)
        if self._queued > self._high_water:
            self._writable.clear()
        self._wakeup.set()

    async def wait_writable(self) -> None:
        """Return once the backlog is under the high-water mark (or sending failed)."""
        while self.over_high_water and not self.broken:
            self._writable.clear()
            await self._writable.wait()

    def close(self) -> None:
        """Let :meth:`run` return after flushing what is queued."""
        self._closing = True
        self._wakeup.set()

    async def run(self) -> None:
        """Write queued frames until :meth:`close`; a send failure marks it broken."""
        while True:
            if not self._frames:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            frames, self._frames, self._queued = self._frames, [], 0
            if self.broken:
                continue
            try:
                self._writer.write(frames[0] if len(frames) == 1 else b"".join(frames))
                await self._writer.drain()
            except (ConnectionError, OSError, RuntimeError) as exc:
                logger.debug("sending failed: %s", exc)
                self.broken = True
            if not self.over_high_water or self.broken:
                self._writable.set()
