"""The project page's stack plan: what to upgrade first, then the findings grouped by package.

Reads the stored plan (computed by the stack job, `monitor.stack.plan.refresh`); nothing is
computed here, so a page with hundreds of findings costs one row read and a grouping pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from monitor.stack.advisories.severity import RANK
from monitor.stack.plan.model import PackagePlan, Plan
from monitor.stack.plan.render import companion_line, counts
from monitor.stack.plan.store import PlanStore


@dataclass
class FindingGroup:
    package: str
    versions: list[str]
    findings: list[dict[str, Any]]
    counts: dict[str, int]
    overdue: int
    plan: PackagePlan | None

    @property
    def counts_text(self) -> str:
        return counts(self.counts)


@dataclass
class PlanView:
    plan: Plan | None
    groups: list[FindingGroup] = field(default_factory=list)

    @staticmethod
    def companion(c: Any) -> str:
        return companion_line(c)

    @staticmethod
    def counts(by: Mapping[str, int]) -> str:
        return counts(by)


def group_findings(findings: Sequence[dict[str, Any]], plan: Plan | None) -> list[FindingGroup]:
    """Findings by package, the package with the worst open finding (then overdue ones) first."""
    groups: dict[str, FindingGroup] = {}
    for f in findings:
        g = groups.get(f["package"])
        if g is None:
            g = groups[f["package"]] = FindingGroup(
                f["package"], [], [], {}, 0, plan.for_package(f["package"]) if plan else None
            )
        g.findings.append(f)
        for v in f.get("versions") or ():
            if v not in g.versions:
                g.versions.append(v)
        if f.get("status") in ("open", "overdue") or f.get("overdue"):
            g.counts[f["severity"]] = g.counts.get(f["severity"], 0) + 1
        g.overdue += bool(f.get("overdue"))
    for g in groups.values():
        g.counts = dict(sorted(g.counts.items(), key=lambda kv: -RANK.get(kv[0], 0)))
    return sorted(
        groups.values(),
        key=lambda g: (-max((RANK.get(s, 0) for s in g.counts), default=-1), -g.overdue, g.package),
    )


def plan_view(engine: Engine, project: str, findings: Sequence[dict[str, Any]]) -> PlanView:
    plan = PlanStore(engine).plans([project]).get(project)
    return PlanView(plan, group_findings(findings, plan))
