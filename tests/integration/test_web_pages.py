"""The operator pages over the runtime's real HTTP server (uvicorn in the runtime's loop,
real Mosquitto and Redis, logins through the login form): what each page shows, its live
stream, and the alarm actions with their access rules."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from microdcs.alarms.contract import AlarmState
from microdcs.app.config import AppConfig
from microdcs.app.devstack import free_port
from tests.integration.test_jobs_helpers import SCOPE, Station
from tests.integration.webpages import (
    configure_alarm,
    login,
    request,
    sse_events,
    temperature,
    web_config,
    web_runtime,
)
from tests.mesclient import MesClient


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
    assert '<td class="ok">ready</td>' in page.body
    assert events[0][0] == "snapshot"
    snapshot = events[0][1]
    assert isinstance(snapshot, dict)
    (replica,) = snapshot["replicas"]
    assert replica["name"] == config.resolved_instance_id and replica["ready"] is True


async def test_a_job_stored_by_the_mes_reaches_the_jobs_stream_and_page(
    config: AppConfig, tmp_path: Path
) -> None:
    config = web_config(config, tmp_path)
    async with web_runtime(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        await station.configure("workmaster", {"ID": "WM-1"})
        cookie, _ = await login(config.http_port, "vic")
        path = f"/live/scopes/{SCOPE}/jobs"
        listening = asyncio.create_task(sse_events(config.http_port, path, cookie, 2))
        await asyncio.sleep(0.3)
        assert await station.store("J-web-1", WorkMasterID=[{"ID": "WM-1"}]) == 1
        events = await listening
        page = await request(config.http_port, "GET", f"/scopes/{SCOPE}/jobs", cookie=cookie)
    assert events[0] == ("snapshot", {"rows": [], "removed": []})
    kind, update = events[1]
    assert kind == "update"
    assert isinstance(update, dict)
    (row,) = update["rows"]
    assert (row["id"], row["workMaster"], row["state"]) == ("J-web-1", "WM-1", "NotAllowedToStart")
    assert 'id="job-J-web-1"' in page.body and "NotAllowedToStart" in page.body


async def test_an_operator_acknowledges_through_the_page_and_a_viewer_may_not(
    config: AppConfig, tmp_path: Path
) -> None:
    config = web_config(config, tmp_path)
    async with web_runtime(config) as runtime, MesClient(config.mqtt.port) as mes:
        port = config.http_port
        await configure_alarm(mes, config, runtime, SCOPE)
        await temperature(mes, config, SCOPE, 55.0)
        async with asyncio.timeout(5):
            while (await runtime.alarms.alarms(SCOPE))[0].state is not AlarmState.UNACKNOWLEDGED:
                await asyncio.sleep(0.02)
        path = f"/scopes/{SCOPE}/alarms"
        viewer, viewer_token = await login(port, "vic")
        operator, operator_token = await login(port, "olga")
        seen_by_viewer = await request(port, "GET", path, cookie=viewer)
        seen_by_operator = await request(port, "GET", path, cookie=operator)
        forged = await request(port, "POST", f"{path}/TI-101.H/acknowledge", cookie=viewer,
                               form={"csrf": viewer_token})  # fmt: skip
        after_forgery = (await runtime.alarms.alarms(SCOPE))[0]
        done = await request(port, "POST", f"{path}/TI-101.H/acknowledge", cookie=operator,
                             form={"csrf": operator_token, "comment": "seen"})  # fmt: skip
        after = (await runtime.alarms.alarms(SCOPE))[0]
        journal = await request(port, "GET", path, cookie=operator)
    assert "Reactor temperature high" in seen_by_viewer.body
    assert "btn-acknowledge" not in seen_by_viewer.body.split("<template")[0]
    assert "btn-acknowledge" in seen_by_operator.body
    assert forged.status == 403 and after_forgery.state is AlarmState.UNACKNOWLEDGED
    assert done.status == 303 and "acknowledge+done" in (done.header("location") or "")
    assert after.state is AlarmState.ACKNOWLEDGED and after.operator == "olga"
    assert "<td>acknowledge</td>" in journal.body and "<td>olga</td>" in journal.body


async def test_the_tags_stream_sends_the_trend_first_then_each_new_value(
    config: AppConfig, tmp_path: Path
) -> None:
    config = web_config(config, tmp_path)
    async with web_runtime(config) as runtime, MesClient(config.mqtt.port) as mes:
        await configure_alarm(mes, config, runtime, SCOPE)
        await temperature(mes, config, SCOPE, 20.0)
        async with asyncio.timeout(5):
            while (await runtime.plantdata.read(SCOPE, ["TI-101"]))["TI-101"].value != 20.0:
                await asyncio.sleep(0.02)
        cookie, _ = await login(config.http_port, "vic")
        listening = asyncio.create_task(
            sse_events(config.http_port, f"/live/scopes/{SCOPE}/tags", cookie, 3)
        )
        await asyncio.sleep(0.3)
        await temperature(mes, config, SCOPE, 21.0)
        await asyncio.sleep(0.3)
        await temperature(mes, config, SCOPE, 22.5)
        events = await listening
        page = await request(config.http_port, "GET", f"/scopes/{SCOPE}/tags", cookie=cookie)
    assert [kind for kind, _ in events] == ["snapshot", "update", "update"]
    last = events[-1][1]
    assert isinstance(last, dict)
    (tag,) = last["tags"]
    assert tag["tag"] == "TI-101" and tag["value"] == 22.5 and tag["quality"] == "good"
    assert events[0][1]["tags"][0]["trend"] == [20.0]  # type: ignore[index]
    assert [e[1]["tags"][0]["value"] for e in events[1:]] == [21.0, 22.5]  # type: ignore[index]
    assert 'id="tag-TI-101"' in page.body and "degC" in page.body and "22.5" in page.body


async def test_the_overview_lists_every_replica_and_forgets_one_that_stopped(
    config: AppConfig, tmp_path: Path
) -> None:
    first = web_config(config, tmp_path)
    second = replace(first, instance_id=first.instance_id + "-b", http_port=free_port())
    async with web_runtime(first):
        cookie, _ = await login(first.http_port, "vic")
        async with web_runtime(second):
            async with asyncio.timeout(10):
                while (page := await overview(first, cookie)).count(READY) < 2:
                    await asyncio.sleep(0.2)
        after = await overview(first, cookie)
    assert first.instance_id in page and second.instance_id in page
    assert second.instance_id not in after and first.instance_id in after


READY = '<td class="ok">ready</td>'


async def overview(config: AppConfig, cookie: str) -> str:
    return (await request(config.http_port, "GET", "/", cookie=cookie)).body


async def test_an_engineer_takes_an_alarm_out_of_service_and_an_operator_may_not(
    config: AppConfig, tmp_path: Path
) -> None:
    config = web_config(config, tmp_path)
    async with web_runtime(config) as runtime, MesClient(config.mqtt.port) as mes:
        port = config.http_port
        await configure_alarm(mes, config, runtime, SCOPE)
        path = f"/scopes/{SCOPE}/alarms"
        engineer, engineer_token = await login(port, "erik")
        operator, operator_token = await login(port, "olga")
        seen_by_operator = await request(port, "GET", path, cookie=operator)
        refused = await request(port, "POST", f"{path}/TI-101.H/remove_from_service",
                                cookie=operator, form={"csrf": operator_token})  # fmt: skip
        seen_by_engineer = await request(port, "GET", path, cookie=engineer)
        done = await request(port, "POST", f"{path}/TI-101.H/remove_from_service",
                             cookie=engineer, form={"csrf": engineer_token})  # fmt: skip
        after = (await runtime.alarms.alarms(SCOPE))[0]
    assert "Every configured alarm" not in seen_by_operator.body
    assert refused.status == 403 and "engineer role needed" in refused.body
    assert 'id="configured-TI-101.H"' in seen_by_engineer.body
    assert done.status == 303
    assert after.state is AlarmState.OUT_OF_SERVICE and after.operator == "erik"
