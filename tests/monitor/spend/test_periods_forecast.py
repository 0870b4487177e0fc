"""Budget periods (reset days, quarters, years, time zones) and the run-rate forecast."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pytest
from scipy import stats

from monitor.spend.forecast import forecast_total
from monitor.spend.periods import PeriodKind, period_at
from monitor.spend.series import day_of_ms, day_start_ms, zone

UTC_ZONE = zone("UTC")
LA = zone("America/Los_Angeles")
TOKYO = zone("Asia/Tokyo")


@pytest.mark.parametrize(
    ("moment", "tz", "kind", "reset", "start_month", "first", "end", "label"),
    [
        (
            datetime(2026, 11, 20, 12, tzinfo=UTC),
            UTC_ZONE,
            "monthly",
            1,
            1,
            date(2026, 11, 1),
            date(2026, 12, 1),
            "2026-11",
        ),
        (
            datetime(2026, 11, 20, 12, tzinfo=UTC),
            UTC_ZONE,
            "monthly",
            15,
            1,
            date(2026, 11, 15),
            date(2026, 12, 15),
            "2026-11-15..2026-12-14",
        ),
        (
            datetime(2026, 11, 10, 12, tzinfo=UTC),
            UTC_ZONE,
            "monthly",
            15,
            1,
            date(2026, 10, 15),
            date(2026, 11, 15),
            "2026-10-15..2026-11-14",
        ),
        (
            datetime(2026, 1, 10, tzinfo=UTC),
            UTC_ZONE,
            "monthly",
            15,
            1,
            date(2025, 12, 15),
            date(2026, 1, 15),
            "2025-12-15..2026-01-14",
        ),
        (
            datetime(2026, 11, 20, tzinfo=UTC),
            UTC_ZONE,
            "quarterly",
            1,
            1,
            date(2026, 10, 1),
            date(2027, 1, 1),
            "2026-Q4",
        ),
        (
            datetime(2026, 1, 20, tzinfo=UTC),
            UTC_ZONE,
            "quarterly",
            1,
            2,
            date(2025, 11, 1),
            date(2026, 2, 1),
            "2025-11-01..2026-01-31",
        ),
        (datetime(2026, 11, 20, tzinfo=UTC), UTC_ZONE, "annual", 1, 1, date(2026, 1, 1), date(2027, 1, 1), "2026"),
        (
            datetime(2026, 3, 20, tzinfo=UTC),
            UTC_ZONE,
            "annual",
            1,
            4,
            date(2025, 4, 1),
            date(2026, 4, 1),
            "2025-04-01..2026-03-31",
        ),
        # 2026-12-01 05:00 UTC is still Nov 30 in Los Angeles, already Dec 1 in Tokyo
        (datetime(2026, 12, 1, 5, tzinfo=UTC), LA, "monthly", 1, 1, date(2026, 11, 1), date(2026, 12, 1), "2026-11"),
        (datetime(2026, 12, 1, 8, tzinfo=UTC), LA, "monthly", 1, 1, date(2026, 12, 1), date(2027, 1, 1), "2026-12"),
        (
            datetime(2026, 11, 30, 16, tzinfo=UTC),
            TOKYO,
            "monthly",
            1,
            1,
            date(2026, 12, 1),
            date(2027, 1, 1),
            "2026-12",
        ),
    ],
)
def test_the_period_containing_a_moment(
    moment: datetime, tz: object, kind: str, reset: int, start_month: int, first: date, end: date, label: str
) -> None:
    period = period_at(moment, tz, PeriodKind(kind), reset, start_month)  # type: ignore[arg-type]
    assert (period.first, period.end, period.label) == (first, end, label)
    assert period.start <= moment < period.stop


def test_period_bounds_are_local_midnights_and_a_dst_month_is_an_hour_longer() -> None:
    november = period_at(datetime(2026, 11, 20, tzinfo=UTC), LA, PeriodKind.MONTHLY)
    assert november.start == datetime(2026, 11, 1, 7, tzinfo=UTC)  # PDT, UTC-7
    assert november.stop == datetime(2026, 12, 1, 8, tzinfo=UTC)  # PST, UTC-8
    assert (november.stop - november.start).total_seconds() == 30 * 86400 + 3600
    assert november.length == 30 and november.previous().label == "2026-10" and november.next().label == "2026-12"
    assert november.elapsed_fraction(datetime(2026, 11, 1, 7, tzinfo=UTC)) == 0.0
    assert november.elapsed_fraction(datetime(2027, 1, 1, tzinfo=UTC)) == 1.0


def test_a_daily_sample_maps_back_to_its_local_day_even_downsampled_to_its_hour() -> None:
    for tz in (UTC_ZONE, LA, TOKYO, zone("Asia/Kolkata"), zone("Australia/Lord_Howe")):
        for day in (date(2026, 11, 1), date(2026, 4, 5), date(2026, 10, 4)):
            ts = day_start_ms(day, tz)
            assert day_of_ms(ts, tz) == day
            assert day_of_ms(ts - ts % 3_600_000, tz) == day  # an hourly aggregate sits at the hour's start


def test_the_forecast_is_spend_so_far_plus_the_run_rate_with_a_t_interval() -> None:
    observed = [30.0, 50.0, 40.0, 45.0, 35.0, 40.0, 40.0]
    result = forecast_total(observed, 200.0, 215.0, 20, min_days=5, confidence=0.8)
    mean, sd, n = 40.0, math.sqrt(sum((x - 40) ** 2 for x in observed) / 6), 7
    half = stats.t.ppf(0.9, n - 1) * sd * math.sqrt(20 + 20**2 / n)
    assert result.available and result.days_used == 7
    assert result.point == pytest.approx(200 + 20 * mean)
    assert result.lower == pytest.approx(1000 - half) and result.upper == pytest.approx(1000 + half)
    assert result.lower < result.point < result.upper


def test_no_forecast_without_enough_days_and_never_below_the_spend_so_far() -> None:
    few = forecast_total([10.0, 12.0], 22.0, 25.0, 10, min_days=5, confidence=0.8)
    assert not few.available and few.point is None
    assert few.reason == "not enough data for a forecast: 2 complete days of spend in the lookback window, 5 needed"
    done = forecast_total([1.0] * 10, 50.0, 80.0, 0, min_days=5, confidence=0.8)
    assert done.point == done.lower == done.upper == 80.0  # the period is over: what was spent


# --- weekly seasonality --------------------------------------------------------------------------

# Four weeks of a team that trains on weekdays: ~100 a weekday, ~12 a weekend day, a little noise.
WEEKLY_SPEND = [100 + ((i * 7) % 5) - 2 if i % 7 < 5 else 12 + (i % 3) for i in range(28)]
WEEKDAYS = [i % 7 for i in range(28)]  # the first observed day is a Monday


def _ols_prediction(values: list[float], weekdays: list[int], remaining: list[int], confidence: float) -> tuple:
    """The same forecast as a textbook least-squares fit with NumPy: weekday dummies, the prediction
    interval of a sum of new days (c' beta +- t * s * sqrt(R + c'(X'X)^-1 c))."""
    present = sorted(set(weekdays))
    x = np.array([[1.0 if d == k else 0.0 for k in present] for d in weekdays])
    y = np.array(values)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(values) - len(present)
    s = math.sqrt(float(np.sum((y - x @ beta) ** 2)) / dof)
    c = np.array([remaining.count(k) for k in present], dtype=float)
    half = (
        stats.t.ppf((1 + confidence) / 2, dof) * s * math.sqrt(len(remaining) + float(c @ np.linalg.inv(x.T @ x) @ c))
    )
    return float(c @ beta), half


def test_a_working_week_is_forecast_per_weekday_with_the_least_squares_interval() -> None:
    remaining = [(28 + i) % 7 for i in range(10)]  # Monday .. the Wednesday after next
    result = forecast_total(
        WEEKLY_SPEND, 500.0, 520.0, 10, min_days=7, confidence=0.8,
        weekdays=WEEKDAYS, remaining_weekdays=remaining, seasonality="auto",
    )  # fmt: skip
    expected, half = _ols_prediction(WEEKLY_SPEND, WEEKDAYS, remaining, 0.8)
    groups = [[v for v, d in zip(WEEKLY_SPEND, WEEKDAYS, strict=True) if d == k] for k in range(7)]
    assert result.seasonality == "weekly" and result.seasonality_p == pytest.approx(stats.f_oneway(*groups).pvalue)
    assert result.seasonality_p is not None and result.seasonality_p < 1e-6
    assert result.point == pytest.approx(500 + expected)
    assert result.lower == pytest.approx(500 + expected - half) and result.upper == pytest.approx(500 + expected + half)
    assert "weekday means" in result.method and "ANOVA p=" in result.method


def test_with_the_weekend_left_the_weekly_forecast_holds_what_the_flat_one_misses() -> None:
    remaining = [5, 6]  # only Saturday and Sunday are left in the period
    actual = 12 + 13  # what such a weekend costs
    common = {"min_days": 7, "confidence": 0.8, "weekdays": WEEKDAYS, "remaining_weekdays": remaining}
    weekly = forecast_total(WEEKLY_SPEND, 2000.0, 2000.0, 2, seasonality="auto", **common)  # type: ignore[arg-type]
    flat = forecast_total(WEEKLY_SPEND, 2000.0, 2000.0, 2, seasonality="none", **common)  # type: ignore[arg-type]
    assert weekly.lower is not None and weekly.upper is not None and flat.lower is not None
    assert weekly.lower <= 2000 + actual <= weekly.upper
    # the flat run rate (~75 a day) puts the weekend at ~150, and its interval does not reach 25
    assert flat.lower > 2000 + actual and flat.seasonality == "none" and flat.seasonality_p is None


def test_without_a_weekday_effect_auto_keeps_the_flat_run_rate_and_says_why() -> None:
    noise = [40.0 + ((i * 37) % 11) - 5 for i in range(28)]
    remaining = [(28 + i) % 7 for i in range(12)]
    auto = forecast_total(
        noise, 300.0, 310.0, 12, min_days=7, confidence=0.8,
        weekdays=WEEKDAYS, remaining_weekdays=remaining, seasonality="auto",
    )  # fmt: skip
    flat = forecast_total(noise, 300.0, 310.0, 12, min_days=7, confidence=0.8)
    assert auto.seasonality == "none" and auto.seasonality_p is not None and auto.seasonality_p >= 0.05
    assert (auto.point, auto.lower, auto.upper) == (flat.point, flat.lower, flat.upper)
    assert (
        "no weekday effect" in auto.method
        and flat.method == "run rate of the last complete days, Student-t prediction interval"
    )


def test_auto_needs_each_weekday_twice_and_weekly_can_be_asked_for() -> None:
    ten = WEEKLY_SPEND[:10]
    remaining = [(10 + i) % 7 for i in range(5)]
    common = {"min_days": 7, "confidence": 0.8, "weekdays": WEEKDAYS[:10], "remaining_weekdays": remaining}
    auto = forecast_total(ten, 0.0, 0.0, 5, seasonality="auto", **common)  # type: ignore[arg-type]
    forced = forecast_total(ten, 0.0, 0.0, 5, seasonality="weekly", **common)  # type: ignore[arg-type]
    assert auto.seasonality == "none", "three weekdays seen once: too little to read a weekly profile from"
    assert forced.seasonality == "weekly"
    assert forced.point == pytest.approx(_ols_prediction(ten, WEEKDAYS[:10], remaining, 0.8)[0])
    # a weekday never observed cannot be predicted per weekday: the flat rate is used
    unseen = forecast_total(ten[:5], 0.0, 0.0, 2, min_days=2, confidence=0.8, weekdays=WEEKDAYS[:5],
                            remaining_weekdays=[5, 6], seasonality="weekly")  # fmt: skip
    assert unseen.seasonality == "none"


def test_the_budget_status_reads_weekdays_from_the_calendar() -> None:
    from monitor.spend.budget import budget_status
    from monitor.spend.config import BudgetConfig, ForecastConfig
    from monitor.spend.ledger import SourceDays
    from monitor.spend.sources import SpendSource

    source = SourceDays(SpendSource("finops", "aws", "focus", "UTC", None), "USD", date(2026, 11, 27))
    first = date(2026, 10, 30)  # 28 complete days before the horizon, Oct 30 .. Nov 26
    daily = {}
    for i in range(29):
        day = date.fromordinal(first.toordinal() + i)
        daily[day] = 100.0 if day.weekday() < 5 else 10.0
    source.spend[("billed", "other")] = daily
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)  # a Friday; Saturday .. Monday the 30th are left
    status = budget_status(BudgetConfig(amount=5000), ForecastConfig(), "USD", [source], now)
    spent_complete = sum(v for d, v in daily.items() if d.month == 11 and d < date(2026, 11, 27))
    assert status.forecast.seasonality == "weekly"
    # Fri 27 (the partial day, counted as left), Sat, Sun, Mon: 100 + 10 + 10 + 100
    assert status.forecast.point == pytest.approx(spent_complete + 220)
    flat = budget_status(BudgetConfig(amount=5000), ForecastConfig(seasonality="none"), "USD", [source], now)
    assert flat.forecast.seasonality == "none" and flat.forecast.point != pytest.approx(spent_complete + 220)
