"""`patch_sla`: a fix has been available for longer than the SLA of the finding's severity.

    params: {sla: {critical: 7d, high: 30d, medium: 90d, low: 180d, unknown: null}, packages: []}

The clock starts when the fix became usable: the later of the advisory's publication and the
upload of the fixed release (from the package index; the publication alone when the release date
is unknown). Ignored findings and findings without a known fix never fire. The value is how long
the finding is overdue, in seconds (negative while it is still within its SLA).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from alerts.kinds.base import Evaluation, KindParams, RuleContext, RuleKind
from alerts.kinds.stack.common import FINDING_VARS, finding_details, view, with_clears
from alerts.model import Condition, Verdict
from monitor.config.types import Duration
from monitor.stack.providers import STACK
from monitor.stack.versions import canonical_name


class SlaParams(KindParams):
    critical: Duration = timedelta(days=7)
    high: Duration = timedelta(days=30)
    medium: Duration = timedelta(days=90)
    low: Duration = timedelta(days=180)
    unknown: Duration | None = None

    def for_rating(self, rating: str) -> timedelta | None:
        if rating in ("critical", "high", "medium", "low"):
            value: timedelta = getattr(self, rating)
            return value
        return self.unknown if rating == "unknown" else None


class PatchSlaParams(KindParams):
    sla: SlaParams = Field(default_factory=SlaParams)
    packages: list[str] = Field(default_factory=list)

    @field_validator("packages")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return [canonical_name(v) for v in value]


def evaluate(params: PatchSlaParams, ctx: RuleContext) -> Evaluation:
    data = view(ctx)
    if data is None:
        return Evaluation([Verdict({}, Condition.NODATA, None, {"reason": "no stack inventory reconciled yet"})])
    verdicts: list[Verdict] = []
    for finding in data.findings:
        if finding.ignored or finding.state != "affected" or finding.fix_available_at is None:
            continue
        if params.packages and finding.package not in params.packages:
            continue
        allowed = params.sla.for_rating(finding.severity)
        if allowed is None:
            continue
        due = finding.fix_available_at + allowed
        overdue = (ctx.now - due).total_seconds()
        details = {
            **finding_details(finding),
            "due_at": due.isoformat(),
            "sla_seconds": allowed.total_seconds(),
            "overdue_seconds": max(0.0, overdue),
        }
        labels = {"package": finding.package, "vulnerability": finding.vuln_id}
        verdicts.append(Verdict(labels, Condition.FIRE if overdue > 0 else Condition.CLEAR, overdue, details))
    return with_clears(verdicts, ctx)


KIND = RuleKind(
    name="patch_sla",
    params=PatchSlaParams,
    evaluate=evaluate,
    summary=(
        "{{ details.package }} {{ details.versions }}: {{ labels.vulnerability }} ({{ details.severity }}) "
        "has had a fix ({{ details.fixed_in }}) since {{ details.fix_available_at }}; "
        "the SLA ended {{ details.due_at }}, {{ details.overdue_seconds | duration }} ago"
    ),
    extras=(STACK,),
    uses_memory=True,
    template_vars=(*FINDING_VARS, "due_at", "sla_seconds", "overdue_seconds"),
)
