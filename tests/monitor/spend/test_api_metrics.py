"""The spend API and /metrics on data a real focus source stored: budgets, forecast, TCO, cost
per quality, attribution with unattributed spend shown; the exposition passes promtool."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.core.types import Sample, SeriesKey, ms_from_datetime
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.spend.periods import PeriodKind, period_at
from monitor.spend.series import zone
from tests.conftest import RuntimeFactory
from tests.monitor.spend.focus_data import Charge, require_pyarrow, write_focus
from tests.support.peers import require_binary

CONFIG = """
projects:
  - id: finops
    owners: [{{name: Fin, email: fin@example.com}}]
    sources:
      - name: aws
        kind: focus
        interval: 1h
        params:
          path: {exports}
          attribution: [{{tag: ml-project}}]
  - id: churn
    name: Churn classifier
    owners: [{{name: Ada, email: ada@example.com}}]
    spend:
      budget: {{amount: 1000, forecast: {{lookback: 14d, min_days: 3}}}}
      fixed_costs:
        - {{name: ML engineers, category: people, monthly: 3000}}
        - {{name: Experiment tracking, category: licences, monthly: 100}}
      accuracy: {{metric: accuracy, match: ['model="churn-v2"']}}
      predictions: {{metric: predictions_served, aggregation: sum}}
  - id: vision
    owners: [{{name: Grace, email: grace@example.com}}]
"""


def charges(today: date) -> list[Charge]:
    out = []
    for back in range(5, -1, -1):
        day = today - timedelta(days=back)
        hours = range(24) if back else range(1)  # today: only the first hour so far
        out.extend(Charge(datetime(day.year, day.month, day.day, hour, tzinfo=UTC), 1.0, "churn") for hour in hours)
        out.append(Charge(datetime(day.year, day.month, day.day, 0, tzinfo=UTC), 5.0, "vision", gpu=False))
        out.append(Charge(datetime(day.year, day.month, day.day, 0, tzinfo=UTC), 3.0, "Mystery", gpu=False))
        out.append(Charge(datetime(day.year, day.month, day.day, 0, tzinfo=UTC), 2.0, None, gpu=False))
    return out


@pytest.fixture
def runtime(make_runtime: RuntimeFactory, tmp_path: Path) -> Runtime:
    exports = tmp_path / "exports"
    exports.mkdir()
    now = datetime.now(UTC).replace(microsecond=0)
    now = max(now, now.replace(hour=0, minute=30, second=0))  # the first charge of today has started
    clock = FrozenClock(now)
    runtime = make_runtime(CONFIG.format(exports=exports), clock=clock)
    write_focus(exports / "month.csv", charges(now.date()))
    [plan] = runtime.plans
    assert SourceRunner(runtime.store, clock).run(plan).ok
    ts = ms_from_datetime(now)
    runtime.store.samples.append(
        [
            Sample(SeriesKey("churn", "accuracy", (("model", "churn-v2"),)), ts - 3_600_000, 0.86),
            Sample(SeriesKey("churn", "accuracy", (("model", "churn-v2"),)), ts, 0.88),
            Sample(SeriesKey("churn", "accuracy", (("model", "other"),)), ts, 0.10),  # not matched
            Sample(SeriesKey("churn", "predictions_served", ()), ts - 3_600_000, 30_000),
            Sample(SeriesKey("churn", "predictions_served", ()), ts, 20_000),
        ]
    )
    return runtime


def in_period(now: datetime) -> tuple[float, int]:
    """Churn's spend in the current calendar month (UTC) and the number of its days with spend."""
    period = period_at(now, zone("UTC"), PeriodKind.MONTHLY)
    spent, days = 0.0, 0
    for back in range(5, -1, -1):
        day = now.date() - timedelta(days=back)
        if period.contains(day):
            spent += 24.0 if back else 1.0
            days += 1
    return spent, days


def test_projects_and_project_detail(runtime: Runtime) -> None:
    now = runtime.clock.now()
    spent, _ = in_period(now)
    with TestClient(create_app(runtime)) as client:
        projects = client.get("/api/v1/spend/projects").json()
        detail = client.get("/api/v1/spend/projects/churn", params={"days": 10}).json()
        missing = client.get("/api/v1/spend/projects/nope")
    by_id = {p["project"]: p for p in projects}
    churn = by_id["churn"]["budget"]
    assert churn["amount"] == 1000 and churn["currency"] == "USD" and churn["spent"] == pytest.approx(spent)
    assert churn["used"] == pytest.approx(spent / 1000) and churn["data_through"] == now.date().isoformat()
    assert churn["period"]["label"] == f"{now:%Y-%m}" and churn["by_source"] == {"finops/aws": pytest.approx(spent)}
    forecast = churn["forecast"]
    assert forecast["available"] and forecast["daily_mean"] == pytest.approx(24.0) and forecast["confidence"] == 0.8
    assert forecast["lower"] <= forecast["point"] <= forecast["upper"]
    # five complete days: too few to tell the weekdays apart, so the flat run rate
    assert forecast["seasonality"] == "none" and forecast["seasonality_p"] is None
    assert [(t["spend"], t["threshold"]) for t in churn["thresholds"]] == [
        ("actual", "50%"),
        ("actual", "90%"),
        ("actual", "100%"),
        ("forecast", "100%"),
    ]
    assert by_id["vision"]["budget"] is None and by_id["vision"]["counted_sources"] == ["finops/aws"]
    gpu_days = {g["day"]: g["gpu_hours"] for g in detail["gpu"]}
    assert gpu_days[(now.date() - timedelta(days=1)).isoformat()] == 24.0  # g5.4xlarge rows: 1 GPU each
    billed = [d for d in detail["daily"] if d["basis"] == "billed" and d["scope"] == "gpu"]
    assert {d["day"] for d in billed} == {(now.date() - timedelta(days=b)).isoformat() for b in range(6)}
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "unknown project 'nope'"


def test_tco_and_cost_per_quality(runtime: Runtime) -> None:
    now = runtime.clock.now()
    spent, _ = in_period(now)
    with TestClient(create_app(runtime)) as client:
        tco = client.get("/api/v1/spend/projects/churn/tco", params={"periods": 2}).json()
    assert tco["currency"] == "USD" and tco["fixed_monthly"] == 3100.0 and tco["sources"] == ["finops/aws"]
    # the bill starts in this period: the one before has no spend to show (not 0.00) and is left out
    [current] = tco["periods"]
    assert current["partial"] and current["period"] == f"{now:%Y-%m}"
    assert current["spend"] == pytest.approx(spent)
    # the API rounds `elapsed` to 6 places, so the fixed share agrees to 3100 x 0.5e-6
    assert current["fixed"] == pytest.approx(3100 * current["elapsed"], abs=3100 * 0.5e-6)
    assert current["tco"] == pytest.approx(current["spend"] + current["fixed"])
    assert current["accuracy"] == pytest.approx(0.87) and current["accuracy_points"] == pytest.approx(87.0)
    assert current["predictions"] == 50_000
    assert current["spend_per_accuracy_point"] == pytest.approx(spent / 87)
    assert current["tco_per_accuracy_point"] == pytest.approx(current["tco"] / 87)
    assert current["spend_per_1000_predictions"] == pytest.approx(spent / 50)
    assert current["tco_per_1000_predictions"] == pytest.approx(current["tco"] / 50)


def test_sources_show_attribution_with_unknown_and_unattributed_spend(runtime: Runtime) -> None:
    with TestClient(create_app(runtime)) as client:
        [source] = client.get("/api/v1/spend/sources", params={"days": 10}).json()
    assert (source["project"], source["name"], source["kind"], source["currency"], source["files"]) == (
        "finops",
        "aws",
        "focus",
        "USD",
        1,
    )
    shown = {a["attributed_project"]: a for a in source["attribution"]}
    assert (
        shown["Mystery"]["configured"] is False and shown["Mystery"]["amount"] == 18.0 and shown["Mystery"]["rows"] == 6
    )
    assert shown["vision"]["configured"] is True and shown["vision"]["amount"] == 30.0
    assert source["unattributed"] == 12.0


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_metrics_carry_budget_forecast_tco_and_pass_promtool(runtime: Runtime, tmp_path: Path) -> None:
    spent, _ = in_period(runtime.clock.now())
    with TestClient(create_app(runtime)) as client:
        text = client.get("/metrics").text
    metrics: dict[str, Any] = _families(text)
    churn = (("project", "churn"),)
    assert metrics["mlmon_spend_budget_usd"][churn] == 1000.0
    assert metrics["mlmon_spend_period_usd"][churn] == pytest.approx(spent)
    assert metrics["mlmon_spend_budget_used_ratio"][churn] == pytest.approx(spent / 1000)
    assert metrics["mlmon_spend_forecast_available"][churn] == 1.0
    assert metrics["mlmon_spend_forecast_lower_usd"][churn] <= metrics["mlmon_spend_forecast_usd"][churn]
    assert (
        metrics["mlmon_spend_budget_threshold_crossed"][
            (("project", "churn"), ("spend", "actual"), ("threshold", "50%"))
        ]
        == 0.0
    )
    assert metrics["mlmon_spend_tco_usd"][churn] == pytest.approx(spent + metrics["mlmon_spend_fixed_usd"][churn])
    assert metrics["mlmon_spend_per_accuracy_point_usd"][churn] == pytest.approx(spent / 87)
    assert metrics["mlmon_spend_tco_per_thousand_predictions_usd"][churn] == pytest.approx(
        metrics["mlmon_spend_tco_usd"][churn] / 50
    )
    assert metrics["mlmon_spend_unattributed_usd"][(("project", "finops"), ("source", "aws"))] > 0
    # the stored daily series are exported too, under the project that holds the source
    assert any(dict(k).get("attributed_project") == "churn" for k in metrics["mlmon_spend_usd"])
    promtool = require_binary("promtool", "install the Debian package prometheus (apt-get install prometheus)")
    checked = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr.decode() + checked.stdout.decode()


def test_a_token_scoped_to_one_project_sees_only_its_spend(runtime: Runtime) -> None:
    from tests.conftest import token_headers

    headers = token_headers(runtime, "viewer", ("churn",))
    with TestClient(create_app(runtime)) as client:
        projects = client.get("/api/v1/spend/projects", headers=headers).json()
        sources = client.get("/api/v1/spend/sources", headers=headers).json()
        other = client.get("/api/v1/spend/projects/vision", headers=headers)
    assert [p["project"] for p in projects] == ["churn"]
    assert sources == []  # the source lives in finops and shows every project's spend
    assert other.status_code == 404


@pytest.fixture(autouse=True)
def _pyarrow() -> None:
    require_pyarrow()


def test_a_working_week_is_forecast_per_weekday_in_the_api_and_on_the_page(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    """Three weeks of a team that trains on weekdays (48 USD a weekday, 4 a weekend day): the
    budget's forecast fills each day left with its weekday's rate, and the page says so."""
    exports = tmp_path / "exports"
    exports.mkdir()
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    clock = FrozenClock(now)
    runtime = make_runtime(CONFIG.format(exports=exports).replace("lookback: 14d", "lookback: 21d"), clock=clock)

    def rate(day: date) -> float:
        return 2.0 if day.weekday() < 5 else 4.0 / 24

    out = []
    for back in range(21, -1, -1):
        day = now.date() - timedelta(days=back)
        hours = range(24) if back else range(now.hour + 1)
        out.extend(Charge(datetime(day.year, day.month, day.day, h, tzinfo=UTC), rate(day), "churn") for h in hours)
    write_focus(exports / "month.csv", out)
    [plan] = runtime.plans
    assert SourceRunner(runtime.store, clock).run(plan).ok

    period = period_at(now, zone("UTC"), PeriodKind.MONTHLY)
    complete = sum(24 * rate(d) for d in (now.date() - timedelta(days=b) for b in range(1, 22)) if period.contains(d))
    left = [now.date() + timedelta(days=i) for i in range((period.end - now.date()).days)]
    with TestClient(create_app(runtime)) as client:
        churn = {p["project"]: p for p in client.get("/api/v1/spend/projects").json()}["churn"]["budget"]
        page = client.get("/projects/churn").text
    forecast = churn["forecast"]
    assert forecast["seasonality"] == "weekly" and forecast["seasonality_p"] == 0.0, forecast
    assert "weekday means" in forecast["method"]
    assert forecast["point"] == pytest.approx(complete + sum(24 * rate(d) for d in left), abs=1e-3)
    # no spread within a weekday: the interval has no width (never below what is spent)
    assert forecast["lower"] == pytest.approx(forecast["point"], abs=1e-3)
    assert "one run rate per weekday" in page
