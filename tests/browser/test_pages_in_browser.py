"""The operator pages in a real browser (headless Chromium through Selenium) against a
runtime with real Mosquitto and Redis, logged in through the login form: live jobs, the
recipe chart following the simulated equipment, an alarm acknowledged by a click, a
viewer without actions; each page's screenshot lands in ``.run/screenshots/``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver

from microdcs.alarms.contract import AlarmState
from microdcs.app.config import AppConfig
from tests.browser.browser import Browser
from tests.integration.sfc_helpers import action, configure_and_start, scenario_recipe, simulator
from tests.integration.test_jobs_helpers import SCOPE, Station
from tests.integration.webpages import configure_alarm, temperature, web_config, web_runtime
from tests.mesclient import MesClient

JOBS = f"/scopes/{SCOPE}/jobs"
ALARMS = f"/scopes/{SCOPE}/alarms"


def row_state(job_id: str) -> str:
    return f"return document.querySelector('#job-{job_id}')?.dataset.state"


async def test_a_job_from_the_mes_appears_and_runs_its_chart_live(
    config: AppConfig, tmp_path: Path, driver: WebDriver
) -> None:
    config = web_config(config, tmp_path)
    async with (
        web_runtime(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=0.1) as _,
    ):
        browser = Browser(driver, config.http_port)
        await browser.login("vic")
        await browser.until("return document.querySelector('h1')?.textContent === 'Overview'")
        await browser.screenshot("overview")
        await browser.open(JOBS)
        await browser.until("return document.getElementById('live-state').className.includes('on')")
        await browser.js("window.notReloaded = true")
        station = Station(mes, config.jobs_prefix, runtime)
        await configure_and_start(station, "J1", scenario_recipe(delay_ms=1500))
        assert await browser.until(row_state("J1")) in {"AllowedToStart", "Running"}
        await browser.until(f"{row_state('J1')} === 'Running'")
        assert await browser.js("return window.notReloaded") is True
        await browser.screenshot("jobs")
        choose = "const f = document.getElementById('state-filter'); f.value = arguments[0];"
        choose += "f.dispatchEvent(new Event('change'));"
        await browser.js(choose, "Ended")
        assert await browser.js("return document.getElementById('job-J1').hidden") is True
        assert "state=Ended" in await browser.js("return location.search")
        await browser.js(choose, "Running")
        assert await browser.js("return document.getElementById('job-J1').hidden") is False
        await browser.click("#job-J1 a")
        await browser.until("return document.body.dataset.page === 'job'")
        await browser.until("return document.querySelector('#step-Cut.active') !== null")
        await browser.until(
            "return document.querySelector('#step-Drill.active') !== null"
            " && document.querySelector('#step-Sand.active') !== null"
            " && document.querySelector('#step-Cut.visited') !== null"
            " && document.querySelector('#step-Cut.active') === null"
        )
        state = await browser.js("return document.getElementById('job-state').textContent")
        assert "Running" in state
        await browser.screenshot("job")
        await browser.until(
            "return document.getElementById('job-state').textContent.startsWith('Ended')", 15
        )
        assert await browser.js("return document.getElementById('recipe-status').textContent") == (
            "completed"
        )
        assert await browser.count("#chart g.step.active") == 0
        assert await browser.count("#chart g.step.visited") == 4
        assert await browser.count("#history li") >= 3


async def test_an_operator_acknowledges_by_click_and_a_viewer_has_no_actions(
    config: AppConfig, tmp_path: Path, driver: WebDriver
) -> None:
    config = web_config(config, tmp_path)
    async with web_runtime(config) as runtime, MesClient(config.mqtt.port) as mes:
        retained = await mes.watch(f"{config.alarms.topic_prefix}/{SCOPE}/alarms")
        await configure_alarm(mes, config, runtime, SCOPE)
        for value in (40.0, 47.0, 55.0):
            await temperature(mes, config, SCOPE, value)
            await asyncio.sleep(0.15)
        browser = Browser(driver, config.http_port)
        await browser.login("olga", ALARMS)
        await browser.until(
            "return document.querySelector('#alarm-TI-101\\\\.H')?.dataset.state"
            " === 'unacknowledged'"
        )
        await browser.screenshot("alarms")
        await browser.click("#alarm-TI-101\\.H button.btn-acknowledge")
        await browser.until(
            "return document.querySelector('#alarm-TI-101\\\\.H')?.dataset.state === 'acknowledged'"
        )
        stored = (await runtime.alarms.alarms(SCOPE))[0]
        assert stored.state is AlarmState.ACKNOWLEDGED and stored.operator == "olga"
        async with asyncio.timeout(5):
            while True:
                listed = (await retained.get()).json()
                if [a["State"] for a in listed["Alarms"]] == ["acknowledged"]:
                    break
        assert "acknowledge done" in await browser.js(
            "return document.getElementById('message').textContent"
        )

        await browser.open(f"/scopes/{SCOPE}/tags")
        await browser.until("return document.getElementById('live-state').className.includes('on')")
        for value in (56.0, 58.5, 57.0, 60.0):
            await temperature(mes, config, SCOPE, value)
            await asyncio.sleep(0.15)
        await browser.until(
            "return document.querySelector('#tag-TI-101 svg.spark polyline')"
            ".getAttribute('points').split(' ').length >= 3"
        )
        await browser.screenshot("tags")

        await browser.login("vic", ALARMS)
        await browser.until("return document.querySelector('#alarm-TI-101\\\\.H') !== null")
        assert await browser.count("#alarms button") == 0
        forged = await browser.js(
            "const token = document.querySelector('input[name=csrf]').value;"
            "const xhr = new XMLHttpRequest();"
            f"xhr.open('POST', '{ALARMS}/TI-101.H/shelve', false);"
            "xhr.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');"
            "xhr.send('minutes=30&csrf=' + encodeURIComponent(token));"
            "return xhr.status;"
        )
        assert forged == 403
        assert (await runtime.alarms.alarms(SCOPE))[0].state is AlarmState.ACKNOWLEDGED


def delayed_recipe() -> dict[str, Any]:
    """Heat's action waits 2 s (qualifier D) before it is sent; then Cool."""
    return {
        "Steps": [{"Name": "Heat", "Initial": True}, {"Name": "Cool"}],
        "Actions": [action("heat", "Heat", "com.example.heat.v1", "D", Time=2.0),
                    action("cool", "Cool", "com.example.cool.v1")],
        "Transitions": [{"Source": "Heat", "Target": "Cool", "Condition": "done"}],
    }  # fmt: skip


async def test_a_delayed_action_counts_down_on_the_chart_until_it_runs(
    config: AppConfig, tmp_path: Path, driver: WebDriver
) -> None:
    config = web_config(config, tmp_path)
    async with (
        web_runtime(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, emit=None) as _,
    ):
        browser = Browser(driver, config.http_port)
        await browser.login("vic")
        station = Station(mes, config.jobs_prefix, runtime)
        await configure_and_start(station, "D1", delayed_recipe())
        await browser.open(f"{JOBS}/D1")
        timer = await browser.until(
            "const t = document.querySelector('#action-Heat-heat tspan.timer');"
            "return t && t.textContent.startsWith(' delay') && t.textContent"
        )
        listed = await browser.js("return document.getElementById('timers').textContent")
        assert "delay Heat/heat" in listed
        assert 0.0 < float(timer.removeprefix(" delay").removesuffix("s")) <= 2.0
        await browser.until(
            "return document.getElementById('job-state').textContent.startsWith('Ended')", 10
        )
        assert await browser.js("return document.getElementById('timers').children.length") == 0
        assert (
            await browser.js(
                "return document.querySelector('#action-Heat-heat tspan.timer').textContent"
            )
            == ""
        )
