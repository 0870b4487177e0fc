"""The demo fleet `make run` serves, in headless Chromium: the overview a newcomer sees first, and
the project whose accuracy fell after a model version change. Screenshots go to
test-artifacts/web/ (the README's docs/overview.png is the first one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.monitor.spend.focus_data import require_pyarrow
from tests.monitor.web.conftest import screenshot
from tests.monitor.web.test_browser import arrived, css, one, rows
from tests.support.demo import Demo, running_demo
from tests.support.peers import wait_until

pytestmark = [pytest.mark.peer, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    require_pyarrow()
    with running_demo(tmp_path_factory.mktemp("demo-ui")) as running:

        def settled() -> bool:
            alerts = running.get("/api/v1/alerts", state="firing")
            names = {a["labels"]["alertname"] for a in (alerts if isinstance(alerts, list) else alerts["alerts"])}
            page = httpx.get(running.url + "/", timeout=20).text
            return {"accuracy-drop", "budget", "idle-gpus", "patch-sla"} <= names and "data as of" in page

        running.wait_for("the demo's alerts and advisory data", settled)
        yield running


def test_the_demo_overview(demo: Demo, browser: Any) -> None:
    browser.get(demo.url + "/")
    wait_until(lambda: len(rows(browser)) == 10, 20, what="ten project rows")
    assert one(browser, "#site-banner").text.startswith("Demo fleet:")
    assert "the torch-family OSV snapshot shipped with mlmon" in one(browser, "#advisory-data").text
    fraud = one(browser, 'tr[data-project="fraud"]').text
    assert "0.9" in fraud and "baseline 0.962" in fraud
    assert "firing" in one(browser, 'tr[data-project="fraud"]').text
    assert "torch 1.13.0+cu117" in one(browser, 'tr[data-project="search-rank"]').text
    assert "overdue" in one(browser, 'tr[data-project="search-rank"]').text
    assert "forecast" in one(browser, 'tr[data-project="vision"]').text
    assert "no owner" in one(browser, 'tr[data-project="forecast"]').text
    screenshot(browser, "demo-overview")

    # the live overview re-renders while the demo's sources run, so a click can land on a row that
    # is being replaced: follow the row's link instead
    link = one(browser, 'tr[data-project="fraud"] th a').get_attribute("href")
    assert link.endswith("/projects/fraud")
    browser.get(link)
    arrived(browser, "/projects/fraud", "#quality", timeout=60)
    versions = css(browser, "#quality g.marker-version")
    assert any("7 -> 8" in v.get_attribute("textContent") for v in versions)
    assert one(browser, "#site-banner").text.startswith("Demo fleet:")
    screenshot(browser, "demo-project-fraud")
