"""The operator pages over the runtime's real HTTP server (uvicorn in the runtime's loop,
real Mosquitto and Redis, logins through the login form): what each page shows, its live
stream, and the alarm actions with their access rules."""

from __future__ import annotations

from pathlib import Path

from microdcs.app.config import AppConfig
from tests.integration.webpages import login, request, sse_events, web_config, web_runtime


async def test_the_overview_lists_this_replica_for_a_logged_in_viewer(
    config: AppConfig, tmp_path: Path
) -> None:
    config = web_config(config, tmp_path)
    async with web_runtime(config):
        cookie, _ = await login(config.http_port, "vic")
        page = await request(config.http_port, "GET", "/", cookie=cookie)
        events = await sse_events(config.http_port, "/live", cookie, 1)
    assert page.status == 200
    assert "<h1>Overview</h1>" in page.body and config.resolved_instance_id in page.body
    assert events[0][0] == "snapshot"
