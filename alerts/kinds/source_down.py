"""`source_down`: a source failed N runs in a row, or has had no success for a duration.

    params: {source: nightly-eval, failures: 3, no_success_for: 2h}   # source omitted: every source

A firing source_down alert inhibits the project's other alerts that depend on that source.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from alerts.kinds.base import Evaluation, KindParams, RuleContext, RuleKind, SeriesNeed
from alerts.model import Condition, Verdict
from monitor.config.types import Duration


class SourceDownParams(KindParams):
    source: str | None = None
    failures: int = Field(default=3, ge=1)
    no_success_for: Duration | None = None

    @model_validator(mode="after")
    def _positive(self) -> SourceDownParams:
        if self.no_success_for is not None and self.no_success_for <= timedelta(0):
            raise ValueError("no_success_for must be positive")
        return self


def needs(_params: SourceDownParams) -> list[SeriesNeed]:
    return []


def evaluate(params: SourceDownParams, ctx: RuleContext) -> Evaluation:
    statuses = {s.source: s for s in ctx.sources}
    names = [params.source] if params.source else list(ctx.project.sources)
    verdicts: list[Verdict] = []
    for name in names:
        status = statuses.get(name)
        labels = {"source": name}
        if status is None or status.last_run_at is None:
            verdicts.append(Verdict(labels, Condition.NODATA, None, {"reason": "the source has not run yet"}))
            continue
        reasons: list[str] = []
        if status.consecutive_failures >= params.failures:
            reasons.append(f"{status.consecutive_failures} failed runs in a row")
        if params.no_success_for is not None:
            since = status.last_success_at or status.first_run_at
            if since is not None and ctx.now - since > params.no_success_for:
                reasons.append(f"no success since {since.isoformat()}")
        condition = Condition.FIRE if reasons else Condition.CLEAR
        details = {"reason": "; ".join(reasons), "last_error": status.last_error or "", "kind": status.kind}
        verdicts.append(Verdict(labels, condition, float(status.consecutive_failures), details))
    return Evaluation(verdicts)


def promql(params: SourceDownParams, project: str) -> str:
    inner = ",".join(p for p in (project, f'source="{params.source}"' if params.source else "") if p)
    expr = f"mlmon_source_consecutive_failures{{{inner}}} >= {params.failures}"
    if params.no_success_for is not None:
        since = f"time() - mlmon_source_last_success_timestamp_seconds{{{inner}}}"
        expr += f" or ({since}) > {params.no_success_for.total_seconds()!r}"
    return expr


KIND = RuleKind(
    name="source_down",
    params=SourceDownParams,
    needs=needs,
    evaluate=evaluate,
    summary="source {{ labels.source }} is down: {{ details.reason }}; last error: {{ details.last_error }}",
    uses_sources=True,
    template_vars=("reason", "last_error", "kind"),
    promql=promql,
)
