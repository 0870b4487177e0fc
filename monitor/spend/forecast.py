"""Forecast of a period's final spend from its run rate, with a prediction interval. Pure.

Model: the spend of each remaining day is an independent draw with the mean and spread of the
last complete days (the run rate). With n observed days of mean m and standard deviation s, the
sum of the R remaining days has the prediction interval

    R*m +- t(n-1, (1+c)/2) * s * sqrt(R + R^2/n)

(R*s^2 for the days themselves, R^2*s^2/n for not knowing m exactly). The forecast is what is
already spent plus that sum, never less than the spend so far. It ignores weekly seasonality;
the interval widens with noisy days, which is the honest answer for a v1.

Below `min_days` complete days there is no forecast, and the reason says how many there are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from scipy import stats

METHOD = "run rate of the last complete days, Student-t prediction interval"


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
) -> Forecast:
    """Forecast the period total.

    `observed`: spend of each complete day in the lookback window (zero days included);
    `spent_complete`: the period's spend over its complete days; `spent_so_far`: including the
    day still being billed; `remaining_days`: days left to fill with the run rate (the partial
    day counts as remaining, its known part being replaced by the estimate).
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
    mean = math.fsum(observed) / n
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in observed) / (n - 1))
    remaining = max(0, remaining_days)
    point = spent_complete + mean * remaining
    half = _t_quantile(confidence, n - 1) * sd * math.sqrt(remaining + remaining**2 / n)
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
    )
