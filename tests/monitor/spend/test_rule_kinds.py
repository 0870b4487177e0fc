"""The spend rule kinds as pure functions of a project's spend, on a frozen clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import monitor.config.models  # noqa: F401
from alerts.kinds.base import ProjectView, RuleContext
from alerts.kinds.spend import budget, idle_gpu, spend_change
from alerts.model import Condition
from monitor.spend.config import ForecastConfig, ProjectSpendConfig
from monitor.spend.ledger import SourceDays
from monitor.spend.report import ProjectSpend
from monitor.spend.sources import SpendSource

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
FOCUS = SpendSource("finops", "aws", "focus", "UTC", None)
DCGM = SpendSource("platform", "gpus", "dcgm", "UTC", "USD")


def days(first: date, last: date, amount: float) -> dict[date, float]:
    out = {}
    day = first
    while day <= last:
        out[day] = amount
        day += timedelta(days=1)
    return out


def focus_days(daily: dict[date, float], currency: str = "USD", horizon: date | None = None) -> SourceDays:
    source = SourceDays(FOCUS, currency, horizon or max(daily))
    source.spend[("billed", "other")] = dict(daily)
    source.spend[("effective", "other")] = {d: v / 2 for d, v in daily.items()}
    return source


def project(
    sources: list[SourceDays], spend: dict[str, Any] | None = None, efficiency: list[str] | None = None
) -> ProjectSpend:
    settings = ProjectSpendConfig.model_validate(spend or {})
    refs = [s.source.ref for s in sources]
    return ProjectSpend(
        "churn",
        settings,
        ForecastConfig(),
        {s.source.ref: s for s in sources},
        [r for r in refs if r.startswith("finops")],
        efficiency or [r for r in refs if r.startswith("platform")],
    )


def context(data: ProjectSpend | None, now: datetime = NOW) -> RuleContext:
    view = ProjectView("churn", "Churn", None, {}, ["Ada"], [])
    return RuleContext(now=now, project=view, series={}, extra={"spend": data})


def verdicts(kind: Any, params: dict[str, Any], data: ProjectSpend | None, now: datetime = NOW) -> dict[str, Any]:
    evaluation = kind.KIND.evaluate(kind.KIND.params.model_validate(params), context(data, now))
    return {",".join(f"{k}={v}" for k, v in sorted(v.labels.items())): v for v in evaluation.verdicts}


# --- budget -----------------------------------------------------------------------------------


def test_budget_thresholds_fire_hold_and_clear_with_hysteresis() -> None:
    # 19 complete November days at 50 and today's partial 30: 980 of a 1,000 budget
    daily = {**days(date(2026, 11, 1), date(2026, 11, 19), 50.0), date(2026, 11, 20): 30.0}
    data = project([focus_days(daily)], {"budget": {"amount": 1000}})
    got = verdicts(budget, {"clear": 0.95}, data)
    assert got["spend=actual,threshold=50%"].condition is Condition.FIRE
    assert got["spend=actual,threshold=90%"].condition is Condition.FIRE
    assert got["spend=actual,threshold=100%"].condition is Condition.HOLD  # 980 is within 5% under 1,000
    assert got["spend=actual,threshold=100%"].value == pytest.approx(0.98)
    forecast = got["spend=forecast,threshold=100%"]
    assert forecast.condition is Condition.FIRE and forecast.value == pytest.approx((950 + 50 * 11) / 1000)
    assert got["spend=unknown"].condition is Condition.CLEAR
    details = got["spend=actual,threshold=90%"].details
    assert (details["spent"], details["currency"], details["percent_of_budget"]) == (980.0, "USD", 98.0)
    assert (details["period"], details["period_end"], details["threshold_amount"]) == ("2026-11", "2026-11-30", 900.0)
    assert details["forecast_text"].startswith("1,500.00 USD (80% interval ")
    assert details["message"] == (
        "spent 980.00 USD of the 1,000.00 USD 2026-11 budget (98%, threshold 90%); the period ends 2026-11-30, "
        f"10.5 days left; forecast {details['forecast_text']}"
    )


def test_a_working_week_forecast_says_it_runs_per_weekday() -> None:
    # four weeks before Friday 2026-11-20: 80 a weekday, 10 a weekend day; today's partial 30
    daily = {d: (80.0 if d.weekday() < 5 else 10.0) for d in days(date(2026, 10, 23), date(2026, 11, 19), 0.0)}
    data = project([focus_days({**daily, date(2026, 11, 20): 30.0})], {"budget": {"amount": 2000}})
    details = verdicts(budget, {}, data)["spend=forecast,threshold=100%"].details
    spent = sum(v for d, v in daily.items() if d.month == 11)
    # the 11 days left, today's partial day included, each at its weekday's rate
    left = [date(2026, 11, 20 + i) for i in range(11)]
    assert details["forecast"] == pytest.approx(spent + sum(80.0 if d.weekday() < 5 else 10.0 for d in left))
    assert details["forecast_seasonality"] == "weekly"
    assert details["forecast_text"].endswith(", one rate per weekday)")


def test_a_50_percent_step_fires_the_forecast_alert_the_day_it_is_detectable_and_says_so() -> None:
    """Daily spend 80 until 2026-11-06, 120 from the 7th: November ends at 6 x 80 + 24 x 120 = 3,360 against a
    3,000 budget (12% over). A trailing 28-day mean stays under 3,000 for days; the level-shift forecast
    fires once three days at the new level are complete, and says why."""
    history = {**days(date(2026, 10, 1), date(2026, 11, 6), 80.0), **days(date(2026, 11, 7), date(2026, 11, 30), 120.0)}
    fired_on = None
    for today in [date(2026, 11, d) for d in range(7, 16)]:
        now = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
        daily = {d: v for d, v in history.items() if d < today} | {today: history[today] / 2}  # today half billed
        got = verdicts(budget, {}, project([focus_days(daily)], {"budget": {"amount": 3000}}), now)
        forecast = got["spend=forecast,threshold=100%"]
        complete = [history[today - timedelta(days=i)] for i in range(28, 0, -1)]
        spent = sum(v for d, v in history.items() if d.month == 11 and d < today)
        trailing = spent + sum(complete) / 28 * (31 - today.day)
        if forecast.condition is Condition.FIRE:
            fired_on = today
            assert trailing < 3000  # the old forecast would have stayed silent that day
            assert forecast.details["forecast"] == pytest.approx(3360.0)
            assert (
                ", at the new level of the last 3 days: daily spend rose from 80.00 USD to 120.00 USD"
                in (forecast.details["forecast_text"])
            )
            assert forecast.details["forecast_shift"].startswith("at the new level of the last 3 days")
            break
    assert fired_on == date(2026, 11, 10)  # the 7th, 8th and 9th complete at the new level


def test_steady_noisy_spend_shows_no_level_shift() -> None:
    import random

    rnd = random.Random(5)
    daily = {d: 100.0 + rnd.gauss(0, 8) for d in days(date(2026, 10, 20), date(2026, 11, 19), 0.0)}
    data = project([focus_days({**daily, date(2026, 11, 20): 50.0})], {"budget": {"amount": 5000}})
    details = verdicts(budget, {}, data)["spend=forecast,threshold=100%"].details
    assert details["forecast_shift"] is None and "new level" not in details["forecast_text"]


def test_a_source_in_another_currency_is_never_summed_and_the_budget_reports_why() -> None:
    daily = days(date(2026, 11, 1), date(2026, 11, 19), 500.0)
    data = project([focus_days(daily, currency="EUR")], {"budget": {"amount": 1000, "currency": "USD"}})
    got = verdicts(budget, {}, data)
    assert got["spend=actual,threshold=100%"].condition is Condition.NODATA
    problem = got["spend=unknown"]
    assert problem.condition is Condition.FIRE
    assert problem.details["message"] == (
        "the budget cannot be evaluated: spend source finops/aws reports EUR but the project's currency is USD: "
        "not counted (amounts in two currencies are never summed)"
    )
    assert problem.details["spent"] == 0.0


def test_budget_of_effective_cost_and_gpu_scope() -> None:
    source = focus_days(days(date(2026, 11, 1), date(2026, 11, 19), 100.0))
    source.spend[("billed", "gpu")] = days(date(2026, 11, 1), date(2026, 11, 19), 10.0)
    data = project([source], {"budget": {"amount": 1000, "cost": "effective"}})
    assert verdicts(budget, {}, data)["spend=actual,threshold=90%"].details["spent"] == 950.0
    data = project([source], {"budget": {"amount": 1000, "scope": "gpu"}})
    assert verdicts(budget, {}, data)["spend=actual,threshold=90%"].details["spent"] == 190.0


def test_no_budget_or_no_provider_yields_nothing() -> None:
    assert verdicts(budget, {}, project([focus_days({date(2026, 11, 1): 1.0})])) == {}
    assert verdicts(budget, {}, None) == {}


# --- spend_change -----------------------------------------------------------------------------


def test_a_spike_over_the_baseline_fires_with_the_amounts() -> None:
    daily = {**days(date(2026, 10, 20), date(2026, 11, 18), 100.0), date(2026, 11, 19): 260.0, date(2026, 11, 20): 5.0}
    got = verdicts(spend_change, {"baseline": "30d", "relative": 0.5, "min_amount": 100}, project([focus_days(daily)]))
    verdict = got[""]
    assert verdict.condition is Condition.FIRE and verdict.value == pytest.approx(1.6)
    assert verdict.details["day"] == "2026-11-19"  # today (the 20th) is still being billed
    assert verdict.details["message"] == (
        "spend on 2026-11-19 was 260.00 USD, up +160% (160.00 USD) against the 30-day mean of 100.00 USD"
    )


@pytest.mark.parametrize(
    ("params", "day_spend", "condition"),
    [
        ({"relative": 0.5, "min_amount": 200}, 260.0, Condition.CLEAR),  # +160 is under the minimum amount
        ({"relative": 2.0}, 260.0, Condition.CLEAR),  # +160% is under +200%
        ({"relative": 0.5}, 20.0, Condition.CLEAR),  # a drop, but direction is up
        ({"relative": 0.5, "direction": "down"}, 20.0, Condition.FIRE),
        ({"relative": 0.5, "direction": "both"}, 20.0, Condition.FIRE),
    ],
)
def test_spend_change_thresholds(params: dict[str, Any], day_spend: float, condition: Condition) -> None:
    daily = {
        **days(date(2026, 10, 20), date(2026, 11, 18), 100.0),
        date(2026, 11, 19): day_spend,
        date(2026, 11, 20): 1.0,
    }
    assert verdicts(spend_change, params, project([focus_days(daily)]))[""].condition is condition


def test_spend_change_needs_a_baseline_and_counts_missing_days_as_zero() -> None:
    few = {date(2026, 11, 17): 10.0, date(2026, 11, 18): 10.0, date(2026, 11, 19): 30.0, date(2026, 11, 20): 1.0}
    verdict = verdicts(spend_change, {}, project([focus_days(few)]))[""]
    assert verdict.condition is Condition.NODATA
    assert verdict.details["message"] == "2 baseline days before 2026-11-19; 7 needed"
    gaps = {date(2026, 11, 1): 80.0, date(2026, 11, 19): 20.0, date(2026, 11, 20): 1.0}  # nothing spent in between
    verdict = verdicts(spend_change, {"relative": 1.0}, project([focus_days(gaps)]))[""]
    assert verdict.details["baseline_mean"] == round(80 / 18, 2) and verdict.condition is Condition.FIRE


# --- idle_gpu ---------------------------------------------------------------------------------


def gpu_days(usage_hours: dict[date, float], busy_share: float | None, spend_per_hour: float = 2.0) -> SourceDays:
    source = SourceDays(DCGM, "USD", max(usage_hours))
    source.gpu_usage = {d: h * 3600 for d, h in usage_hours.items()}
    if busy_share is not None:
        source.gpu_busy = {d: h * 3600 * busy_share for d, h in usage_hours.items()}
    source.spend[("estimated", "gpu")] = {d: h * spend_per_hour for d, h in usage_hours.items()}
    return source


def test_idle_gpus_fire_below_the_floor_with_the_money_wasted() -> None:
    source = gpu_days({date(2026, 11, 19): 48.0, date(2026, 11, 20): 24.0, date(2026, 11, 10): 100.0}, 0.05)
    verdict = verdicts(idle_gpu, {"floor": 0.1, "window": "2d"}, project([source]))[""]
    assert verdict.condition is Condition.FIRE and verdict.value == pytest.approx(0.05)
    assert verdict.details["gpu_hours"] == 72.0 and verdict.details["wasted"] == pytest.approx(144 * 0.95)
    assert verdict.details["message"] == (
        "GPUs were busy 5% of the 72.0 GPU-hours held in the last 2d (68.4 idle GPU-hours); about 136.80 USD of "
        "144.00 USD GPU spend was wasted"
    )


@pytest.mark.parametrize(
    ("share", "hours", "condition"),
    [(0.5, 72.0, Condition.CLEAR), (0.12, 72.0, Condition.HOLD), (0.05, 0.5, Condition.CLEAR)],
)
def test_idle_gpu_clears_holds_and_ignores_tiny_use(share: float, hours: float, condition: Condition) -> None:
    source = gpu_days({date(2026, 11, 20): hours}, share)
    params = {"floor": 0.1, "clear": 0.2, "window": "1d", "min_gpu_hours": 1}
    assert verdicts(idle_gpu, params, project([source]))[""].condition is condition


def test_idle_gpus_no_project_claims_alert_the_project_owning_the_source() -> None:
    """A GPU held by no pod lands in __unattributed__; the platform project that owns the dcgm
    source hears about it, labelled so, next to its own verdict."""
    own = gpu_days({date(2026, 11, 20): 10.0}, 0.6)
    nobody = gpu_days({date(2026, 11, 19): 48.0, date(2026, 11, 20): 24.0}, 0.0)
    data = project([own])
    data = ProjectSpend(
        data.project, data.settings, data.forecast, data.sources, data.counted, data.efficiency, [],
        {DCGM.ref: nobody},
    )  # fmt: skip
    got = verdicts(idle_gpu, {"window": "2d", "min_gpu_hours": 4}, data)
    assert got[""].condition is Condition.CLEAR
    unclaimed = got["attributed_project=__unattributed__"]
    assert unclaimed.condition is Condition.FIRE and unclaimed.value == 0.0
    assert unclaimed.details["message"].startswith("GPUs no project claims were busy 0% of the 72.0 GPU-hours held")


def test_unknown_busy_time_is_not_idle_time() -> None:
    source = gpu_days({date(2026, 11, 20): 72.0}, None)  # every sample a DCGM sentinel
    verdict = verdicts(idle_gpu, {}, project([source]))[""]
    assert verdict.condition is Condition.CLEAR and verdict.details["efficiency"] is None


def test_rules_name_sources_that_must_exist() -> None:
    source = gpu_days({date(2026, 11, 20): 10.0}, 0.5)
    verdict = verdicts(idle_gpu, {"sources": ["nope"]}, project([source]))[""]
    assert verdict.condition is Condition.NODATA and "no spend source" in verdict.details["message"]


def test_a_source_that_has_stored_nothing_yet_is_no_data_not_an_error() -> None:
    waiting = SourceDays(FOCUS, None, None)  # the source has not run yet: no currency, no horizon
    data = project([waiting], {"budget": {"amount": 1000}})
    got = verdicts(budget, {}, data)
    assert got["spend=actual,threshold=50%"].condition is Condition.NODATA
    assert got["spend=unknown"].condition is Condition.CLEAR
    assert got["spend=actual,threshold=50%"].details["waiting"] == "spend source finops/aws has stored no spend yet"


def test_budget_rules_export_to_promql_over_the_threshold_gauges() -> None:
    params = budget.BudgetParams
    assert budget.promql(params(), 'project="churn"') == 'mlmon_spend_budget_threshold_crossed{project="churn"} == 1'
    assert budget.promql(params(forecast=False), "") == 'mlmon_spend_budget_threshold_crossed{spend="actual"} == 1'
    assert budget.promql(params(), "") == "mlmon_spend_budget_threshold_crossed == 1"
    assert budget.promql(params(actual=False, forecast=False), "") is None
