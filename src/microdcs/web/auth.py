"""Who is asking, may they see this, and did this form come from our own page.

:class:`AccessMiddleware` runs before every route: it reads the session cookie, puts the
:class:`~microdcs.web.identity.User` (or none) and the session's CSRF token on the
request (``request.state.user``, ``request.state.csrf``), sends a visitor without a login
to ``/login`` (pages) or answers 401 (anything else) unless anonymous viewers are allowed,
refuses a state-changing request (POST, PUT, PATCH, DELETE) without the session's CSRF
token (form field ``csrf`` or header ``X-CSRF-Token``) with 403, and adds the security
headers to every response. Pages then ask :func:`require` for the role an action needs.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request

from microdcs.web.identity import AccessDenied, Role, User
from microdcs.web.sessions import COOKIE, Session, SessionSigner
from microdcs.web.users import UserDirectory

__all__ = [
    "ANONYMOUS",
    "AccessCounters",
    "AccessMiddleware",
    "csrf_token",
    "current_user",
    "require",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Who an anonymous visitor is when ``APP_WEB_ANONYMOUS_VIEWER`` allows them in.
ANONYMOUS = User("anonymous", Role.VIEWER)
#: Paths served to anyone: probes, metrics, the login itself and static files.
PUBLIC = ("/healthz", "/readyz", "/metrics", "/login", "/static/", "/asyncapi.json")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The login form is posted before there is a session (its own checks: Origin, throttle).
CSRF_EXEMPT = ("/login",)
MAX_FORM_BYTES = 64 * 1024
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        b"frame-ancestors 'none'; form-action 'self'",
    ),
]


def current_user(request: Request) -> User | None:
    """The logged-in user (or the anonymous viewer), ``None`` for nobody."""
    user = getattr(request.state, "user", None)
    return user if isinstance(user, User) else None


def csrf_token(request: Request) -> str:
    """The token a page puts into every form it renders (empty without a session)."""
    return str(getattr(request.state, "csrf", ""))


def require(request: Request, role: Role) -> User:
    """The user, if they hold ``role``; else :class:`AccessDenied` (401 or 403)."""
    user = current_user(request)
    if user is None or not user.may(role) or user is ANONYMOUS:
        raise AccessDenied(role, user if user is not ANONYMOUS else None)
    return user


class AccessCounters:
    """What the middleware refused, for the metrics (one object per server)."""

    def __init__(self) -> None:
        self.csrf_refused = 0


class AccessMiddleware:
    """Authentication, the login gate, CSRF and security headers (see the module)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        users: UserDirectory,
        signer: SessionSigner,
        anonymous_viewer: bool = False,
        counters: AccessCounters | None = None,
    ) -> None:
        self.app = app
        self.users = users
        self.signer = signer
        self.anonymous_viewer = anonymous_viewer
        self.counters = counters if counters is not None else AccessCounters()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        request = Request(scope)
        session = self._session(request)
        user = self.users.user(session.name) if session is not None else None
        if user is None and self.anonymous_viewer:
            user = ANONYMOUS
        state = scope.setdefault("state", {})
        state["user"] = user
        state["csrf"] = session.csrf if session is not None and user is not None else ""
        path: str = scope["path"]
        if user is None and not path.startswith(PUBLIC):
            await _login_needed(scope, send)
            return
        if scope["method"] in UNSAFE and not path.startswith(CSRF_EXEMPT):
            body, receive = await _buffered(receive)
            if body is None:
                await _plain(send, 413, "request too large")
                return
            if not self._csrf_ok(scope, body, session if user is not None else None):
                self.counters.csrf_refused += 1
                await _plain(send, 403, "missing or wrong CSRF token")
                return
        await self.app(scope, receive, send)

    def _session(self, request: Request) -> Session | None:
        value = request.cookies.get(COOKIE)
        return self.signer.check(value) if value else None

    @staticmethod
    def _csrf_ok(scope: Scope, body: bytes, session: Session | None) -> bool:
        if session is None:
            return False
        headers = dict(scope["headers"])
        token = headers.get(b"x-csrf-token", b"").decode("latin-1")
        if not token and headers.get(b"content-type", b"").startswith(
            b"application/x-www-form-urlencoded"
        ):
            form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=200)
            token = (form.get("csrf") or [""])[0]
        return bool(token) and hmac.compare_digest(token, session.csrf)


def _with_security_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
        await send(message)

    return sending


async def _buffered(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (``None`` past the limit) and a receive that replays it."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _login_needed(scope: Scope, send: Send) -> None:
    """A page asked for by a browser goes to the login; anything else gets a 401."""
    accept = dict(scope["headers"]).get(b"accept", b"")
    if scope["method"] == "GET" and b"text/html" in accept:
        query = scope["query_string"].decode("latin-1")
        target = scope["path"] + ("?" + query if query else "")
        location = ("/login?next=" + quote(target, safe="")).encode()
        headers = [(b"location", location), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    await _plain(send, 401, "login required")


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
