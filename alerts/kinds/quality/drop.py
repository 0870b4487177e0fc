"""`drop`: a quality metric fell below its baseline by more than a margin, and the fall is real.

    params:
      metric: accuracy
      match: ['model="churn-classifier"']
      min_drop: 0.02                  # absolute (0.93 -> 0.905 is a drop of 0.025), and/or
      min_drop_relative: 0.03         # a fraction of the baseline
      baseline: 0.92                  # a fixed baseline; without it the series accuracy_baseline
                                      # (same labels, written by a `baseline` source) is the baseline
      examples_metric: accuracy_examples   # n behind each value: the drop must then be significant
      alpha: 0.01
      worse: down                     # "up" for a loss or an error rate
      unchanged_for: 90d              # only while the production model has not changed for 90 days

Direction-aware: a rise never alerts (for `worse: down`). With `examples_metric`, the number of
evaluated examples n of the current value (the series' point nearest to the value's timestamp
within `examples_tolerance`, 1 s by default) makes the drop also have to be significant at
`alpha`: a one-sided two-proportion z-test when the baseline's n is known too
(`baseline_examples_metric`, default `<baseline_metric>_examples`), else the one-sided Wilson
bound of the current value must lie below the baseline. A drop past the margin that is not (yet)
significant HOLDs: it neither fires nor resolves; so does one whose n is missing (the test was
asked for and cannot run: the rule fails closed, never firing on the margin alone).
"""

from __future__ import annotations

import math
from datetime import timedelta
from statistics import NormalDist

from pydantic import Field, field_validator, model_validator

from alerts.kinds.base import Evaluation, RuleContext, RuleKind, SeriesNeed, SeriesParams
from alerts.kinds.quality.common import (
    EXAMPLES_TOLERANCE_MS,
    Worse,
    by_labels,
    index_by,
    metric_name,
    n_at,
    newest,
    promql_number,
    promql_series,
    subset,
)
from alerts.model import Condition, Verdict
from monitor.config.types import Duration
from monitor.core.matchers import Selector
from monitor.core.types import datetime_from_ms, ms_from_datetime
from monitor.quality.significance import drop_significance

_NORMAL = NormalDist()


class DropParams(SeriesParams):
    worse: Worse = "down"
    baseline: float | None = Field(default=None, description="a fixed baseline value")
    baseline_metric: str | None = Field(
        default=None, description="series holding the baseline (default <metric>_baseline)"
    )
    min_drop: float | None = Field(default=None, ge=0)
    min_drop_relative: float | None = Field(default=None, ge=0)
    examples_metric: str | None = None
    baseline_examples_metric: str | None = None
    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    unchanged_for: Duration | None = None
    age_metric: str = "model_promotion_age_seconds"
    join_on: list[str] = Field(default_factory=lambda: ["model"])
    examples_tolerance: Duration = timedelta(milliseconds=EXAMPLES_TOLERANCE_MS)
    no_data_after: Duration | None = None

    @field_validator("baseline_metric", "examples_metric", "baseline_examples_metric", "age_metric")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return metric_name(value)

    @field_validator("baseline")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("baseline must be a finite number")
        return value

    @model_validator(mode="after")
    def _margin(self) -> DropParams:
        if self.min_drop is None and self.min_drop_relative is None:
            raise ValueError("set min_drop (absolute) or min_drop_relative (a fraction of the baseline), or both")
        if self.baseline is not None and self.baseline_metric is not None:
            raise ValueError("give either baseline (a fixed value) or baseline_metric (a series), not both")
        if self.baseline_examples_metric is not None and self.examples_metric is None:
            raise ValueError("baseline_examples_metric needs examples_metric (the n of the current value)")
        return self

    @property
    def baseline_series(self) -> str | None:
        return None if self.baseline is not None else (self.baseline_metric or f"{self.metric}_baseline")

    @property
    def baseline_examples_series(self) -> str | None:
        if self.examples_metric is None or self.baseline_series is None:
            return None
        return self.baseline_examples_metric or f"{self.baseline_series}_examples"


def needs(params: DropParams) -> list[SeriesNeed]:
    selector = params.selector()
    out = [SeriesNeed("series", selector)]
    for name, metric in (
        ("baseline", params.baseline_series),
        ("examples", params.examples_metric),
        ("baseline_examples", params.baseline_examples_series),
    ):
        if metric is not None:
            out.append(SeriesNeed(name, Selector(metric, selector.matchers)))
    if params.unchanged_for is not None:
        out.append(SeriesNeed("age", Selector(params.age_metric)))
    return out


def evaluate(params: DropParams, ctx: RuleContext) -> Evaluation:
    now_ms = ms_from_datetime(ctx.now)
    stale_ms = int(params.no_data_after.total_seconds() * 1000) if params.no_data_after else None
    baselines = by_labels(ctx.series.get("baseline", ()))
    examples = by_labels(ctx.series.get("examples", ()))
    baseline_examples = by_labels(ctx.series.get("baseline_examples", ()))
    ages = index_by(ctx.series.get("age", ()), params.join_on)
    word = "below" if params.worse == "down" else "above"
    tolerance_ms = int(params.examples_tolerance.total_seconds() * 1000)
    verdicts: list[Verdict] = []
    for series in ctx.series["series"]:
        labels = series.key.label_dict()
        details: dict[str, object] = {"metric": params.metric, "worse": params.worse, "direction_word": word}
        point = newest(series)
        if point is None:
            verdicts.append(Verdict(labels, Condition.NODATA, None, {**details, "reason": "no data"}))
            continue
        if stale_ms is not None and now_ms - point.ts_ms > stale_ms:
            reason = f"newest point is {(now_ms - point.ts_ms) / 1000:.0f}s old"
            verdicts.append(Verdict(labels, Condition.NODATA, point.value, {**details, "reason": reason}))
            continue
        base_point = newest(baselines.get(series.key.labels))
        baseline = params.baseline if params.baseline is not None else (base_point.value if base_point else None)
        if baseline is None:
            reason = f"no baseline (series {params.baseline_series} with these labels)"
            verdicts.append(Verdict(labels, Condition.NODATA, point.value, {**details, "reason": reason}))
            continue
        drop = baseline - point.value if params.worse == "down" else point.value - baseline
        relative = drop / abs(baseline) if baseline else (math.inf if drop > 0 else 0.0)
        details.update(baseline=baseline, drop=drop, drop_relative=relative)
        exceeds = (params.min_drop is None or drop > params.min_drop) and (
            params.min_drop_relative is None or relative > params.min_drop_relative
        )
        n = n_at(examples.get(series.key.labels), point.ts_ms, tolerance_ms)
        n_base = newest(baseline_examples.get(series.key.labels))
        if n is not None:
            details["n"] = n
        if n_base is not None:
            details["baseline_n"] = n_base.value
        if not exceeds:
            verdicts.append(Verdict(labels, Condition.CLEAR, point.value, details))
            continue
        if params.examples_metric is not None and n is None:
            # Fail closed: the rule was told to test the drop, and there is no n to test it with.
            reason = (
                f"no {params.examples_metric} point within {tolerance_ms / 1000:g}s of the value "
                f"({_iso(point.ts_ms)}): the drop cannot be tested"
            )
            verdicts.append(Verdict(labels, Condition.HOLD, point.value, {**details, "reason": reason}))
            continue
        sig = drop_significance(point.value, n, baseline, n_base.value if n_base else None, params.worse, params.alpha)
        details.update(test=sig.test, p_value=sig.p_value, bound=sig.bound)
        if not sig.significant:
            verdicts.append(Verdict(labels, Condition.HOLD, point.value, details))
            continue
        if params.unchanged_for is not None:
            age = newest(ages.get(subset(series.key.labels, params.join_on)))
            if age is None:
                reason = f"no {params.age_metric} series for {dict(subset(series.key.labels, params.join_on))}"
                verdicts.append(Verdict(labels, Condition.NODATA, point.value, {**details, "reason": reason}))
                continue
            details["age_seconds"] = age.value
            if timedelta(seconds=age.value) < params.unchanged_for:
                verdicts.append(Verdict(labels, Condition.CLEAR, point.value, details))
                continue
        verdicts.append(Verdict(labels, Condition.FIRE, point.value, details))
    return Evaluation(verdicts)


def _iso(ts_ms: int) -> str:
    return datetime_from_ms(ts_ms).isoformat().replace("+00:00", "Z")


def promql(params: DropParams, project: str) -> str:
    """The rule over /metrics, with mlmon's own arithmetic (so edge cases round the same way).

    Margins: `drop > min_drop` and `drop / |baseline| > min_drop_relative`. With `examples_metric`,
    the same significance gate: the two-proportion z-test when the baseline's n is exported, else
    the one-sided Wilson bound; no test for values outside [0, 1] or without n. What PromQL cannot
    say: a not-yet-significant drop HOLDs in mlmon (here it resolves), and mlmon takes n only from
    the examples point written with the value (here the newest of each series).
    """
    matchers = [project, *(str(m) for m in params.selector().matchers)]
    value = promql_series(params.metric, *matchers)
    if params.baseline is not None:
        baseline, magnitude = promql_number(params.baseline), promql_number(abs(params.baseline))
    else:
        baseline = promql_series(params.baseline_series or f"{params.metric}_baseline", *matchers)
        magnitude = f"abs({baseline})"
    drop = f"({baseline} - {value})" if params.worse == "down" else f"({value} - {baseline})"
    parts = [value]
    if params.min_drop is not None:
        parts.append(f"({drop} > {promql_number(params.min_drop)})")
    if params.min_drop_relative is not None:
        parts.append(f"({drop} / {magnitude} > {promql_number(params.min_drop_relative)})")
    if params.examples_metric is not None:
        gate = _significance(params, value, baseline, promql_series(params.examples_metric, *matchers), matchers)
        if gate is not None:
            parts.append(f"({gate})")
    expr = " and ".join(parts)
    if params.unchanged_for is not None:
        age = promql_series(params.age_metric, project)
        on = ", ".join(dict.fromkeys(["project", *params.join_on]))
        expr += f" and on ({on}) ({age} >= {promql_number(params.unchanged_for.total_seconds())})"
    return expr


def _significance(params: DropParams, value: str, baseline: str, n: str, matchers: list[str]) -> str | None:
    """`drop_significance` in PromQL: the series with a significant drop, or with no test to apply."""
    tested = [f"({n} > 0)", f"({value} >= 0)", f"({value} <= 1)"]
    if params.baseline is not None:
        if not 0.0 <= params.baseline <= 1.0:
            return None  # a fixed baseline that is not a proportion: mlmon never tests
    else:
        tested += [f"({baseline} >= 0)", f"({baseline} <= 1)"]
    applies = f"({' and '.join(tested)})"
    z = _NORMAL.inv_cdf(0.5 + (1 - 2 * params.alpha) / 2)
    z2 = promql_number(z * z)
    centre = f"({value} + {z2} / (2 * {n})) / (1 + {z2} / {n})"
    half = f"{promql_number(z)} * sqrt({value} * (1 - {value}) / {n} + {z2} / (4 * {n} * {n})) / (1 + {z2} / {n})"
    # The bound on the baseline's side: upper for a fall, lower for a rise (mlmon clamps it to [0, 1],
    # which cannot change the comparison with a baseline that is itself a proportion).
    wilson = f"({centre} + {half} < {baseline})" if params.worse == "down" else f"({centre} - {half} > {baseline})"
    baseline_n = params.baseline_examples_series
    if baseline_n is None:
        test = wilson
    else:
        nb = promql_series(baseline_n, *matchers)
        pooled = f"(({value} * {n} + {baseline} * {nb}) / ({n} + {nb}))"
        z_score = f"({value} - {baseline}) / sqrt({pooled} * (1 - {pooled}) * (1 / {n} + 1 / {nb}))"
        if params.worse == "down":
            two = f"({z_score} < {promql_number(_NORMAL.inv_cdf(params.alpha))})"
        else:
            two = f"({z_score} > {promql_number(_NORMAL.inv_cdf(1 - params.alpha))})"
        test = f"({two} and ({nb} > 0)) or ({wilson} unless ({nb} > 0))"
    return f"({value} unless {applies}) or (({test}) and {applies})"


KIND = RuleKind(
    name="drop",
    params=DropParams,
    needs=needs,
    evaluate=evaluate,
    summary=(
        "{% if details.drop is defined %}{{ details.metric }} is {{ value | round(4) }}, {{ details.drop | round(4) }}"
        " {{ details.direction_word }} its baseline {{ details.baseline | round(4) }}"
        "{% else %}{{ details.metric }}: {{ details.reason }}{% endif %}"
    ),
    template_vars=(
        "metric",
        "worse",
        "direction_word",
        "baseline",
        "drop",
        "drop_relative",
        "n",
        "baseline_n",
        "test",
        "p_value",
        "bound",
        "age_seconds",
        "reason",
    ),
    promql=promql,
)
