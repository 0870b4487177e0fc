"""`threshold`: a metric compared with a value, with an optional separate clearing value.

    params: {metric: accuracy, match: ['model="churn"'], op: "<", value: 0.90, clear: 0.92}

With `clear`, the alert fires when `value op threshold` holds and clears only once the metric is
on the far side of `clear` (accuracy >= 0.92); in between it keeps its state. `over` + `agg`
compare an aggregate of a recent window instead of the newest point. A newest point older than
Prometheus's lookback (5 minutes), or than `no_data_after` when given, is no data: a firing
alert stays firing flagged `nodata`, a pending one is dropped.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Literal

from pydantic import model_validator

from alerts.kinds.base import Evaluation, RuleContext, RuleKind, SeriesNeed, SeriesParams
from alerts.model import Condition, Verdict
from monitor.config.types import Duration
from monitor.core.durations import format_duration
from monitor.core.types import ms_from_datetime
from monitor.store.interface import Point

LOOKBACK_MS = 5 * 60_000
"""Prometheus's default `--query.lookback-delta`: an instant query sees a series only if its newest
sample is at most this old (2.x includes a sample exactly this old, as here)."""

Op = Literal["<", "<=", ">", ">=", "==", "!="]
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class ThresholdParams(SeriesParams):
    op: Op
    value: float
    clear: float | None = None
    over: Duration | None = None
    agg: Literal["last", "avg", "min", "max"] = "last"
    no_data_after: Duration | None = None

    @model_validator(mode="after")
    def _clear_side(self) -> ThresholdParams:
        if self.clear is None:
            return self
        if self.op in ("==", "!="):
            raise ValueError("clear needs an ordering operator (<, <=, >, >=)")
        if self.op in ("<", "<=") and self.clear < self.value:
            raise ValueError(f"with op {self.op!r}, clear ({self.clear}) must be >= value ({self.value})")
        if self.op in (">", ">=") and self.clear > self.value:
            raise ValueError(f"with op {self.op!r}, clear ({self.clear}) must be <= value ({self.value})")
        return self

    @model_validator(mode="after")
    def _agg_needs_window(self) -> ThresholdParams:
        if self.agg != "last" and self.over is None:
            raise ValueError(f"agg {self.agg!r} needs a window: set over (e.g. over: 1h)")
        return self


def needs(params: ThresholdParams) -> list[SeriesNeed]:
    # Only the window's aggregate and its newest timestamp matter here: the database reduces it.
    return [SeriesNeed("series", params.selector(), params.over, params.agg if params.over is not None else None)]


def _aggregate(points: Sequence[Point], agg: str) -> float:
    if agg == "last":
        return points[-1].value
    values = [p.value for p in points]
    if agg == "avg":
        return sum(values) / len(values)
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    return values[-1]


def condition_for(params: ThresholdParams, value: float) -> Condition:
    """FIRE, CLEAR, or HOLD in the hysteresis band."""
    if OPS[params.op](value, params.value):
        return Condition.FIRE
    if params.clear is None:
        return Condition.CLEAR
    clears = value >= params.clear if params.op in ("<", "<=") else value <= params.clear
    return Condition.CLEAR if clears else Condition.HOLD


@lru_cache(maxsize=8)
def _ms(now: datetime) -> int:
    """A cycle evaluates this kind for every project at one `now`: converted once, not 10,000 times."""
    return ms_from_datetime(now)


def evaluate(params: ThresholdParams, ctx: RuleContext) -> Evaluation:
    if params.no_data_after is not None:
        stale_ms: int | None = int(params.no_data_after.total_seconds() * 1000)
    elif params.over is None:
        # The newest point counts only within Prometheus's lookback (the store returns the newest
        # point however old; its age is checked here, so no query is added).
        stale_ms = LOOKBACK_MS
    else:
        stale_ms = None  # the window bounds the points read
    now_ms = _ms(ctx.now) if stale_ms is not None else 0
    verdicts: list[Verdict] = []
    details = {"threshold": params.value, "clear": params.clear, "op": params.op, "metric": params.metric}
    for series in ctx.series["series"]:
        labels = series.key.label_dict()
        if not series.points:
            verdicts.append(Verdict(labels, Condition.NODATA, None, details))
            continue
        newest = series.points[-1]
        if stale_ms is not None and now_ms - newest.ts_ms > stale_ms:
            verdicts.append(
                Verdict(
                    labels, Condition.NODATA, newest.value, {**details, "age_seconds": (now_ms - newest.ts_ms) / 1000}
                )
            )
            continue
        value = _aggregate(series.points, params.agg)
        verdicts.append(Verdict(labels, condition_for(params, value), value, details))
    return Evaluation(verdicts)


def promql(params: ThresholdParams, project: str) -> str:
    series = params.promql_selector(project)
    if params.over is not None and params.agg != "last":
        series = f"{params.agg}_over_time({series}[{format_duration(params.over)}])"
    # PromQL has no separate clearing threshold; `clear` is mlmon's own (see the rule's annotations).
    return f"{series} {params.op} {float(params.value)!r}"


KIND = RuleKind(
    name="threshold",
    params=ThresholdParams,
    needs=needs,
    evaluate=evaluate,
    summary="{{ details.metric }} is {{ value | round(4) }} ({{ details.op }} {{ details.threshold }})",
    template_vars=("threshold", "clear", "op", "metric", "age_seconds"),
    promql=promql,
)
