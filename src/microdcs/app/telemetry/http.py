"""A tiny HTTP/1.1 server for probes and Prometheus: ``/healthz``, ``/readyz``, ``/metrics``.

GET only, one request per connection, no framework: a scrape every few seconds and two
probes do not justify one, and the event loop stays the runtime's own. Run
:meth:`TelemetryServer.run` as an :class:`~microdcs.app.application.AdditionalTask`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging

from microdcs.app.telemetry.health import Readiness
from microdcs.app.telemetry.metrics import Metrics
from microdcs.app.telemetry.prometheus import CONTENT_TYPE, render

logger = logging.getLogger(__name__)

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_TEXT = "text/plain; charset=utf-8"


class TelemetryServer:
    """Serves health and metrics on ``host:port`` until shutdown."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        metrics: Metrics,
        readiness: Readiness,
        request_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self._metrics = metrics
        self._readiness = readiness
        self._timeout = request_timeout
        self.listening = asyncio.Event()

    async def run(self, shutdown: asyncio.Event) -> None:
        """Listen until ``shutdown`` is set (an AdditionalTask body)."""
        server = await self._listen()
        self.port = server.sockets[0].getsockname()[1]
        self.listening.set()
        logger.info("health and metrics on http://%s:%d", self.host, self.port)
        try:
            await shutdown.wait()
        finally:
            self.listening.clear()
            server.close()
            await server.wait_closed()

    async def _listen(self) -> asyncio.Server:
        """Bind the configured port, or a free one when it is taken.

        A second replica on one machine (or the demo beside a running one) would otherwise
        fail on the default port at every restart of this task; the warning names the port
        chosen so a scraper can be pointed at it.
        """
        try:
            return await asyncio.start_server(self._serve, self.host, self.port, limit=8192)
        except OSError as exc:
            if self.port == 0 or exc.errno != errno.EADDRINUSE:
                raise
            taken = self.port
        server = await asyncio.start_server(self._serve, self.host, 0, limit=8192)
        logger.warning(
            "APP_HTTP_PORT %d is in use; health and metrics on free port %d instead",
            taken,
            server.sockets[0].getsockname()[1],
        )
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                head = await reader.readuntil(b"\r\n\r\n")
                status, content_type, body = await self._respond(head)
                writer.write(_head(status, content_type, len(body)) + body)
                await writer.drain()
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # a client that hangs up, stalls or sends an oversized head gets nothing
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond(self, head: bytes) -> tuple[int, str, bytes]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400, _TEXT, b"bad request\n"
        method, target, _ = parts
        if method != "GET":
            return 405, _TEXT, b"only GET\n"
        path = target.split("?", 1)[0]
        if path == "/healthz":
            return 200, _TEXT, b"ok\n"
        if path == "/readyz":
            ready, parts_ok = await self._readiness.check()
            body = "".join(f"{name} {'ok' if ok else 'down'}\n" for name, ok in parts_ok.items())
            return (200 if ready else 503), _TEXT, body.encode()
        if path == "/metrics":
            try:
                text = render(self._metrics.collect(), self._metrics.histograms)
            except Exception:
                logger.exception("rendering metrics failed")
                return 500, _TEXT, b"metrics unavailable\n"
            return 200, CONTENT_TYPE, text.encode()
        return 404, _TEXT, b"not found\n"


def _head(status: int, content_type: str, length: int) -> bytes:
    allow = "Allow: GET\r\n" if status == 405 else ""
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n{allow}"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
