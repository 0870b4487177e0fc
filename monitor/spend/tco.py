"""Total cost of ownership and cost per unit of quality, per budget period. Pure.

GPU spend is only part of what a model costs: `fixed_costs` (people, licences, storage; monthly
amounts) are added to the measured spend. A month counts one monthly amount, a quarter three, a
year twelve; the current period counts the share of it that has passed, so spend-to-date and
TCO-to-date stay comparable.

Per period: spend and TCO per accuracy point (0.87 accuracy = 87 points, the period's mean) and
per 1,000 predictions (when a prediction-count series is configured).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from monitor.spend.periods import Period


@dataclass(frozen=True, slots=True)
class TcoRow:
    period: Period
    partial: bool
    elapsed: float
    spend: float
    gpu_spend: float
    fixed: float
    accuracy: float | None
    """Mean accuracy of the period as a ratio (0.87)."""
    predictions: float | None

    @property
    def tco(self) -> float:
        return self.spend + self.fixed

    @property
    def accuracy_points(self) -> float | None:
        return None if self.accuracy is None else self.accuracy * 100

    def per_point(self, amount: float) -> float | None:
        points = self.accuracy_points
        return amount / points if points else None

    def per_thousand(self, amount: float) -> float | None:
        return amount / self.predictions * 1000 if self.predictions else None


def tco_rows(
    periods: Sequence[Period],
    daily: Mapping[date, float],
    gpu_daily: Mapping[date, float],
    fixed_monthly: float,
    now: datetime,
    accuracy: Mapping[date, float | None],
    predictions: Mapping[date, float | None],
) -> list[TcoRow]:
    """One row per period (keyed by its first day in `accuracy` / `predictions`)."""
    rows = []
    for period in periods:
        elapsed = period.elapsed_fraction(now)
        partial = elapsed < 1.0
        rows.append(
            TcoRow(
                period,
                partial,
                elapsed,
                math.fsum(v for d, v in daily.items() if period.contains(d)),
                math.fsum(v for d, v in gpu_daily.items() if period.contains(d)),
                fixed_monthly * period.kind.months * elapsed,
                accuracy.get(period.first),
                predictions.get(period.first),
            )
        )
    return rows


def increase(values: Sequence[float]) -> float:
    """Growth of a running total, counting a drop as a restart from zero (like PromQL increase)."""
    total = 0.0
    for before, after in zip(values, values[1:], strict=False):
        total += after - before if after >= before else after
    return total
