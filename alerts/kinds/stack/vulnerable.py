"""`vulnerable`: an open finding at or above a severity (optionally only where a fix exists).

    params: {severity: high, fixable_only: false, include_undetermined: false, packages: [torch], group: package}

`group: package` (default): one alert per (project, package) with the selected findings counted by
severity, the worst one named and the remediation plan's target version (label `package`, value:
the number of findings). `group: finding`: one alert per (package, vulnerability) (labels `package`,
`vulnerability`, value: the CVSS score). Ignored findings never fire; an alert resolves when its
findings are fixed or ignored. A project that has not been reconciled yet has no data.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from alerts.kinds.base import Evaluation, KindParams, RuleContext, RuleKind
from alerts.kinds.stack.common import (
    FINDING_VARS,
    PACKAGE_SUMMARY,
    PACKAGE_VARS,
    Group,
    MinSeverity,
    at_least,
    by_package,
    finding_details,
    package_details,
    promql_one_of,
    promql_selector,
    view,
    with_clears,
)
from alerts.model import Condition, Verdict
from monitor.stack.providers import STACK
from monitor.stack.versions import canonical_name
from monitor.stack.view import OpenFinding


class VulnerableParams(KindParams):
    severity: MinSeverity = "high"
    fixable_only: bool = False
    include_undetermined: bool = False
    packages: list[str] = Field(default_factory=list, description="only these packages (default: all)")
    group: Group = Field(
        default="package", description="package: one alert per package; finding: one per vulnerability"
    )

    @field_validator("packages")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return [canonical_name(v) for v in value]


def evaluate(params: VulnerableParams, ctx: RuleContext) -> Evaluation:
    data = view(ctx)
    if data is None:
        return Evaluation([Verdict({}, Condition.NODATA, None, {"reason": "no stack inventory reconciled yet"})])
    selected = [f for f in data.findings if _selected(params, f)]
    verdicts: list[Verdict] = []
    if params.group == "package":
        for package, findings in by_package(selected).items():
            details = package_details(package, findings, data.plan)
            verdicts.append(Verdict({"package": package}, Condition.FIRE, float(len(findings)), details))
        return with_clears(verdicts, ctx)
    for finding in selected:
        labels = {"package": finding.package, "vulnerability": finding.vuln_id}
        verdicts.append(Verdict(labels, Condition.FIRE, finding.score or 0.0, finding_details(finding)))
    return with_clears(verdicts, ctx)


def _selected(params: VulnerableParams, finding: OpenFinding) -> bool:
    if finding.ignored or (params.packages and finding.package not in params.packages):
        return False
    if finding.state == "undetermined" and not params.include_undetermined:
        return False
    if params.fixable_only and not finding.fixed_in:
        return False
    return at_least(finding, params.severity)


def promql(params: VulnerableParams, project: str) -> str | None:
    """Open, not ignored findings at or above the severity, counted per (project, package): the
    exported family has no vulnerability id or fix label, so `fixable_only` cannot be said."""
    if params.fixable_only:
        return None
    levels = ["critical", "high", "medium", "low", "none", "unknown"]
    if params.severity != "any":
        levels = levels[: levels.index(params.severity) + 1]
    states = "affected|undetermined" if params.include_undetermined else "affected"
    series = promql_selector(
        "mlmon_stack_findings",
        project,
        f'state=~"{states}"',
        f'severity=~"{"|".join(levels)}"',
        'ignored="false"',
        promql_one_of("package", params.packages) if params.packages else "",
    )
    return f"sum by (project, package) ({series}) > 0"


KIND = RuleKind(
    name="vulnerable",
    params=VulnerableParams,
    evaluate=evaluate,
    summary=(
        "{% if details.group == 'package' %}"
        + PACKAGE_SUMMARY
        + "{% else %}{{ details.package }} {{ details.versions }} is affected by {{ labels.vulnerability }} "
        "({{ details.severity }}){% if details.fixed_in %}; fixed in {{ details.fixed_in }}"
        "{% else %}; no known fix{% endif %}: {{ details.summary }}{% endif %}"
    ),
    extras=(STACK,),
    uses_memory=True,
    template_vars=(*FINDING_VARS, *PACKAGE_VARS),
    promql=promql,
)
