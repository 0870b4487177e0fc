"""The project page's stack plan: what to upgrade first, then the findings grouped by package.

Reads the stored plan (computed by the stack job, `monitor.stack.plan.refresh`); nothing is
computed here, so a page with hundreds of findings costs one row read and a grouping pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import Engine

from monitor.stack.advisories.severity import RANK
from monitor.stack.history import finding_doc
from monitor.stack.plan.model import PackagePlan, Plan
from monitor.stack.plan.render import companion_line, counts
from monitor.stack.plan.store import PlanStore
from monitor.stack.store import StackStore
from monitor.views.finding_rows import rows


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

    @staticmethod
    def rows(group: FindingGroup) -> Markup:
        return rows(group.findings)


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


_PARSED: dict[tuple[str, str, datetime], Plan] = {}
"""Parsed plans by (database, project, computed_at): a stored plan changes only when recomputed."""


def plan_view(engine: Engine, project: str, findings: Sequence[dict[str, Any]]) -> PlanView:
    store = PlanStore(engine)
    stamp = store.computed_at(project)
    plan = None
    if stamp is not None:
        key = (engine.url.render_as_string(hide_password=True), project, stamp)
        plan = _PARSED.get(key)
        if plan is None:
            plan = store.plans([project]).get(project)
            if plan is not None:
                if len(_PARSED) > 256:
                    _PARSED.clear()
                _PARSED[key] = plan
    return PlanView(plan, group_findings(findings, plan))


_DOCS: dict[tuple[str, str, object], list[dict[str, Any]]] = {}
"""A project's finding documents by the reconcile that wrote them: findings change only there."""


def finding_docs(stack: StackStore, project: str, stamp: tuple[datetime, str] | None) -> list[dict[str, Any]]:
    """`finding_doc` of every finding of the project, fresh copies (the caller adds SLA fields)."""
    key = (stack.engine.url.render_as_string(hide_password=True), project, stamp)
    docs = _DOCS.get(key) if stamp is not None else None
    if docs is None:
        docs = [finding_doc(f, []) for f in stack.findings(project=project)]
        if stamp is not None:
            if len(_DOCS) > 64:
                _DOCS.clear()
            _DOCS[key] = docs
    return [dict(d) for d in docs]
