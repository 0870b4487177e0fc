"""`patch_sla`: a fix has been available for longer than the SLA of the finding's severity.

    params: {sla: {critical: 7d, high: 30d, medium: 90d, low: 180d, unknown: null}, packages: []}

The clock starts when the fix became usable: the later of the advisory's publication and the
upload of the fixed release (from the package index; the publication alone when the release date
is unknown). Ignored findings and findings without a known fix never fire. The value is how long
the finding is overdue, in seconds (negative while it is still within its SLA).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from alerts.kinds.base import Evaluation, KindParams, RuleContext, RuleKind
from alerts.kinds.stack.common import FINDING_VARS, finding_details, view, with_clears
from alerts.model import Condition, Verdict
from monitor.stack.providers import STACK
from monitor.stack.sla import Sla
from monitor.stack.versions import canonical_name


class PatchSlaParams(KindParams):
    sla: Sla = Field(default_factory=Sla)
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
        due = params.sla.due_at(finding.severity, finding.state, finding.fix_available_at)
        if due is None:
            continue
        allowed = due - finding.fix_available_at
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
