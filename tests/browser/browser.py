"""Headless Chromium for the page tests, driven by Selenium from the test's event loop.

Selenium blocks, and the runtime under test runs in the same loop, so every browser call
goes through a worker thread (:class:`Browser`); a wait polls a script in the page.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.integration.webpages import PASSWORDS

REPO = Path(__file__).resolve().parents[2]
#: Screenshots of each page, the test run's artifact (docs/web/ holds committed copies).
SCREENSHOTS = REPO / ".run" / "screenshots"

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
)  # fmt: skip


def start_chromium(profile: Path) -> WebDriver:
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


def chromium(profile: Path) -> Iterator[WebDriver]:
    driver = start_chromium(profile)
    try:
        yield driver
    finally:
        driver.quit()


class Browser:
    """One Chromium, used from async tests."""

    def __init__(self, driver: WebDriver, port: int) -> None:
        self.driver = driver
        self.base = f"http://127.0.0.1:{port}"

    async def call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self, path: str) -> None:
        await self.call(self.driver.get, self.base + path)

    async def js(self, script: str, *args: Any) -> Any:
        return await self.call(self.driver.execute_script, script, *args)

    async def until(self, script: str, timeout: float = 10.0) -> Any:
        """The first truthy value of ``script`` (a function body returning it)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = await self.js(script)
            if last:
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"not within {timeout} s: {script} (last: {last!r})")

    async def click(self, css: str) -> None:
        element = await self.call(self.driver.find_element, By.CSS_SELECTOR, css)
        await self.call(element.click)

    async def count(self, css: str) -> int:
        return len(await self.call(self.driver.find_elements, By.CSS_SELECTOR, css))

    async def login(self, name: str, then: str = "/") -> None:
        """Through the real login form."""
        await self.call(self.driver.delete_all_cookies)
        await self.open(f"/login?next={then}")
        for field, value in (("name", name), ("password", PASSWORDS[name])):
            element = await self.call(self.driver.find_element, By.ID, field)
            await self.call(element.send_keys, value)
        await self.click("#login-button")
        await self.until("return document.body.dataset.page !== undefined")

    async def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.call(self.driver.save_screenshot, str(path))
        return path
