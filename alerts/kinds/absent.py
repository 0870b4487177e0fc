"""`absent`: no sample of a series for a duration (a silent evaluation job, a dead exporter).

    params: {metric: accuracy, match: ['model="churn"'], after: 1d}

The alert's labels are the selector's equality matchers (like Prometheus's absent()); the value
is the age of the newest sample in seconds, or none when there never was one.
"""

from __future__ import annotations

from datetime import timedelta

from alerts.kinds.base import Evaluation, RuleContext, RuleKind, SeriesNeed, SeriesParams
from alerts.model import Condition, Verdict
from monitor.config.types import Duration
from monitor.core.matchers import MatchOp
from monitor.core.types import ms_from_datetime


class AbsentParams(SeriesParams):
    after: Duration = timedelta(hours=1)


def needs(params: AbsentParams) -> list[SeriesNeed]:
    return [SeriesNeed("series", params.selector(), None)]


def evaluate(params: AbsentParams, ctx: RuleContext) -> Evaluation:
    labels = {m.name: m.value for m in params.selector().matchers if m.op is MatchOp.EQ and m.name != "project"}
    newest = max((s.points[-1].ts_ms for s in ctx.series["series"] if s.points), default=None)
    after_s = params.after.total_seconds()
    details = {"metric": params.metric, "after_seconds": after_s}
    if newest is None:
        return Evaluation([Verdict(labels, Condition.FIRE, None, {**details, "never": True})])
    age = (ms_from_datetime(ctx.now) - newest) / 1000
    condition = Condition.FIRE if age > after_s else Condition.CLEAR
    return Evaluation([Verdict(labels, condition, age, {**details, "never": False})])


KIND = RuleKind(
    name="absent",
    params=AbsentParams,
    needs=needs,
    evaluate=evaluate,
    summary="no sample of {{ details.metric }} for {{ value | duration if value is not none else 'ever' }}",
    template_vars=("metric", "after_seconds", "never"),
)
