"""Where a project stands against its budget this period: spent, forecast, thresholds. Pure.

"Spent" is every amount stored for the period's days, the day still being billed included.
The forecast replaces that partial day by the run rate (forecast.py). The last day a source has
data for is its horizon: days before it are complete. Days between a project's first day with
spend and the horizon that have no sample are days without spend (0), not missing data.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from monitor.spend.config import BudgetConfig, ForecastConfig, Threshold
from monitor.spend.forecast import Forecast, forecast_total
from monitor.spend.ledger import Daily, SourceDays
from monitor.spend.periods import Period, period_at
from monitor.spend.series import days_between, zone


@dataclass(frozen=True, slots=True)
class ThresholdState:
    basis: str
    """actual | forecast"""
    threshold: Threshold
    amount: float
    value: float | None
    """The spend (actual) or forecast compared with `amount`; None without a forecast."""

    @property
    def crossed(self) -> bool:
        return self.value is not None and self.value >= self.amount

    @property
    def label(self) -> str:
        return self.threshold.label


@dataclass(frozen=True)
class Combined:
    """The counted sources' spend added up, with what could not be counted."""

    daily: Daily
    horizon: date | None
    by_source: dict[str, float]
    problems: list[str] = field(default_factory=list)
    """Why something could not be counted (another currency): an error to fix."""
    waiting: list[str] = field(default_factory=list)
    """Sources that have stored nothing yet: no data, not an error."""


def combine(
    sources: Sequence[SourceDays],
    currency: str,
    basis: str | None,
    scope: str,
    days: Sequence[date] | None = None,
    exclude: Collection[str] = (),
) -> Combined:
    """Sum the daily spend of sources in `currency`; a source in another currency is a problem,
    never part of the sum."""
    daily: Daily = {}
    horizons: list[date] = []
    by_source: dict[str, float] = {}
    problems: list[str] = []
    waiting: list[str] = []
    wanted = set(days) if days is not None else None
    for source in sources:
        ref = source.source.ref
        if source.currency is None:
            waiting.append(f"spend source {ref} has stored no spend yet")
            continue
        if source.currency != currency:
            problems.append(
                f"spend source {ref} reports {source.currency} but the project's currency is {currency}: "
                "not counted (amounts in two currencies are never summed)"
            )
            continue
        amounts = source.amounts(basis, scope, exclude)
        by_source[ref] = math.fsum(v for d, v in amounts.items() if wanted is None or d in wanted)
        for day, value in amounts.items():
            daily[day] = daily.get(day, 0.0) + value
        if source.horizon is not None:
            horizons.append(source.horizon)
        elif amounts:
            horizons.append(max(amounts))
    horizon = min(horizons) if horizons and len(horizons) == len(by_source) else None
    return Combined(daily, horizon, by_source, problems, waiting)


@dataclass(frozen=True)
class BudgetStatus:
    currency: str
    amount: float
    period: Period
    spent: float
    spent_complete: float
    horizon: date | None
    daily: Daily
    by_source: dict[str, float]
    forecast: Forecast
    thresholds: list[ThresholdState]
    problems: list[str]
    now: datetime
    waiting: list[str] = field(default_factory=list)

    @property
    def used(self) -> float:
        return self.spent / self.amount

    @property
    def has_data(self) -> bool:
        return bool(self.by_source) and not self.problems and not self.waiting

    @property
    def days_left(self) -> float:
        return max(0.0, (self.period.stop - self.now).total_seconds() / 86400)


def observed_days(daily: Mapping[date, float], horizon: date, lookback: int) -> list[date]:
    """Each complete day in the lookback window, from the first day with data on."""
    if not daily:
        return []
    first = max(min(daily), horizon - timedelta(days=lookback))
    last = horizon - timedelta(days=1)
    if last < first:
        return []
    return days_between(first, last)


def budget_status(
    budget: BudgetConfig,
    forecast: ForecastConfig,
    currency: str,
    sources: Sequence[SourceDays],
    now: datetime,
) -> BudgetStatus:
    tz = zone(budget.timezone)
    period = period_at(now, tz, budget.period, budget.reset_day, budget.start_month)
    combined = combine(sources, currency, budget.cost, budget.scope, period.days, budget.exclude)
    problems = list(combined.problems)
    if not sources:
        problems.append("no spend source is counted for this budget")
    daily = combined.daily
    spent = math.fsum(v for d, v in daily.items() if period.contains(d))
    horizon = combined.horizon
    if horizon is None:
        outlook = Forecast(
            False, "no spend data yet", None, None, None, forecast.confidence, 0, None, None, period.length
        )
        complete = 0.0
    else:
        complete = math.fsum(v for d, v in daily.items() if period.contains(d) and d < horizon)
        remaining = (period.end - max(period.first, horizon)).days if horizon < period.end else 0
        if problems or combined.waiting:
            outlook = Forecast(
                False,
                "; ".join(problems + combined.waiting),
                None,
                None,
                None,
                forecast.confidence,
                0,
                None,
                None,
                remaining,
            )
        else:
            observed = observed_days(daily, min(horizon, period.end), forecast.lookback.days)
            left = max(period.first, horizon)
            outlook = forecast_total(
                [daily.get(day, 0.0) for day in observed],
                complete,
                spent,
                remaining,
                min_days=forecast.min_days,
                confidence=forecast.confidence,
                weekdays=[day.weekday() for day in observed],
                remaining_weekdays=[(left + timedelta(days=i)).weekday() for i in range(remaining)],
                seasonality=forecast.seasonality,
            )
    states = [ThresholdState("actual", t, t.of(budget.amount), spent) for t in budget.thresholds.actual]
    states += [ThresholdState("forecast", t, t.of(budget.amount), outlook.point) for t in budget.thresholds.forecast]
    return BudgetStatus(
        currency,
        budget.amount,
        period,
        spent,
        complete,
        horizon,
        {d: v for d, v in daily.items() if period.contains(d)},
        combined.by_source,
        outlook,
        states,
        problems,
        now,
        combined.waiting,
    )
