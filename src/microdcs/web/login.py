"""``/login`` and ``/logout``: the form, the session cookie, and where to go next.

The login form is posted before any session exists, so it carries no CSRF token; a post
whose ``Origin`` names another site is refused instead, and failed attempts are
throttled per name (:class:`~microdcs.web.users.UserDirectory`). A successful login goes
back to the page that asked for it (``next``, only a path of this site).
"""

from __future__ import annotations

import html
import logging
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from microdcs.core.boundedlog import RateLimitedLog, clip
from microdcs.web.auth import current_user
from microdcs.web.sessions import COOKIE, SessionSigner
from microdcs.web.users import LoginRefused, UserDirectory

__all__ = ["login_routes", "safe_next"]

logger = logging.getLogger(__name__)
MAX_FORM_BYTES = 8 * 1024

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>microdcs: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #f3f4f6; display: grid;
       place-items: center; min-height: 90vh; margin: 0; }}
form {{ background: #fff; padding: 2rem; border-radius: 8px; width: 18rem;
       box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
label {{ display: block; margin: .8rem 0 .2rem; }}
input {{ width: 100%; padding: .4rem; box-sizing: border-box; }}
button {{ margin-top: 1.2rem; width: 100%; padding: .5rem; }}
.error {{ color: #b91c1c; }}
</style></head>
<body><form method="post" action="/login" id="login">
<h1>microdcs</h1>{message}
<label for="name">User</label><input id="name" name="name" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button type="submit" id="login-button">Log in</button>
</form></body></html>
"""


def safe_next(target: str | None) -> str:
    """Only a path of this site (``/jobs``), never ``//evil`` or ``https://evil``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _page(next_target: str, message: str = "", status: int = 200) -> HTMLResponse:
    shown = f'<p class="error" id="login-error">{html.escape(message)}</p>' if message else ""
    body = _PAGE.format(message=shown, next=html.escape(next_target, quote=True))
    return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def login_routes(
    users: UserDirectory, signer: SessionSigner, *, secure_cookies: bool
) -> list[BaseRoute]:
    refusals = RateLimitedLog(logger)  # a password guesser must not flood the log

    async def show(request: Request) -> Response:
        return _page(safe_next(request.query_params.get("next")))

    async def submit(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _page("/", "request too large", 413)
        form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        name = (form.get("name") or [""])[0].strip()
        password = (form.get("password") or [""])[0]
        target = safe_next((form.get("next") or ["/"])[0])
        if not _same_origin(request):
            return _page(target, "this form must be sent from this site", 403)
        try:
            user = users.authenticate(name, password)
        except LoginRefused as refused:
            if refused.retry_after:
                seconds = max(1, round(refused.retry_after))
                message = f"too many failed attempts: try again in {seconds} s"
                return _page(target, message, 429)
            refusals.log(logging.INFO, "login", "web login refused for %r", clip(name, 64))
            return _page(target, "wrong user name or password", 401)
        value, _ = signer.issue(user.name)
        logger.info("web login: %s (%s)", user.name, user.role.name.lower())
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(signer.lifetime),
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
            path="/",
        )
        return response

    async def logout(request: Request) -> Response:
        user = current_user(request)
        if user is not None:
            logger.info("web logout: %s", user.name)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", samesite="strict", secure=secure_cookies)
        return response

    return [
        Route("/login", show, methods=["GET"]),
        Route("/login", submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
