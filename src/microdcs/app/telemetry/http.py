"""The runtime's one HTTP server: uvicorn serving a Starlette app in the runtime's loop.

It always serves ``/healthz``, ``/readyz`` and ``/metrics`` (prometheus-client); the web
view adds its pages, login and live updates as more routes and middleware. Run
:meth:`TelemetryServer.run` as an :class:`~microdcs.app.application.AdditionalTask`:
uvicorn runs embedded (no signal handlers of its own: the runtime owns SIGINT/SIGTERM, and
stops the server through the shutdown event).

Two things uvicorn leaves to its host are done here: the port falls back to a free one
when the configured one is taken (a second replica or the demo on one machine), and a
connection that has not sent a complete first request within ``request_timeout`` is
closed (a client that opens sockets and never finishes its request head).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from microdcs.app.telemetry.health import Readiness
from microdcs.app.telemetry.metrics import Metrics
from microdcs.app.telemetry.prometheus import CONTENT_TYPE, exposition, registry_of

logger = logging.getLogger(__name__)

_TEXT = "text/plain; charset=utf-8"


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handling (the runtime's shutdown event stops it), and
    telling ``listening`` once its sockets accept connections."""

    def __init__(self, config: uvicorn.Config, listening: asyncio.Event) -> None:
        super().__init__(config)
        self.listening = listening

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


def guarded_h11(request_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose first request head is not
    complete within ``request_timeout`` seconds (idle keep-alive has its own timeout)."""

    class GuardedH11(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_timer = self.loop.call_later(request_timeout, self._head_timeout)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11


def probe_routes(metrics: Metrics, readiness: Readiness) -> list[BaseRoute]:
    """``/healthz`` (the process runs), ``/readyz`` (every part connected), ``/metrics``."""
    registry = registry_of(metrics)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        ready, parts = await readiness.check()
        body = "".join(f"{name} {'ok' if ok else 'down'}\n" for name, ok in parts.items())
        return PlainTextResponse(body, status_code=200 if ready else 503)

    async def scrape(request: Request) -> Response:
        try:
            body = exposition(registry)
        except Exception:
            logger.exception("rendering metrics failed")
            return PlainTextResponse("metrics unavailable\n", status_code=500)
        return Response(body, media_type=CONTENT_TYPE)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
    ]


class TelemetryServer:
    """Serves the probes, the metrics and whatever ``routes`` add on ``host:port``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        metrics: Metrics,
        readiness: Readiness,
        request_timeout: float = 5.0,
        routes: Sequence[BaseRoute] = (),
        middleware: Sequence[Middleware] = (),
        exception_handlers: dict[Any, Any] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.request_timeout = request_timeout
        self.app = Starlette(
            routes=[*probe_routes(metrics, readiness), *routes],
            middleware=list(middleware),
            exception_handlers=exception_handlers,
        )
        self.listening = asyncio.Event()

    async def run(self, shutdown: asyncio.Event) -> None:
        """Serve until ``shutdown`` is set (an AdditionalTask body)."""
        sock = self._bind()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=False,
            http=guarded_h11(self.request_timeout),
            ws="none",
            timeout_keep_alive=max(1, round(self.request_timeout)),
            timeout_graceful_shutdown=2,
            server_header=False,
        )
        # uvicorn warns once per malformed request: a hostile client would flood the log.
        logging.getLogger("uvicorn.error").setLevel(logging.ERROR)
        server = _EmbeddedServer(config, self.listening)
        logger.info("health and metrics on http://%s:%d", self.host, self.port)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(server.serve(sockets=[sock]))
                await shutdown.wait()
                server.should_exit = True  # uvicorn notices within its 0.1 s tick
        finally:
            self.listening.clear()
            sock.close()

    def _bind(self) -> socket.socket:
        """The configured port, or a free one when it is taken.

        A second replica on one machine (or the demo beside a running one) would otherwise
        fail on the default port at every restart of this task; the warning names the port
        chosen so a scraper can be pointed at it.
        """
        try:
            return _listening_socket(self.host, self.port)
        except OSError as exc:
            if self.port == 0 or exc.errno != errno.EADDRINUSE:
                raise
        sock = _listening_socket(self.host, 0)
        logger.warning(
            "APP_HTTP_PORT %d is in use; health and metrics on free port %d instead",
            self.port,
            sock.getsockname()[1],
        )
        return sock


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
