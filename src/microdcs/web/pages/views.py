"""The read-only pages: overview, a scope's jobs, one job with its recipe chart, tags.

Each page renders its current state on the server (readable without JavaScript) and
names its live stream; the page script applies the stream's updates in place.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from microdcs.jobs.contract import JobState
from microdcs.web.chart import layout, render_svg
from microdcs.web.pages.deps import PageDeps
from microdcs.web.pages.feeds import (
    JobFeed,
    JobsFeed,
    OverviewFeed,
    TagsFeed,
    detail_json,
    overview_data,
)
from microdcs.web.pages.render import Renderer, live_response, scope_url
from microdcs_models.sfc_recipe import SfcRecipe

STATES = [state.browse_name for state in JobState]


class Views:
    def __init__(self, deps: PageDeps, renderer: Renderer) -> None:
        self.deps = deps
        self.renderer = renderer

    async def overview(self, request: Request) -> Response:
        data = await overview_data(self.deps)
        return self.renderer.page(
            request, "overview.html.jinja2", {"data": data, "states": STATES, "live": "/live"}
        )

    async def overview_live(self, request: Request) -> Response:
        return live_response(self.deps.hub, ("overview",), lambda: OverviewFeed(self.deps))

    async def jobs(self, request: Request) -> Response:
        scope = request.path_params["scope"]
        state = request.query_params.get("state", "")
        if state and state not in STATES:
            raise HTTPException(400, f"unknown state {state!r}")
        listed = await self.deps.jobs.jobs(scope)
        rows = [row.to_json() for row in listed.rows]
        return self.renderer.page(
            request,
            "jobs.html.jinja2",
            {
                "scope": scope,
                "rows": rows,
                "state": state,
                "states": STATES,
                "live": f"/live/scopes/{scope_url(scope)}/jobs",
            },
        )

    async def jobs_live(self, request: Request) -> Response:
        scope = request.path_params["scope"]
        return live_response(self.deps.hub, ("jobs", scope), lambda: JobsFeed(self.deps, scope))

    async def job(self, request: Request) -> Response:
        scope = request.path_params["scope"]
        job_id = request.path_params["job_id"]
        detail = await self.deps.jobs.job(scope, job_id)
        if detail is None:
            raise HTTPException(404, f"no job {job_id!r} in scope {scope!r}")
        progress = await self.deps.jobs.progress(scope, job_id)
        chart = ""
        if detail.recipe_json is not None:
            try:
                recipe = SfcRecipe.from_json(detail.recipe_json)
                chart = render_svg(layout(recipe), title=f"recipe of {job_id}")
            except (ValueError, KeyError, TypeError) as error:
                chart = f"<p class='error'>The recipe cannot be drawn: {error}</p>"
        return self.renderer.page(
            request,
            "job.html.jinja2",
            {
                "scope": scope,
                "job_id": job_id,
                "detail": detail_json(detail, progress),
                "order": detail.order,
                "chart": chart,
                "live": f"/live/scopes/{scope_url(scope)}/jobs/{scope_url(job_id)}",
            },
        )

    async def job_live(self, request: Request) -> Response:
        scope = request.path_params["scope"]
        job_id = request.path_params["job_id"]
        return live_response(
            self.deps.hub, ("job", scope, job_id), lambda: JobFeed(self.deps, scope, job_id)
        )

    async def tags(self, request: Request) -> Response:
        scope = request.path_params["scope"]
        tags = await self.deps.tags.tags(scope)
        samples = {}
        if self.deps.tag_reader is not None and tags:
            samples = dict(await self.deps.tag_reader.read(scope, [t.name for t in tags]))
        return self.renderer.page(
            request,
            "tags.html.jinja2",
            {
                "scope": scope,
                "tags": tags,
                "samples": samples,
                "live": f"/live/scopes/{scope_url(scope)}/tags",
            },
        )

    async def tags_live(self, request: Request) -> Response:
        scope = request.path_params["scope"]
        return live_response(self.deps.hub, ("tags", scope), lambda: TagsFeed(self.deps, scope))
