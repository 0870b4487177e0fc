"""`distribution`: a pushed feature or prediction distribution moved away from its reference.

    params:
      dataset: features
      match: ['model="churn-classifier"', 'column=~"age|income"']   # optional
      wasserstein: 0.1       # normalised Wasserstein (numeric columns); null turns it off
      psi: 0.1               # population stability index on the reference's decile bins
      jensen_shannon: 0.1    # Jensen-Shannon distance (numeric bins or categories)
      p_value: 0.05          # also require the KS / chi-square test, corrected (default; null: sizes alone) ...
      correction: benjamini_hochberg   # ... over the columns of one push (holm, bonferroni, none)
      min_examples: 100      # fewer current values: no verdict (effect sizes are noisy on tiny batches)
      per: column            # or `dataset`: one alert when at least `dataset_share` of columns drift
      dataset_share: 0.5

The statistics are computed when a batch is pushed (`POST /api/v1/quality/distributions`) and
stored as `distribution_drift{dataset, column, statistic}`; this kind reads the newest batch of
each column. A column drifts when any enabled effect size reaches its threshold and its p-value,
corrected over the columns of the push (Benjamini-Hochberg by default: when nothing drifted it
keeps the chance of any false flag in a push under `p_value`, as Holm does, and when several
columns drifted it loses far less power), is below `p_value` (0.05 by default): the test keeps small
batches from alerting on noise (an effect size of 0.1 is within the noise of a few hundred rows),
the effect size keeps large ones from alerting on shifts too small to matter. `p_value: null`
judges by effect sizes alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from alerts.kinds.base import Evaluation, KindParams, RuleContext, RuleKind, SeriesNeed
from alerts.kinds.quality.common import promql_number, promql_series
from alerts.model import Condition, Verdict
from monitor.config.types import Duration
from monitor.core.matchers import Matcher, Selector, parse_matchers
from monitor.core.types import Labels, ms_from_datetime
from monitor.quality.drift import DEFAULT_P_VALUE, Thresholds, adjust_p_values
from monitor.quality.names import DRIFT_METRIC, EXAMPLES_METRIC
from monitor.store.interface import SeriesPoints

EFFECT_SIZES = ("wasserstein", "psi", "jensen_shannon")


class DistributionParams(KindParams):
    dataset: str | None = None
    match: list[str] = []
    wasserstein: float | None = Field(default=0.1, gt=0)
    psi: float | None = Field(default=0.1, gt=0)
    jensen_shannon: float | None = Field(default=0.1, gt=0)
    p_value: float | None = Field(default=DEFAULT_P_VALUE, gt=0, lt=1)
    correction: Literal["holm", "bonferroni", "benjamini_hochberg", "none"] = "benjamini_hochberg"
    min_examples: int = Field(default=100, ge=1)
    per: Literal["column", "dataset"] = "column"
    dataset_share: float = Field(default=0.5, gt=0, le=1)
    no_data_after: Duration | None = None

    @model_validator(mode="after")
    def _something_decides(self) -> DistributionParams:
        if self.wasserstein is None and self.psi is None and self.jensen_shannon is None:
            raise ValueError("every effect size is off: keep at least one of wasserstein, psi, jensen_shannon")
        for text in self.match:
            for m in parse_matchers(text):
                if m.name == "statistic":
                    raise ValueError("match may not select on `statistic`: the kind reads every statistic")
        return self

    def matchers(self) -> tuple[Matcher, ...]:
        found: list[Matcher] = []
        if self.dataset is not None:
            found.append(Matcher.of("dataset", "=", self.dataset))
        for text in self.match:
            found.extend(parse_matchers(text))
        return tuple(found)

    def thresholds(self) -> Thresholds:
        return Thresholds(self.psi, self.jensen_shannon, self.wasserstein, self.p_value)


def needs(params: DistributionParams) -> list[SeriesNeed]:
    matchers = params.matchers()
    return [
        SeriesNeed("drift", Selector(DRIFT_METRIC, matchers)),
        SeriesNeed("examples", Selector(EXAMPLES_METRIC, matchers)),
    ]


class _Column:
    """The newest batch of one column: its statistics at the newest timestamp, and its n."""

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.ts = -1
        self.stats: dict[str, float] = {}
        self.n: float | None = None

    def offer(self, statistic: str, series: SeriesPoints) -> None:
        if not series.points:
            return
        point = series.points[-1]
        if point.ts_ms > self.ts:
            self.ts, self.stats = point.ts_ms, {}
        if point.ts_ms == self.ts:
            self.stats[statistic] = point.value


def evaluate(params: DistributionParams, ctx: RuleContext) -> Evaluation:
    columns: dict[Labels, _Column] = {}
    for series in ctx.series["drift"]:
        labels = dict(series.key.labels)
        statistic = labels.pop("statistic", None)
        if statistic is None:
            continue
        key = tuple(sorted(labels.items()))
        columns.setdefault(key, _Column(key)).offer(statistic, series)
    for series in ctx.series["examples"]:
        column = columns.get(series.key.labels)
        if column is not None and series.points and series.points[-1].ts_ms == column.ts:
            column.n = series.points[-1].value
    now_ms = ms_from_datetime(ctx.now)
    stale_ms = int(params.no_data_after.total_seconds() * 1000) if params.no_data_after else None
    judged = _judge(params, [c for c in columns.values() if c.ts >= 0])
    if params.per == "dataset":
        return Evaluation(_per_dataset(params, judged, now_ms, stale_ms))
    verdicts = []
    for column, condition, details in judged:
        if stale_ms is not None and now_ms - column.ts > stale_ms:
            condition, details = Condition.NODATA, {**details, "reason": "newest batch is too old"}
        value = details.get("worst_value")
        verdicts.append(Verdict(dict(column.labels), condition, value, details))
    return Evaluation(verdicts)


def _judge(params: DistributionParams, columns: Sequence[_Column]) -> list[tuple[_Column, Condition, dict[str, Any]]]:
    thresholds = params.thresholds()
    # p-values are corrected within each push: the columns of one dataset (same labels apart from
    # `column`) at one timestamp.
    adjusted: dict[int, float] = {}
    if params.p_value is not None:
        groups: dict[tuple[Labels, int], list[int]] = defaultdict(list)
        for index, column in enumerate(columns):
            rest = tuple((k, v) for k, v in column.labels if k != "column")
            if "p_value" in column.stats:
                groups[(rest, column.ts)].append(index)
        for members in groups.values():
            corrected = adjust_p_values([columns[i].stats["p_value"] for i in members], params.correction)
            adjusted.update(zip(members, corrected, strict=True))
    out = []
    for index, column in enumerate(columns):
        details: dict[str, Any] = {
            name: column.stats[name] for name in (*EFFECT_SIZES, "p_value") if name in column.stats
        }
        details["column"] = dict(column.labels).get("column", "")
        details["n"] = column.n
        if column.n is None or column.n < params.min_examples:
            reason = f"{column.n or 0:.0f} values in the newest batch; min_examples is {params.min_examples}"
            out.append((column, Condition.NODATA, {**details, "reason": reason}))
            continue
        exceeded = thresholds.exceeded(column.stats)
        worst = max(
            exceeded or [n for n in EFFECT_SIZES if n in column.stats] or ["psi"],
            key=lambda n: column.stats.get(n, 0.0) / (getattr(thresholds, n) or 1.0),
        )
        details.update(exceeded=", ".join(exceeded), statistic=worst, worst_value=column.stats.get(worst))
        drifting = bool(exceeded)
        if drifting and params.p_value is not None:
            p_adj = adjusted.get(index)
            details["p_value_adjusted"] = p_adj
            drifting = p_adj is not None and p_adj < params.p_value
        out.append((column, Condition.FIRE if drifting else Condition.CLEAR, details))
    return out


def _per_dataset(
    params: DistributionParams,
    judged: Sequence[tuple[_Column, Condition, dict[str, Any]]],
    now_ms: int,
    stale_ms: int | None,
) -> list[Verdict]:
    groups: dict[Labels, list[tuple[_Column, Condition, dict[str, Any]]]] = defaultdict(list)
    for item in judged:
        rest = tuple((k, v) for k, v in item[0].labels if k != "column")
        groups[rest].append(item)
    verdicts = []
    for labels, items in groups.items():
        usable = [i for i in items if i[1] is not Condition.NODATA]
        drifting = sorted(str(i[2]["column"]) for i in usable if i[1] is Condition.FIRE)
        newest = max(i[0].ts for i in items)
        details = {"drifting_columns": ", ".join(drifting), "columns": len(usable), "share": 0.0}
        if not usable or (stale_ms is not None and now_ms - newest > stale_ms):
            verdicts.append(Verdict(dict(labels), Condition.NODATA, None, {**details, "reason": "no usable batch"}))
            continue
        share = len(drifting) / len(usable)
        details["share"] = share
        condition = Condition.FIRE if share >= params.dataset_share else Condition.CLEAR
        verdicts.append(Verdict(dict(labels), condition, share, details))
    return verdicts


def promql(params: DistributionParams, project: str) -> str | None:
    """Drifting columns over `mlmon_distribution_drift{statistic}` (value: the largest statistic past
    its threshold), or per dataset the share of usable columns drifting. Holm and Benjamini-Hochberg
    rank the p-values of one push, which PromQL cannot; Bonferroni multiplies by the number of
    columns with a p-value (of every push still exported, not only the newest)."""
    if params.p_value is not None and params.correction in ("holm", "benjamini_hochberg"):
        return None
    matchers = [project, *(str(m) for m in params.matchers())]

    def drift(statistic: str) -> str:
        return promql_series(DRIFT_METRIC, *matchers, f'statistic="{statistic}"')

    thresholds = params.thresholds()
    exceeded = " or ".join(
        f"{drift(name)} >= {promql_number(limit)}"
        for name in EFFECT_SIZES
        if (limit := getattr(thresholds, name)) is not None
    )
    usable = f"({promql_series(EXAMPLES_METRIC, *matchers)} >= {params.min_examples})"
    drifting = f"max without (statistic) ({exceeded}) and {usable}"
    if params.p_value is not None:
        p = drift("p_value")
        if params.correction == "bonferroni":
            p = f"({p} * ignoring (column) group_left count without (column) ({p}))"
        drifting = f"({drifting}) and ignoring (statistic) ({p} < {promql_number(params.p_value)})"
    if params.per == "column":
        return drifting
    share = promql_number(params.dataset_share)
    return f"count without (column) ({drifting}) / count without (column) {usable} >= {share}"


KIND = RuleKind(
    name="distribution",
    params=DistributionParams,
    needs=needs,
    evaluate=evaluate,
    summary=(
        "{% if details.reason is defined %}{{ details.reason }}"
        "{% elif details.column is defined %}column {{ details.column }} drifted: {{ details.statistic }} "
        "{{ value | round(3) }}{% else %}{{ details.drifting_columns }} drifted"
        " ({{ value | percent }} of columns){% endif %}"
    ),
    template_vars=(
        "column",
        "n",
        "wasserstein",
        "psi",
        "jensen_shannon",
        "p_value",
        "p_value_adjusted",
        "exceeded",
        "statistic",
        "worst_value",
        "reason",
        "drifting_columns",
        "columns",
        "share",
    ),
    promql=promql,
)
