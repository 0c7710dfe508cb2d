"""Templates, the request's user and CSRF token, and the Server-Sent Events response.

The pages read the user and the CSRF token only from ``request.state`` (put there by the
server's authentication middleware), never from cookies, so this module is the one
place that knows those names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, StreamingResponse

from microdcs.web.identity import AccessDenied, Role, User
from microdcs.web.live import Feed, LiveHub, sse_event

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"

#: The form field (and ``X-CSRF-Token`` header) that carries the token of a POST.
CSRF_FIELD = "csrf"


def user_of(request: Request) -> User | None:
    user = getattr(request.state, "user", None)
    return user if isinstance(user, User) else None


def csrf_of(request: Request) -> str:
    token = getattr(request.state, "csrf", "")
    if callable(token):
        token = token()
    return str(token or "")


def require(request: Request, role: Role) -> User:
    """The request's user if it holds ``role``; AccessDenied (401/403) otherwise."""
    user = user_of(request)
    if user is None or not user.may(role):
        raise AccessDenied(role, user)
    return user


def when(seconds: float | None) -> str:
    """Unix seconds as the pages print them (UTC, to the second)."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def scope_url(scope: str) -> str:
    return quote(scope, safe="")


class Renderer:
    """One jinja2 environment (autoescaped, templates from the package)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["when"] = when
        self.env.filters["scope_url"] = scope_url

    def page(
        self, request: Request, name: str, context: Mapping[str, Any], status: int = 200
    ) -> HTMLResponse:
        user = user_of(request)
        html = self.env.get_template(name).render(
            title=self.title,
            user=user,
            operator=user is not None and user.may(Role.OPERATOR),
            engineer=user is not None and user.may(Role.ENGINEER),
            csrf=csrf_of(request),
            csrf_field=CSRF_FIELD,
            root=request.scope.get("root_path", ""),
            **context,
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def live_response(hub: LiveHub, key: Hashable, make_feed: Callable[[], Feed]) -> StreamingResponse:
    """A page's event stream: ``snapshot`` first, then ``update`` events (at most one
    per hub interval), until the page leaves or falls behind."""

    async def stream() -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        async with hub.subscribe(key, make_feed) as (subscription, feed):
            yield sse_event("snapshot", await feed.snapshot())
            async for message in subscription.messages():
                yield message

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
