"""Wire the runtime's HTTP server: probes and metrics always, the AsyncAPI document, and
(``APP_WEB_ENABLED``) the operator pages behind the login, CSRF and security headers."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from microdcs.app.application import AdditionalTask
from microdcs.app.asyncapi import asyncapi_for_runtime
from microdcs.app.runtime import Runtime
from microdcs.app.telemetry.health import Readiness
from microdcs.app.telemetry.http import TelemetryServer
from microdcs.app.wiring.webdata import page_deps
from microdcs.web.auth import AccessCounters, AccessMiddleware
from microdcs.web.identity import AccessDenied
from microdcs.web.login import login_routes
from microdcs.web.options import WebConfig
from microdcs.web.pages import page_routes
from microdcs.web.sessions import SessionSigner
from microdcs.web.users import UserDirectory, read_users_file

logger = logging.getLogger(__name__)


def add_http_server(runtime: Runtime) -> TelemetryServer | None:
    """Serve everything HTTP as one task of the app (None when ``APP_HTTP_PORT`` is 0)."""
    config = runtime.config
    if config.http_port == 0:
        return None
    readiness = Readiness(runtime.app.handlers, runtime.store.ping, tasks=runtime.app.task_health)
    runtime.metrics.observe("microdcs.redis.errors", lambda: readiness.ping_failures, where="ping")
    runtime.metrics.observe("microdcs.ready", lambda: int(readiness.last))
    routes: list[BaseRoute] = [asyncapi_route(runtime)]
    middleware: list[Middleware] = []
    handlers: dict[Any, Any] = {}
    if config.web.enabled:
        access = web_access(runtime, config.web)
        routes += login_routes(
            access.users, access.signer, secure_cookies=config.web.secure_cookies
        )
        routes += page_routes_of(runtime)
        counters = AccessCounters()
        runtime.metrics.observe("microdcs.web.csrf_refused", lambda: counters.csrf_refused)
        middleware.append(
            Middleware(
                AccessMiddleware,
                users=access.users,
                signer=access.signer,
                anonymous_viewer=config.web.anonymous_viewer,
                counters=counters,
            )
        )
        handlers[AccessDenied] = denied
    server = TelemetryServer(
        config.http_host,
        config.http_port,
        metrics=runtime.metrics,
        readiness=readiness,
        routes=routes,
        middleware=middleware,
        exception_handlers=handlers,
    )
    runtime.app.add_task(AdditionalTask("http", server.run))
    return server


class WebAccess:
    """The users and the session key of one replica."""

    def __init__(self, users: UserDirectory, signer: SessionSigner) -> None:
        self.users = users
        self.signer = signer


def web_access(runtime: Runtime, web: WebConfig) -> WebAccess:
    users = UserDirectory(read_users_file(web.users_file) if web.users_file else {})
    if web.users_file is None and not web.anonymous_viewer:
        logger.warning("no APP_WEB_USERS_FILE: nobody can log in to the web view")
    # Without a configured key, sessions end with this replica (see the setting).
    secret = web.session_secret
    key = secret.encode() if secret is not None else secrets.token_bytes(32)
    signer = SessionSigner(key, web.session_hours * 3600.0)
    metrics = runtime.metrics
    metrics.observe("microdcs.web.login_failures", lambda: users.failed_logins, reason="password")
    metrics.observe(
        "microdcs.web.login_failures", lambda: users.throttled_logins, reason="throttled"
    )
    return WebAccess(users, signer)


def page_routes_of(runtime: Runtime) -> list[BaseRoute]:
    """The operator pages, built on the runtime's read interfaces."""
    return page_routes(page_deps(runtime))


def asyncapi_route(runtime: Runtime) -> Route:
    """``/asyncapi.json``: the AsyncAPI 3.0 document of what this replica has bound."""
    cached: list[dict[str, Any]] = []

    async def document(request: Request) -> Response:
        if not cached:
            cached.append(asyncapi_for_runtime(runtime))
        return JSONResponse(cached[0])

    return Route("/asyncapi.json", document, methods=["GET"])


async def denied(request: Request, exc: Exception) -> Response:
    """A page's :class:`AccessDenied`: 401 without a login, 403 with too low a role."""
    status = exc.status if isinstance(exc, AccessDenied) else 403
    return PlainTextResponse(f"{exc}\n", status_code=status)
