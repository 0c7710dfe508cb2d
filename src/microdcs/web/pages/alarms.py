"""The alarms page and the operator actions on it.

Every action is a POST carrying the CSRF token (checked by the server's middleware) and
goes through the alarm manager's :meth:`act`, the same validation and journal as the
MQTT command, with the logged-in user's name as the operator id.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from microdcs.alarms.contract import AlarmAction
from microdcs.web.identity import Role
from microdcs.web.pages.deps import PageDeps
from microdcs.web.pages.feeds import AlarmsFeed, alarm_json, listed_alarms
from microdcs.web.pages.render import Renderer, live_response, require, scope_url, when

#: The actions the page offers, and the role each needs.
PAGE_ACTIONS: dict[str, tuple[AlarmAction, Role]] = {
    "acknowledge": (AlarmAction.ACKNOWLEDGE, Role.OPERATOR),
    "shelve": (AlarmAction.SHELVE, Role.OPERATOR),
    "unshelve": (AlarmAction.UNSHELVE, Role.OPERATOR),
    "reset": (AlarmAction.RESET, Role.OPERATOR),
    "suppress": (AlarmAction.SUPPRESS, Role.ENGINEER),
    "unsuppress": (AlarmAction.UNSUPPRESS, Role.ENGINEER),
    "remove_from_service": (AlarmAction.REMOVE_FROM_SERVICE, Role.ENGINEER),
    "return_to_service": (AlarmAction.RETURN_TO_SERVICE, Role.ENGINEER),
}
MAX_SHELVE_MINUTES = 24 * 60


def _time_param(text: str | None, default: float) -> float:
    """``YYYY-MM-DDTHH:MM`` (UTC, as a datetime-local input sends it) or Unix seconds."""
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        pass
    from datetime import UTC, datetime

    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise HTTPException(400, f"not a time: {text!r}") from None


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (first value of each; the pages post no files)."""
    if len(body := await request.body()) > 16_384:
        raise HTTPException(413, "form too large")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


class AlarmPages:
    def __init__(self, deps: PageDeps, renderer: Renderer) -> None:
        self.deps = deps
        self.renderer = renderer

    async def page(self, request: Request) -> Response:
        scope = request.path_params["scope"]
        now = time.time()
        end = _time_param(request.query_params.get("to"), now)
        start = _time_param(request.query_params.get("from"), end - 3600)
        _, views = await self.deps.alarms.snapshot(scope)
        journal = await self.deps.alarms.journal(scope, start, end, 500)
        return self.renderer.page(
            request,
            "alarms.html.jinja2",
            {
                "scope": scope,
                "alarms": [alarm_json(v) for v in listed_alarms(views)],
                "configured": [alarm_json(v) for v in views],
                "journal": list(reversed(journal)),
                "start": when(start).replace(" ", "T")[:16],
                "end": when(end).replace(" ", "T")[:16],
                "message": request.query_params.get("message", ""),
                "live": f"/live/scopes/{scope_url(scope)}/alarms",
            },
        )

    async def live(self, request: Request) -> Response:
        scope = request.path_params["scope"]
        return live_response(self.deps.hub, ("alarms", scope), lambda: AlarmsFeed(self.deps, scope))

    async def act(self, request: Request) -> Response:
        scope = request.path_params["scope"]
        alarm = request.path_params["alarm"]
        name = request.path_params["action"]
        if name not in PAGE_ACTIONS:
            raise HTTPException(404, f"no action {name!r}")
        action, role = PAGE_ACTIONS[name]
        user = require(request, role)
        form = await _form(request)
        comment = form.get("comment", "")[:500]
        shelve_seconds = None
        if action is AlarmAction.SHELVE:
            try:
                minutes = float(form.get("minutes", "") or "0")
            except ValueError:
                raise HTTPException(400, "minutes must be a number") from None
            if not 0 < minutes <= MAX_SHELVE_MINUTES:
                raise HTTPException(400, f"minutes must be in (0, {MAX_SHELVE_MINUTES}]")
            shelve_seconds = minutes * 60
        outcomes = await self.deps.alarms.act(
            scope, action, [alarm], operator=user.name, comment=comment,
            shelve_seconds=shelve_seconds,
        )  # fmt: skip
        outcome = outcomes[0]
        text = (
            f"{alarm}: {name} done ({outcome.state})"
            if outcome.done
            else f"{alarm}: {name} refused: {outcome.reason or outcome.error}"
        )
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(
                {"done": outcome.done, "state": outcome.state, "error": outcome.error,
                 "message": text},
                status_code=200 if outcome.done else 409,
            )  # fmt: skip
        query = urlencode({"message": text})
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/scopes/{scope_url(scope)}/alarms?{query}", 303)
