"""A taken APP_HTTP_PORT: the endpoint moves to a free port and says which (issue 20, item 6)."""

from __future__ import annotations

import logging
import socket

import pytest

from microdcs.app.telemetry.health import Readiness
from microdcs.app.telemetry.http import TelemetryServer
from microdcs.app.telemetry.metrics import Metrics
from tests.integration.test_telemetry_endpoint import _no_redis, get, serving


async def test_taken_port_falls_back_to_a_free_one_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = TelemetryServer(
            "127.0.0.1", port, metrics=metrics, readiness=Readiness([], _no_redis)
        )
        with caplog.at_level(logging.WARNING, logger="microdcs.app.telemetry.http"):
            async with serving(server) as chosen:
                assert chosen != port
                assert (await get(chosen, "/healthz")).status == 200
    metrics.shutdown()
    assert f"APP_HTTP_PORT {port} is in use; health and metrics on free port {chosen}" in (
        caplog.text
    )
