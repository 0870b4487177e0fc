"""Truthful faces in headless Chromium: the verdict matrix as the overview shows it, the
source-health panel of a project whose every source fails, the fleet charts and sparklines, and
times rewritten into the viewer's zone. Screenshots go to test-artifacts/web/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.monitor.web.conftest import screenshot
from tests.monitor.web.matrix_world import CASES, case_id, expected, matrix_runtime
from tests.monitor.web.test_browser import css, one
from tests.monitor.web.world import ThreadServer, World, web_app

pytestmark = [pytest.mark.peer, pytest.mark.slow]


@pytest.fixture(scope="module")
def matrix_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with matrix_runtime(tmp_path_factory.mktemp("matrix-ui")) as runtime, ThreadServer(web_app(runtime)) as server:
        yield server.url


def test_verdict_matrix_in_the_browser(matrix_url: str, browser: Any) -> None:
    browser.get(f"{matrix_url}/?sort=project&per_page=25")
    health = {
        r.get_attribute("data-project"): r.get_attribute("data-health")
        for r in css(browser, "#scorecard tbody tr[data-project]")
    }
    for case in CASES:
        assert health[case_id(*case)] == expected(*case).value, case
    assert health["broken"] == "warn"
    counts = one(browser, "#counts").text
    assert "1 fine" in counts and "not known" in counts and "0 not known" not in counts
    failing = one(browser, 'tr[data-project="m-failing-absent-quiet"] td[data-col="quality"]').text
    assert "WATCH" in failing and "evaluator source failing since" in failing and "500" in failing
    never = one(browser, 'tr[data-project="m-never-present-quiet"] td[data-col="quality"]').text
    assert never.startswith("?") and "evaluator source never run" in never
    assert one(browser, 'tr[data-project="broken"] td[data-col="sources"]').text == "3 failing"
    screenshot(browser, "10-overview-verdict-matrix")


def test_source_health_panel_of_a_project_whose_every_source_fails(matrix_url: str, browser: Any) -> None:
    browser.get(f"{matrix_url}/projects/broken")
    rows = {r.get_attribute("data-source"): r for r in css(browser, "#source-health tbody tr")}
    assert set(rows) == {"broken/evaluator", "broken/deps", "broken/bill", "advisories"}
    bill = rows["broken/bill"].text
    assert rows["broken/bill"].get_attribute("data-state") == "failing"
    assert "no FOCUS file matches" in bill and "focus every 1 h" in bill
    assert rows["advisories"].get_attribute("data-state") == "never run"
    # the script rewrote the UTC moments into the viewer's zone (kept as the tooltip)
    moment = rows["broken/deps"].find_element("css selector", "time")
    assert moment.get_attribute("title") == "2026-11-20 12:00:00 UTC"
    assert moment.text.startswith("2026-11-20 ")
    answers = one(browser, "#answers").text
    assert "Affordable? WATCH" in answers and "bill source failing since" in answers
    spent = one(browser, "#spent").text
    assert spent.startswith("no data") and "0.00" not in spent
    screenshot(browser, "11-project-every-source-failing")


def test_fleet_charts_and_sparklines(world: World, browser: Any) -> None:
    browser.get(world.url)
    charts = {f.get_attribute("id"): f for f in css(browser, "#fleet figure")}
    assert set(charts) == {"fleet-findings", "fleet-spend", "fleet-targets"}
    lines = [g.get_attribute("data-name") for g in charts["fleet-findings"].find_elements("css selector", "g.line")]
    assert lines == ["critical", "high"]
    bars = {b.get_attribute("data-label"): float(b.get_attribute("data-value"))
            for b in charts["fleet-targets"].find_elements("css selector", "rect.bar")}  # fmt: skip
    assert bars == {"below target": 1.0, "met": 0.0, "no value": 0.0, "no target": 3.0}
    assert "of 3,500 USD" in charts["fleet-spend"].text
    churn_spark = one(browser, 'tr[data-project="churn"] [data-spark="quality"] svg')
    assert int(churn_spark.get_attribute("data-points")) >= 25
    assert css(browser, 'tr[data-project="churn"] [data-spark="quality"] line.spark-ref')
    assert css(browser, 'tr[data-project="vision"] [data-spark="spend"] rect.spark-bar')
    screenshot(browser, "12-overview-fleet-header")
    browser.get(f"{world.url}/projects/churn")
    baseline = one(browser, "#quality figure .line-baseline path").get_attribute("d")
    plot = one(browser, "#quality figure rect.plot")
    left = float(plot.get_attribute("x"))
    right = left + float(plot.get_attribute("width"))
    xs = [float(x) for x in re.findall(r"[MLH](-?[\d.]+)", baseline)]
    assert min(xs) == pytest.approx(left, abs=1) and max(xs) == pytest.approx(right, abs=1)  # across the chart
