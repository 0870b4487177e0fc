"""Forecast of a period's final spend from its run rate, with a prediction interval. Pure.

Flat model: the spend of each remaining day is an independent draw with the mean and spread of the
last complete days (the run rate). With n observed days of mean m and standard deviation s, the
sum of the R remaining days has the prediction interval

    R*m +- t(n-1, (1+c)/2) * s * sqrt(R + R^2/n)

(R*s^2 for the days themselves, R^2*s^2/n for not knowing m exactly).

Weekly model (GPU spend often follows the working week: training on weekdays, little at weekends):
one mean per weekday, m_k over n_k observed days, and the spread s pooled around them with
n - g degrees of freedom (g weekdays observed). The R remaining days, r_k of weekday k, sum to

    sum_k r_k*m_k +- t(n-g, (1+c)/2) * s * sqrt(R + sum_k r_k^2/n_k)

which is the ordinary least-squares prediction interval of a sum of new days under weekday
dummies. `auto` uses it only when a one-way ANOVA (SciPy's `f_oneway`) finds the weekdays differ
at the 5 % level and every weekday has been seen at least twice: a weekday profile read from noise
would make the forecast worse, not better.

Level shifts: a step in daily spend (a new training job, a bigger instance) makes the mean of
the lookback window lag for weeks. Before either model, the days are searched for one change
point: the split into an earlier and a later run of days with the least squared error around
their two means. It counts when the later run has at least `SHIFT_MIN_DAYS` days, Welch's t-test
says the two means differ at `SHIFT_SIGNIFICANCE`, and the level moved by at least `SHIFT_MIN_
RELATIVE` of the old one. Then only the days since the shift are used, and the forecast (and
the budget alert's text) say so. A test on a 50% step on a 3,000 budget chose these values.

The forecast is what is already spent plus that sum, never less than the spend so far. Below
`min_days` complete days there is no forecast, and the reason says how many there are.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from scipy import stats

from monitor.spend.config import Seasonality

METHOD = "run rate of the last complete days, Student-t prediction interval"
WEEKLY_METHOD = "weekday means of the last complete days, Student-t prediction interval"
SIGNIFICANCE = 0.05
"""`auto` takes the weekly model when the weekdays differ at this level."""
SHIFT_MIN_DAYS = 3
"""Days at a new level before it is trusted (fewer: one odd day could look like a step)."""
SHIFT_SIGNIFICANCE = 0.01
SHIFT_MIN_RELATIVE = 0.1
"""A step smaller than this share of the old level does not matter for a budget."""


@dataclass(frozen=True, slots=True)
class Shift:
    """A level shift in daily spend: the days from `index` on are at the new level."""

    index: int
    before: float
    after: float
    p_value: float


def level_shift(observed: Sequence[float]) -> Shift | None:
    """The most likely single change point in mean, when it is significant and large enough."""
    n = len(observed)
    if n < SHIFT_MIN_DAYS + 3:
        return None
    best: tuple[float, int] | None = None
    for k in range(3, n - SHIFT_MIN_DAYS + 1):
        left, right = observed[:k], observed[k:]
        ml, mr = math.fsum(left) / k, math.fsum(right) / (n - k)
        sse = math.fsum((x - ml) ** 2 for x in left) + math.fsum((x - mr) ** 2 for x in right)
        if best is None or sse < best[0]:
            best = (sse, k)
    assert best is not None
    k = best[1]
    left, right = list(observed[:k]), list(observed[k:])
    before, after = math.fsum(left) / len(left), math.fsum(right) / len(right)
    if abs(after - before) < SHIFT_MIN_RELATIVE * max(abs(before), 1e-9):
        return None
    p_value = _welch_p(left, right)
    return Shift(k, before, after, p_value) if p_value < SHIFT_SIGNIFICANCE else None


def _welch_p(left: list[float], right: list[float]) -> float:
    if len(set(left)) == 1 and len(set(right)) == 1:
        # no spread on either side: two distinct constant levels are a certain step
        return 0.0 if left[0] != right[0] else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(left, right, equal_var=False).pvalue)


@dataclass(frozen=True, slots=True)
class Forecast:
    available: bool
    reason: str | None
    point: float | None
    lower: float | None
    upper: float | None
    confidence: float
    days_used: int
    daily_mean: float | None
    daily_sd: float | None
    remaining_days: int
    method: str = METHOD
    seasonality: Literal["weekly", "none"] = "none"
    seasonality_p: float | None = None
    """The ANOVA p-value of a weekday effect, when it was tested."""
    shift: Shift | None = None
    """A level shift found in the lookback window; the forecast then uses the days after it."""
    shift_days: int = 0
    """How many days ago the new level began (counted back from the last complete day)."""


@lru_cache(maxsize=1024)
def _t_quantile(confidence: float, degrees: int) -> float:
    """Two-sided Student-t quantile (cached: rules evaluate thousands of projects a cycle)."""
    return float(stats.t.ppf((1 + confidence) / 2, degrees))


def forecast_total(
    observed: Sequence[float],
    spent_complete: float,
    spent_so_far: float,
    remaining_days: int,
    *,
    min_days: int,
    confidence: float,
    weekdays: Sequence[int] | None = None,
    remaining_weekdays: Sequence[int] = (),
    seasonality: Seasonality = "none",
) -> Forecast:
    """Forecast the period total.

    `observed`: spend of each complete day in the lookback window (zero days included);
    `spent_complete`: the period's spend over its complete days; `spent_so_far`: including the
    day still being billed; `remaining_days`: days left to fill with the run rate (the partial
    day counts as remaining, its known part being replaced by the estimate). For the weekly model:
    `weekdays` of the observed days and `remaining_weekdays` of the remaining ones (0 = Monday).
    """
    n = len(observed)
    if n < max(2, min_days):
        return Forecast(
            False,
            f"not enough data for a forecast: {n} complete day{'s' if n != 1 else ''} of spend in the "
            f"lookback window, {max(2, min_days)} needed",
            None,
            None,
            None,
            confidence,
            n,
            None,
            None,
            remaining_days,
        )
    shift = level_shift(observed)
    shift_days = 0
    if shift is not None:
        shift_days = n - shift.index
        observed = list(observed[shift.index :])
        weekdays = list(weekdays[shift.index :]) if weekdays is not None else None
        n = len(observed)
    mean = math.fsum(observed) / n
    remaining = max(0, remaining_days)
    weekly = _weekly(observed, weekdays, remaining_weekdays[:remaining], seasonality)
    if weekly is not None and weekly.chosen:
        point = spent_complete + weekly.expected
        half = _t_quantile(confidence, weekly.degrees) * weekly.sd * math.sqrt(remaining + weekly.spread)
        sd, method = weekly.sd, f"{WEEKLY_METHOD} (weekday effect: ANOVA p={weekly.p_value:.3g})"
    else:
        sd = math.sqrt(math.fsum((x - mean) ** 2 for x in observed) / (n - 1))
        point = spent_complete + mean * remaining
        half = _t_quantile(confidence, n - 1) * sd * math.sqrt(remaining + remaining**2 / n)
        method = METHOD if weekly is None else f"{METHOD} (no weekday effect: ANOVA p={weekly.p_value:.3g})"
    if shift is not None:
        method = (
            f"{method}, from the level of the last {shift_days} days: daily spend shifted from "
            f"{shift.before:,.2f} to {shift.after:,.2f} (Welch p={shift.p_value:.3g})"
        )
    floor = spent_so_far
    return Forecast(
        True,
        None,
        max(point, floor),
        max(point - half, floor),
        max(point + half, floor),
        confidence,
        n,
        mean,
        sd,
        remaining,
        method,
        "weekly" if weekly is not None and weekly.chosen else "none",
        weekly.p_value if weekly is not None else None,
        shift,
        shift_days,
    )


@dataclass(frozen=True, slots=True)
class _Weekly:
    chosen: bool
    p_value: float
    expected: float
    """sum_k r_k * m_k"""
    spread: float
    """sum_k r_k^2 / n_k"""
    sd: float
    degrees: int


def _weekly(
    observed: Sequence[float], weekdays: Sequence[int] | None, remaining: Sequence[int], seasonality: Seasonality
) -> _Weekly | None:
    """The weekday model and whether to use it; None when it cannot be fitted or is not asked for."""
    if seasonality == "none" or weekdays is None or len(weekdays) != len(observed):
        return None
    groups: dict[int, list[float]] = {}
    for day, value in zip(weekdays, observed, strict=True):
        groups.setdefault(day, []).append(value)
    degrees = len(observed) - len(groups)
    if degrees < 1 or len(groups) < 2 or any(day not in groups for day in remaining):
        return None
    means = {day: math.fsum(values) / len(values) for day, values in groups.items()}
    within = math.fsum((x - means[day]) ** 2 for day, values in groups.items() for x in values)
    p_value = _anova_p(list(groups.values()), within)
    counts = {day: remaining.count(day) for day in set(remaining)}
    seen_twice = len(groups) == 7 and all(len(values) >= 2 for values in groups.values())
    chosen = seasonality == "weekly" or (seen_twice and p_value < SIGNIFICANCE)
    return _Weekly(
        chosen,
        p_value,
        math.fsum(count * means[day] for day, count in counts.items()),
        math.fsum(count**2 / len(groups[day]) for day, count in counts.items()),
        math.sqrt(within / degrees),
        degrees,
    )


def _anova_p(groups: list[list[float]], within: float) -> float:
    if within == 0.0:
        # no spread inside any weekday: the ANOVA's F is infinite (weekdays differ) or undefined (all equal)
        means = {math.fsum(g) / len(g) for g in groups}
        return 0.0 if len(means) > 1 else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.f_oneway(*groups).pvalue)
