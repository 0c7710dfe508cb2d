"""The operator pages: overview, jobs, job detail with its recipe chart, alarms, tags.

The server mounts :func:`page_routes` and enters ``deps.hub`` for its life; it puts the
user (:class:`~microdcs.web.identity.User` or ``None``) and the CSRF token on
``request.state`` and turns :class:`~microdcs.web.identity.AccessDenied` into 401/403.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from microdcs.web.pages.alarms import AlarmPages
from microdcs.web.pages.deps import PageDeps
from microdcs.web.pages.render import CSRF_FIELD, STATIC, Renderer
from microdcs.web.pages.views import Views

__all__ = ["CSRF_FIELD", "PageDeps", "page_routes"]

SCOPE = "/scopes/{scope:path}"


def page_routes(deps: PageDeps) -> list[BaseRoute]:
    """Every page, its live stream, the alarm actions and the static files."""
    renderer = Renderer(deps.title)
    views = Views(deps, renderer)
    alarms = AlarmPages(deps, renderer)
    return [
        Route("/", views.overview, name="overview"),
        Route("/live", views.overview_live),
        Route(SCOPE + "/jobs", views.jobs, name="jobs"),
        Route("/live" + SCOPE + "/jobs", views.jobs_live),
        Route(SCOPE + "/jobs/{job_id}", views.job, name="job"),
        Route("/live" + SCOPE + "/jobs/{job_id}", views.job_live),
        Route(SCOPE + "/alarms", alarms.page, name="alarms"),
        Route("/live" + SCOPE + "/alarms", alarms.live),
        Route(
            SCOPE + "/alarms/{alarm}/{action}", alarms.act, methods=["POST"], name="alarm_action"
        ),
        Route(SCOPE + "/tags", views.tags, name="tags"),
        Route("/live" + SCOPE + "/tags", views.tags_live),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
