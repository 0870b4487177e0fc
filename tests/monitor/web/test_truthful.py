"""Truthful faces over HTTP: the verdict matrix (sources ok / failing / never run x data present /
absent x alerts), the reasons in the cells, source health on the project page and the failing
count on the overview, and a project whose every source fails rendering every page with its reasons."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from monitor.runtime import Runtime
from monitor.views.scorecard import build_scorecards
from monitor.views.verdicts import Status
from tests.monitor.web.matrix_world import CASES, case_id, expected, matrix_runtime
from tests.monitor.web.world import web_app


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with matrix_runtime(tmp_path_factory.mktemp("matrix")) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def client(matrix: Runtime) -> Iterator[TestClient]:
    with TestClient(web_app(matrix)) as http:
        yield http


@pytest.mark.parametrize(("sources", "data", "alerts"), CASES, ids=["-".join(c) for c in CASES])
def test_verdict_matrix(matrix: Runtime, sources: str, data: str, alerts: str) -> None:
    pid = case_id(sources, data, alerts)
    project = matrix.config.project(pid)
    assert project is not None
    card = build_scorecards(matrix.store, matrix.config, matrix.clock.now(), [project])[0]
    assert card.worst is expected(sources, data, alerts), (card.worst, card.quality)
    assert card.alerts.firing == (1 if alerts == "firing" else 0)
    reasons = " ".join(card.quality.reasons)
    if sources == "failing":
        assert card.quality.status is Status.WARN
        assert "evaluator source failing since 2026-11-20 12:00:00 UTC" in reasons and "500" in reasons
        assert card.sources_failing == 1
    elif sources == "never":
        assert "evaluator source never run" in reasons and card.sources_never == 1
        assert card.quality.status is Status.NONE
    elif data == "absent":
        assert card.quality.status is Status.NONE
        assert reasons == "no value of accuracy yet (declared target >= 0.9)"
    else:
        assert card.quality.status is Status.OK and card.quality.reasons == ()


def test_overview_counts_and_cells_say_why(client: TestClient) -> None:
    html = client.get("/?per_page=25").text
    want = dict.fromkeys(Status, 0)
    for case in CASES:
        want[expected(*case)] += 1
    want[Status.WARN] += 1  # broken
    counts = re.search(r'id="counts">(.*?)</p>', html, re.S)
    assert counts is not None
    text = re.sub(r"<[^>]+>", "", counts.group(1))
    assert f"{want[Status.BAD]} with a problem" in text and f"{want[Status.WARN]} worth a look" in text
    assert f"{want[Status.OK]} fine" in text and f"{want[Status.NONE]} not known" in text
    assert want[Status.NONE] > 0 and want[Status.OK] == 1
    row = re.search(r'<tr data-project="m-failing-present-quiet".*?</tr>', html, re.S)
    assert row is not None
    assert 'data-failing="1"' in row.group(0) and "1</strong> failing" in row.group(0)
    assert "evaluator source failing since" in row.group(0)


def test_a_project_whose_every_source_fails_renders_every_page_with_the_reasons(
    matrix: Runtime, client: TestClient
) -> None:
    project = matrix.config.project("broken")
    assert project is not None
    card = build_scorecards(matrix.store, matrix.config, matrix.clock.now(), [project])[0]
    assert card.worst is Status.WARN and card.sources_failing == 3
    assert card.spend.status is Status.WARN and card.spend.spent is None
    assert any("bill source failing" in r for r in card.spend.reasons)
    assert card.stack.status is Status.WARN and any("deps source failing" in r for r in card.stack.reasons)

    page = client.get("/projects/broken")
    assert page.status_code == 200
    html = page.text
    panel = re.search(r'<table class="data" id="source-health">.*?</table>', html, re.S)
    assert panel is not None
    states = dict(re.findall(r'<tr data-source="([^"]+)" data-state="([^"]+)"', panel.group(0)))
    assert states == {"broken/evaluator": "failing", "broken/deps": "failing", "broken/bill": "failing",
                      "advisories": "never run"}  # fmt: skip
    assert "500" in panel.group(0) and "requirements.txt" in panel.group(0)
    # missing is never zero: no "0.00 USD (0%)" for a budget whose bill fails
    spent = re.search(r'<td id="spent">(.*?)</td>', html, re.S)
    assert spent is not None and "no data" in spent.group(1) and "0.00" not in spent.group(1)
    assert "0%" not in spent.group(1)
    for path in ("/", "/alerts", "/alerts?project=broken"):
        assert client.get(path).status_code == 200, path


def test_alerts_page_sorts_by_severity_and_shows_units(client: TestClient) -> None:
    html = client.get("/alerts").text
    severities = re.findall(
        r'<tr data-alert="\d+" data-state="[a-z]+" data-project="[^"]*" data-severity="([^"]*)"', html
    )
    assert severities and severities == sorted(severities, key=lambda s: {"critical": 0, "warning": 2}.get(s, 5))
    assert re.search(r'<time datetime="2026-11-20T12:00:00Z" data-local="1">2026-11-20 12:00:00 UTC</time>', html)
