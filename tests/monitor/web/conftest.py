"""Fixtures of the UI tests: the month-long world (world.py), a server on it, headless Chromium."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.monitor.web.world import ThreadServer, World, build_world, peers, web_app
from tests.support.peers import REPO, missing, require_binary

ARTIFACTS = REPO / "test-artifacts" / "web"
CHROMIUM_HOW = "apt-get install chromium chromium-driver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def make_world(tmp: Path, anonymous: str = "viewer", database_url: str | None = None) -> World:
    with peers() as (opencost_url, index_url):
        return build_world(tmp, opencost_url, index_url, anonymous, database_url)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The world served by uvicorn in a thread of this process (FrozenClock at NOW)."""
    built = make_world(tmp_path_factory.mktemp("ui-world"))
    built.app = web_app(built.runtime)
    with ThreadServer(built.app) as server:
        built.url = server.url
        yield built
    built.runtime.store.close()


@pytest.fixture(autouse=True)
def _fresh_attempt_counts(request: pytest.FixtureRequest) -> None:
    """Each test is its own client: failed sign-ins of earlier tests must not rate-limit it."""
    from monitor.auth.attempts import FailedAttempts

    if "world" in request.fixturenames:
        app = request.getfixturevalue("world").app
        if app is not None:
            app.state.auth_attempts = FailedAttempts()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Debian's chromedriver (selenium never fetches a browser or driver)."""
    chromium = require_binary("chromium", CHROMIUM_HOW)
    chromedriver = require_binary("chromedriver", CHROMIUM_HOW)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium", "install the dev extra: pip install -e '.[dev]'")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download anything
    profile = tempfile.mkdtemp(prefix="mlmon-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str) -> Path:
    """A full-page PNG under test-artifacts/web/ (kept as a test artifact)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1400, min(max(height, 800), 8000))
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path
