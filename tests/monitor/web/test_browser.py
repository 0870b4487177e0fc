"""The UI in headless Chromium (Debian's chromium + chromedriver, through selenium) against a running
server: sign in, sort and filter the overview, open a project and read its charts, ack an alert,
create a silence, read and print the audit page. Screenshots go to test-artifacts/web/."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from alerts.store import AlertStore
from tests.monitor.web.conftest import ARTIFACTS, screenshot
from tests.monitor.web.world import SECRETS, World
from tests.support.peers import wait_until

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def css(driver: Any, selector: str) -> list[Any]:
    return list(driver.find_elements(by("CSS_SELECTOR"), selector))


def one(driver: Any, selector: str) -> Any:
    return driver.find_element(by("CSS_SELECTOR"), selector)


def rows(driver: Any) -> list[str]:
    return [row.get_attribute("data-project") for row in css(driver, "#scorecard tbody tr[data-project]")]


def arrived(driver: Any, path: str, selector: str, timeout: float = 20) -> None:
    """Wait for a page reached by a click: the URL changes when the navigation commits, before the
    new document is parsed, so wait for an element of the new page too."""
    wait_until(
        lambda: driver.current_url.endswith(path) and bool(css(driver, selector)),
        timeout,
        what=f"{path} ({selector})",
    )


def sign_in(driver: Any, world: World, who: str, target: str = "/") -> None:
    driver.get(f"{world.url}/logout")
    driver.get(f"{world.url}/login?next={target}")
    one(driver, "#token").send_keys(world.tokens[who])
    one(driver, "#sign-in-button").click()
    wait_until(lambda: one(driver, "#principal").text.startswith(f"ui-{who}"), 20, what=f"{who} to be signed in")


def test_sign_in_then_sort_and_filter_the_overview(world: World, browser: Any) -> None:
    browser.get(f"{world.url}/logout")
    browser.get(world.url)
    assert one(browser, "#sign-in").text == "Sign in"  # anonymous viewer by default
    one(browser, "#sign-in").click()
    one(browser, "#token").send_keys(world.tokens["admin"])
    one(browser, "#sign-in-button").click()
    # the URL changes when the navigation commits, before the new page is parsed: wait for its content
    wait_until(
        lambda: browser.current_url == f"{world.url}/" and one(browser, "#principal").text.startswith("ui-admin"),
        20,
        what="the overview after signing in",
    )
    assert world.tokens["admin"] not in browser.page_source
    assert "mlmon_session" not in browser.execute_script("return document.cookie")  # HttpOnly

    # the scorecard: four projects, the red flags counted, worst first
    assert rows(browser) == ["churn", "vision", "ranker", "finops"]
    flags = {a.get_attribute("data-flag"): a.text for a in css(browser, "#red-flags a")}
    assert flags == {"no_owner": "no owner: 1", "single_owner": "a single owner: 1", "no_target": "no success target: 3",
                     "no_baseline": "no baseline: 3", "no_budget": "no budget: 2"}  # fmt: skip
    churn = one(browser, 'tr[data-project="churn"]')
    assert churn.find_element(by("CSS_SELECTOR"), 'td[data-col="quality"]').text.startswith("NO 0.88 >= 0.92")
    assert "baseline 0.93" in churn.find_element(by("CSS_SELECTOR"), 'td[data-col="quality"]').text
    assert "5 overdue" in churn.find_element(by("CSS_SELECTOR"), 'td[data-col="stack"]').text
    assert "1 critical" in churn.find_element(by("CSS_SELECTOR"), 'td[data-col="alerts"]').text
    screenshot(browser, "01-overview")

    # sort by the share of the budget spent: a click, then a second click flips the direction
    one(browser, 'th[data-sort="spend"] a').click()
    wait_until(lambda: one(browser, 'th[data-sort="spend"]').get_attribute("aria-sort") == "descending", 10)
    assert rows(browser) == ["vision", "churn", "finops", "ranker"]  # 124%, 57%, then no budget (by id)
    one(browser, 'th[data-sort="spend"] a').click()
    wait_until(lambda: one(browser, 'th[data-sort="spend"]').get_attribute("aria-sort") == "ascending", 10)
    assert rows(browser) == ["churn", "vision", "finops", "ranker"]
    screenshot(browser, "02-overview-sorted-by-spend")

    # filter: a red flag, then a search on owners
    from selenium.webdriver.support.ui import Select

    Select(one(browser, "#filter-flag")).select_by_value("no_owner")
    one(browser, "#apply-filters").click()
    wait_until(lambda: rows(browser) == ["ranker"], 10, what="the no-owner filter")
    assert "flag=no_owner" in browser.current_url
    Select(one(browser, "#filter-flag")).select_by_value("")
    one(browser, "#filter-q").send_keys("grace")
    one(browser, "#apply-filters").click()
    wait_until(lambda: rows(browser) == ["vision"], 10, what="the search")
    screenshot(browser, "03-overview-filtered")


def test_the_project_page_draws_quality_spend_efficiency_and_findings(world: World, browser: Any) -> None:
    sign_in(browser, world, "viewer")
    one(browser, 'tr[data-project="churn"] th a').click()
    arrived(browser, "/projects/churn", "#target")
    assert one(browser, "#target").text == 'accuracy{model="churn-classifier"} >= 0.92'

    quality = one(browser, "#quality svg.chart-quality")
    assert quality.size["height"] > 100 and quality.size["width"] > 400  # laid out by the browser
    series = one(browser, "#quality g.line-series")
    assert int(series.get_attribute("data-points")) >= 50
    assert css(browser, "#quality g.line-baseline") and css(browser, "#quality g.hline-target")
    versions = css(browser, "#quality g.marker-version")
    assert len(versions) == 1 and "7 -> 8" in versions[0].get_attribute("textContent")
    drift = [m.get_attribute("textContent") for m in css(browser, "#quality g.marker-drift")]
    assert any("features/age psi" in d for d in drift) and any("alert feature-drift" in d for d in drift)

    burn = one(browser, "#spend svg.chart-burnup")
    assert burn.size["height"] > 100
    assert one(browser, "#spend g.hline-budget").get_attribute("data-value") == "3000"
    assert css(browser, "#spend polygon.band-forecast") and css(browser, "#spend g.line-forecast")
    assert "80% interval" in one(browser, "#budget").text
    kinds = css(browser, "#spend-kinds tbody tr")
    assert [k.get_attribute("data-scope") for k in kinds] == ["gpu"]  # the world's bill is GPU usage only
    assert kinds[0].text.split()[2:] == [*one(browser, "#spent").text.split()[:2], "counted"]

    bars = css(browser, "#spend svg.chart-efficiency rect.bar")
    assert len(bars) == 30 and {b.get_attribute("data-value") for b in bars} == {"0.25"}
    assert one(browser, "#efficiency figcaption").text == "720 GPU-hours held in the last 30 days"

    plan = one(browser, '#plan tr[data-package="torch"]')
    target = plan.get_attribute("data-target")
    assert target and plan.find_element(by("CSS_SELECTOR"), "td.target").text == target
    assert one(browser, "#plan-title").location["y"] < one(browser, "#findings").location["y"]  # the plan first
    group = one(browser, '#findings details.finding-group[data-package="torch"]')
    assert group.get_attribute("open") is None  # collapsed by default
    assert f"upgrade to {target}" in group.find_element(by("CSS_SELECTOR"), "summary").text
    for summary in css(browser, "#findings details.finding-group > summary"):
        summary.click()
    findings = css(browser, "#findings tbody tr")
    overdue = css(browser, "#findings tbody tr.overdue")
    assert findings and len(overdue) == 5
    cve = one(browser, "#findings tbody tr.overdue td.fix").text
    assert cve in ("2.8.0", "2.9.0", "2.10.0")
    assert any("2026-02-26" in r.text and "2.10.0" in r.text for r in overdue)  # CVE-2026-24747, high: 30 days
    assert all("2026-10-21" in r.text for r in findings)  # first seen at the first sync
    screenshot(browser, "04-project-churn")


def test_ack_an_alert_and_silence_another_from_the_alerts_page(world: World, browser: Any) -> None:
    sign_in(browser, world, "owner", "/alerts")
    assert browser.current_url.endswith("/alerts")
    assert {r.get_attribute("data-project") for r in css(browser, "#alerts tbody tr[data-alert]")} == {"churn"}
    row = next(r for r in css(browser, "#alerts tbody tr[data-alert]") if "accuracy-low" in r.text)
    alert_id = int(row.get_attribute("data-alert"))
    accuracy = row.find_element(by("CSS_SELECTOR"), "form.ack-form")
    accuracy.find_element(by("NAME"), "comment").send_keys("retraining on fresh data")
    accuracy.find_element(by("CSS_SELECTOR"), "button.ack").click()
    wait_until(lambda: one(browser, "#notice").text == "Alert acknowledged.", 10)
    acked = one(browser, f'#alerts tr[data-alert="{alert_id}"] td.status').text
    assert acked == "acked by ui-owner: retraining on fresh data"
    stored = AlertStore(world.runtime.store.engine).get(alert_id)
    assert stored is not None and stored.acked_by == "ui-owner"

    drift = next(r for r in css(browser, "#alerts tbody tr[data-alert]") if "feature-drift" in r.text)
    drift_id = drift.get_attribute("data-alert")
    drift.find_element(by("CSS_SELECTOR"), "details.silence-alert summary").click()
    form = drift.find_element(by("CSS_SELECTOR"), "form.silence-form")
    assert (
        form.find_element(by("NAME"), "matchers").get_attribute("value") == 'project="churn"\nalertname="feature-drift"'
    )
    form.find_element(by("NAME"), "comment").send_keys("new reference after the v8 rollout")
    form.find_element(by("CSS_SELECTOR"), "button").click()
    wait_until(lambda: one(browser, "#notice").text == "Silence created.", 10)
    assert "silenced" in one(browser, f'#alerts tr[data-alert="{drift_id}"] td.status').text
    listed = css(browser, "#silence-list tbody tr")
    assert len(listed) == 1 and 'project="churn"' in listed[0].text and "ui-owner" in listed[0].text
    screenshot(browser, "05-alerts-acked-and-silenced")

    from selenium.webdriver.support.ui import Select

    Select(one(browser, "#filter-muted")).select_by_value("hide")
    one(browser, "#apply-alert-filters").click()
    wait_until(lambda: "muted=hide" in browser.current_url, 10)
    shown = {r.get_attribute("data-alert") for r in css(browser, "#alerts tbody tr[data-alert]")}
    assert drift_id not in shown and str(alert_id) in shown
    actions = [
        (c.action, c.actor) for c in world.runtime.store.changes.entries(actions=["alert.ack", "silence.create"])
    ]
    assert actions == [("alert.ack", "ui-owner"), ("silence.create", "ui-owner")]


def test_the_audit_page_prints(world: World, browser: Any) -> None:
    sign_in(browser, world, "auditor")
    one(browser, 'header nav a[href="/audit"]').click()
    arrived(browser, "/audit", "#audit-facts")
    facts = one(browser, "#audit-facts").text
    assert "0%" in one(browser, "#audit-compliance").text and "overdue" in facts
    projects = {r.get_attribute("data-project") for r in css(browser, "#audit-projects tbody tr")}
    assert projects == {"churn", "vision", "ranker", "finops"}
    assert any(r.get_attribute("data-status") == "overdue" for r in css(browser, "#audit-findings tbody tr"))
    screenshot(browser, "06-audit")

    # print media: navigation and forms hidden, the findings kept
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not one(browser, "header.top").is_displayed()
        assert not one(browser, "#audit-form").is_displayed()
        assert one(browser, "#audit-findings").is_displayed()
        pdf = browser.execute_cdp_cmd("Page.printToPDF", {"landscape": True, "printBackground": True})
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page") >= 2
    (ARTIFACTS / "06-audit.pdf").write_bytes(data)

    one(browser, "#audit-print").click()
    wait_until(
        lambda: "/audit/print" in browser.current_url and browser.title.startswith("PyTorch stack audit report"),
        20,
        what="the printable report",
    )
    screenshot(browser, "07-audit-printable")
    for secret in SECRETS.values():
        assert secret not in browser.page_source or secret == SECRETS["MLMON_UI_SMTP_USER"]


def test_an_expired_session_shows_why_and_signing_in_returns_to_the_page(world: World, browser: Any) -> None:
    browser.get(f"{world.url}/logout")
    browser.add_cookie({"name": "mlmon_session", "value": world.tokens["expired"], "path": "/"})
    browser.get(f"{world.url}/alerts?project=churn")
    reason = one(browser, "#reason").text
    assert reason == "token 'old-laptop' expired at 2026-10-22T12:00:00+00:00"
    assert world.tokens["expired"] not in browser.page_source and "Traceback" not in browser.page_source
    screenshot(browser, "08-expired-session")
    one(browser, "#token").send_keys(world.tokens["viewer"])
    one(browser, "#sign-in-button").click()
    wait_until(
        lambda: (
            browser.current_url.endswith("/alerts?project=churn")
            and one(browser, "#principal").text.startswith("ui-viewer")
        ),
        20,
        what="the page asked for, signed in",
    )
