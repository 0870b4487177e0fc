"""Budget periods (reset days, quarters, years, time zones) and the run-rate forecast."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

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
