"""The web view's access rules over real HTTP (uvicorn in the test's loop; the runtime
tests start a real runtime with Mosquitto and Redis): the login gate, the session
cookie, CSRF on every state-changing request, roles, security headers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import orjson
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from microdcs.app.config import AppConfig
from microdcs.app.devstack import free_port
from microdcs.app.telemetry.health import Readiness
from microdcs.app.telemetry.http import TelemetryServer
from microdcs.app.telemetry.metrics import Metrics
from microdcs.app.wiring.web import denied
from microdcs.web.auth import AccessMiddleware, csrf_token, require
from microdcs.web.identity import AccessDenied, Role, User
from microdcs.web.login import login_routes
from microdcs.web.options import WebConfig
from microdcs.web.passwords import hash_password
from microdcs.web.sessions import SessionSigner
from microdcs.web.users import UserDirectory
from tests.conftest import running
from tests.integration.test_telemetry_endpoint import eventually_status
from tests.integration.webpages import request

PASSWORDS = {"olga": "operator-pw", "vic": "viewer-pw"}


def directory() -> UserDirectory:
    return UserDirectory({
        "olga": (User("olga", Role.OPERATOR), hash_password(PASSWORDS["olga"])),
        "vic": (User("vic", Role.VIEWER), hash_password(PASSWORDS["vic"])),
    })  # fmt: skip


@contextlib.asynccontextmanager
async def site(*, anonymous_viewer: bool = False) -> AsyncIterator[int]:
    """Login routes, a page that shows the CSRF token and an operator-only action."""
    users, signer = directory(), SessionSigner(b"s" * 32, 3600)

    async def page(request: Request) -> Response:
        return PlainTextResponse(f"csrf={csrf_token(request)}")

    async def action(request: Request) -> Response:
        user = require(request, Role.OPERATOR)
        return PlainTextResponse(f"done by {user.name}")

    metrics = Metrics()
    server = TelemetryServer(
        "127.0.0.1", 0, metrics=metrics, readiness=Readiness([], _ready),
        routes=[*login_routes(users, signer, secure_cookies=False),
                Route("/page", page), Route("/action", action, methods=["POST"])],
        middleware=[Middleware(AccessMiddleware, users=users, signer=signer,
                               anonymous_viewer=anonymous_viewer)],
        exception_handlers={AccessDenied: denied},
    )  # fmt: skip
    shutdown = asyncio.Event()
    task = asyncio.create_task(server.run(shutdown))
    await asyncio.wait_for(server.listening.wait(), 5)
    try:
        yield server.port
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 5)
        metrics.shutdown()


async def _ready() -> bool:
    return True


async def login(port: int, name: str) -> tuple[str, str]:
    """The session cookie of ``name`` and the CSRF token its pages carry."""
    reply = await request(port, "POST", "/login", form={"name": name, "password": PASSWORDS[name],
                                                         "next": "/page"})  # fmt: skip
    assert reply.status == 303 and reply.header("location") == "/page"
    cookie = reply.cookie()
    assert cookie
    page = await request(port, "GET", "/page", cookie=cookie)
    return cookie, page.body.removeprefix("csrf=")


async def test_a_page_without_a_login_goes_to_the_login_form() -> None:
    async with site() as port:
        browser = await request(port, "GET", "/page?x=1", headers={"Accept": "text/html"})
        api = await request(port, "GET", "/page")
        form = await request(port, "GET", "/login?next=%2Fpage")
        probe = await request(port, "GET", "/healthz")
    assert browser.status == 303
    assert browser.header("location") == "/login?next=%2Fpage%3Fx%3D1"
    assert api.status == 401
    assert form.status == 200 and 'name="password"' in form.body and 'value="/page"' in form.body
    assert probe.status == 200


async def test_login_sets_a_strict_http_only_cookie_and_a_wrong_password_does_not() -> None:
    async with site() as port:
        wrong = await request(port, "POST", "/login", form={"name": "olga", "password": "x"})
        unknown = await request(port, "POST", "/login", form={"name": "eve", "password": "x"})
        right = await request(port, "POST", "/login",
                              form={"name": "olga", "password": PASSWORDS["olga"]})  # fmt: skip
    assert wrong.status == 401 and "wrong user name or password" in wrong.body
    assert unknown.status == 401 and wrong.cookie() is None
    assert right.status == 303 and right.header("location") == "/"
    set_cookie = right.header("set-cookie") or ""
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie.replace("Strict", "strict")
    assert PASSWORDS["olga"] not in set_cookie


async def test_next_never_leaves_the_site() -> None:
    async with site() as port:
        reply = await request(port, "POST", "/login", form={
            "name": "olga", "password": PASSWORDS["olga"], "next": "//evil.example/x"})  # fmt: skip
    assert reply.header("location") == "/"


async def test_a_login_posted_from_another_site_is_refused() -> None:
    async with site() as port:
        reply = await request(port, "POST", "/login", form={"name": "olga",
                              "password": PASSWORDS["olga"]},
                              headers={"Origin": "https://evil.example"})  # fmt: skip
    assert reply.status == 403 and reply.cookie() is None


async def test_an_action_without_its_csrf_token_is_refused() -> None:
    async with site() as port:
        cookie, token = await login(port, "olga")
        missing = await request(port, "POST", "/action", cookie=cookie, form={})
        wrong = await request(port, "POST", "/action", cookie=cookie, form={"csrf": "x" * 32})
        right = await request(port, "POST", "/action", cookie=cookie, form={"csrf": token})
        header = await request(port, "POST", "/action", cookie=cookie,
                               headers={"X-CSRF-Token": token})  # fmt: skip
    assert (missing.status, wrong.status) == (403, 403)
    assert right.status == 200 and right.body == "done by olga"
    assert header.status == 200


async def test_a_viewer_with_a_valid_token_is_still_refused_an_operator_action() -> None:
    async with site() as port:
        cookie, token = await login(port, "vic")
        forged = await request(port, "POST", "/action", cookie=cookie, form={"csrf": token})
    assert forged.status == 403 and "operator role needed" in forged.body


async def test_anonymous_viewers_see_pages_only_when_the_setting_allows() -> None:
    async with site(anonymous_viewer=True) as port:
        page = await request(port, "GET", "/page", headers={"Accept": "text/html"})
        action = await request(port, "POST", "/action", form={"csrf": ""})
    assert page.status == 200 and page.body == "csrf="
    assert action.status == 403  # no session: no token, no action


async def test_every_response_carries_the_security_headers() -> None:
    async with site() as port:
        reply = await request(port, "GET", "/login")
    assert reply.header("x-frame-options") == "DENY"
    assert reply.header("x-content-type-options") == "nosniff"
    assert "default-src 'self'" in (reply.header("content-security-policy") or "")


async def test_logout_needs_the_token_and_ends_the_cookie() -> None:
    async with site() as port:
        cookie, token = await login(port, "olga")
        refused = await request(port, "POST", "/logout", cookie=cookie, form={})
        done = await request(port, "POST", "/logout", cookie=cookie, form={"csrf": token})
    assert refused.status == 403
    assert done.status == 303 and "Max-Age=0" in (done.header("set-cookie") or "")


async def test_the_runtime_serves_the_login_and_the_asyncapi_document(
    config: AppConfig, tmp_path: Path
) -> None:
    users = tmp_path / "users.json"
    olga = {"name": "olga", "role": "operator", "password_hash": hash_password(PASSWORDS["olga"])}
    users.write_bytes(orjson.dumps([olga]))
    port = free_port()
    config = replace(config, http_port=port, web=WebConfig(users_file=str(users)))
    async with running(config, telemetry=True):
        await eventually_status(port, "/healthz", 200)
        gate = await request(port, "GET", "/", headers={"Accept": "text/html"})
        credentials = {"name": "olga", "password": PASSWORDS["olga"]}
        login_reply = await request(port, "POST", "/login", form=credentials)
        document = await request(port, "GET", "/asyncapi.json")
        metrics = await request(port, "GET", "/metrics")
    assert gate.status == 303 and login_reply.status == 303 and login_reply.cookie()
    assert document.status == 200 and orjson.loads(document.body)["asyncapi"].startswith("3.")
    assert "microdcs_web_login_failures_total" in metrics.body
