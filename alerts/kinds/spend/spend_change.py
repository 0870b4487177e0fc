"""`spend_change`: a day's spend far from the mean of the days before it.

    rules:
      - name: spend-spike
        kind: spend_change
        params: {baseline: 30d, relative: 0.5, min_amount: 200, direction: up}

The day judged is the last complete day (the day before a source's newest data, which is still
being billed). It fires when the day's spend differs from the mean of up to `baseline` days
before it by at least `relative` (0.5 = 50%) *and* by at least `min_amount` in the project's
currency, so a project that spends cents does not page anyone over a few cents. Days without
spend between the project's first spend and the judged day count as 0. With fewer than
`min_baseline_days` days of baseline there is no data. The next day is judged afresh, so the
alert resolves when the following day is normal.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from alerts.kinds.base import Evaluation, RuleContext, RuleKind
from alerts.kinds.spend.common import SourcesParams, money, spend_of
from alerts.model import Condition, Verdict
from monitor.config.types import Duration
from monitor.spend.budget import combine
from monitor.spend.providers import SPEND
from monitor.spend.series import days_between
from monitor.spend.sources import UnknownSource


class SpendChangeParams(SourcesParams):
    baseline: Duration = timedelta(days=30)
    relative: float = Field(default=0.2, gt=0, description="0.2 = a 20% change")
    min_amount: float = Field(default=0.0, ge=0, description="and at least this much, in the project's currency")
    direction: Literal["up", "down", "both"] = "up"
    min_baseline_days: int = Field(default=7, ge=1)

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, value: timedelta) -> timedelta:
        if value < timedelta(days=2) or value % timedelta(days=1) or value > timedelta(days=180):
            raise ValueError("baseline must be whole days between 2d and 180d")
        return value


def evaluate(params: SpendChangeParams, ctx: RuleContext) -> Evaluation:
    data = spend_of(ctx)
    if data is None:
        return Evaluation([])
    details: dict[str, object] = {"currency": data.currency}
    try:
        refs = data.resolve(params.sources, data.counted)
    except UnknownSource as exc:
        return Evaluation([Verdict({}, Condition.NODATA, None, {**details, "message": str(exc)})])
    combined = combine(data.pick(refs), data.currency, params.cost, params.scope)
    if combined.problems or combined.waiting or combined.horizon is None or not combined.daily:
        reason = "; ".join(combined.problems + combined.waiting) or "no spend data yet"
        return Evaluation([Verdict({}, Condition.NODATA, None, {**details, "message": reason})])
    day = combined.horizon - timedelta(days=1)
    first = max(min(combined.daily), day - timedelta(days=params.baseline.days))
    base_days = days_between(first, day - timedelta(days=1)) if first < day else []
    if len(base_days) < params.min_baseline_days:
        message = f"{len(base_days)} baseline days before {day}; {params.min_baseline_days} needed"
        return Evaluation(
            [Verdict({}, Condition.NODATA, None, {**details, "message": message, "day": day.isoformat()})]
        )
    mean = math.fsum(combined.daily.get(d, 0.0) for d in base_days) / len(base_days)
    spend = combined.daily.get(day, 0.0)
    change = spend - mean
    relative = change / mean if mean > 0 else (math.inf if change > 0 else 0.0)
    signed_ok = {"up": change > 0, "down": change < 0, "both": change != 0}[params.direction]
    fires = signed_ok and abs(relative) >= params.relative and abs(change) >= params.min_amount
    c = data.currency
    word = "up" if change >= 0 else "down"
    shown = "from nothing" if math.isinf(relative) else f"{relative:+.0%}"
    details.update(
        day=day.isoformat(),
        day_spend=round(spend, 2),
        baseline_mean=round(mean, 2),
        baseline_days=len(base_days),
        change=round(change, 2),
        relative_change=None if math.isinf(relative) else round(relative, 4),
        message=(
            f"spend on {day} was {money(spend, c)}, {word} {shown} ({money(abs(change), c)}) against the "
            f"{len(base_days)}-day mean of {money(mean, c)}"
        ),
    )
    value = None if math.isinf(relative) else relative
    return Evaluation([Verdict({}, Condition.FIRE if fires else Condition.CLEAR, value, details)])


KIND = RuleKind(
    name="spend_change",
    params=SpendChangeParams,
    evaluate=evaluate,
    summary="{{ project.name }}: {{ details.message }}",
    extras=(SPEND,),
    template_vars=(
        "currency",
        "day",
        "day_spend",
        "baseline_mean",
        "baseline_days",
        "change",
        "relative_change",
        "message",
    ),
)
