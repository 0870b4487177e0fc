"""`patch_sla`: a fix has been available for longer than the SLA of the finding's severity.

    params: {sla: {critical: 7d, high: 30d, medium: 90d, low: 180d, unknown: null}, packages: [], group: package}

The clock starts when the fix became usable: the later of the advisory's publication and the
upload of the fixed release (from the package index; the publication alone when the release date
is unknown). Ignored findings and findings without a known fix never fire. `group: package`
(default): one alert per (project, package) while any of its findings is overdue, naming how many,
the worst and the plan's target (value: the number overdue). `group: finding`: one alert per
vulnerability, whose value is how long it is overdue, in seconds (negative while within its SLA).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from alerts.kinds.base import Evaluation, KindParams, RuleContext, RuleKind
from alerts.kinds.stack.common import (
    FINDING_VARS,
    PACKAGE_VARS,
    Group,
    finding_details,
    package_details,
    view,
    with_clears,
)
from alerts.model import Condition, Verdict
from monitor.stack.providers import STACK
from monitor.stack.sla import Sla
from monitor.stack.versions import canonical_name
from monitor.stack.view import OpenFinding


class PatchSlaParams(KindParams):
    sla: Sla = Field(default_factory=Sla)
    packages: list[str] = Field(default_factory=list)
    group: Group = Field(default="package", description="package: an alert per package; finding: per vulnerability")

    @field_validator("packages")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return [canonical_name(v) for v in value]


def evaluate(params: PatchSlaParams, ctx: RuleContext) -> Evaluation:
    data = view(ctx)
    if data is None:
        return Evaluation([Verdict({}, Condition.NODATA, None, {"reason": "no stack inventory reconciled yet"})])
    verdicts: list[Verdict] = []
    late: dict[str, list[tuple[OpenFinding, datetime, float]]] = {}
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
        if params.group == "package":
            if overdue > 0:
                late.setdefault(finding.package, []).append((finding, due, overdue))
            continue
        labels = {"package": finding.package, "vulnerability": finding.vuln_id}
        verdicts.append(Verdict(labels, Condition.FIRE if overdue > 0 else Condition.CLEAR, overdue, details))
    for package, items in late.items():
        most = max(items, key=lambda item: item[2])
        details = {
            **package_details(package, [f for f, _, _ in items], data.plan),
            "overdue": len(items),
            "most_overdue": most[0].vuln_id,
            "due_at": most[1].isoformat(),
            "overdue_seconds": most[2],
        }
        verdicts.append(Verdict({"package": package}, Condition.FIRE, float(len(items)), details))
    return with_clears(verdicts, ctx)


KIND = RuleKind(
    name="patch_sla",
    params=PatchSlaParams,
    evaluate=evaluate,
    summary=(
        "{% if details.group == 'package' %}{{ details.package }} {{ details.versions }}: {{ details.overdue }} "
        "finding(s) past their patch SLA ({{ details.counts }}); the most overdue, {{ details.most_overdue }}, "
        "by {{ details.overdue_seconds | duration }} (due {{ details.due_at | when }})"
        "{% if details.target %}; upgrade to {{ details.target }}"
        "{% if details.target_unverified %} (unverified){% endif %}, which closes {{ details.target_closes }}"
        "{% elif details.fixed_in %}; fixed in {{ details.fixed_in }}{% endif %}"
        "{% else %}{{ details.package }} {{ details.versions }}: {{ labels.vulnerability }} ({{ details.severity }}) "
        "has had a fix ({{ details.fixed_in }}) since {{ details.fix_available_at | when }}; "
        "the SLA ended {{ details.due_at | when }}, {{ details.overdue_seconds | duration }} ago{% endif %}"
    ),
    extras=(STACK,),
    uses_memory=True,
    template_vars=(*FINDING_VARS, *PACKAGE_VARS, "due_at", "sla_seconds", "overdue_seconds", "overdue", "most_overdue"),
)
