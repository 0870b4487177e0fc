"""What the stack rule kinds see of each project: open findings, staleness, feed ages.

Read for all projects at once (four queries: projects, open findings, the advisory feed, plans) by
the `stack` data provider, once per evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from monitor.stack.plan.model import Plan
from monitor.stack.plan.store import PlanStore
from monitor.stack.releases import Staleness
from monitor.stack.store import FeedStatus, StackStore


@dataclass(frozen=True, slots=True)
class OpenFinding:
    id: int
    package: str
    vuln_id: str
    ids: tuple[str, ...]
    versions: tuple[str, ...]
    variant: str | None
    state: str
    severity: str
    score: float | None
    summary: str
    fixed_in: str | None
    fix_available_at: datetime | None
    published: datetime | None
    first_seen_at: datetime
    exposed_since: datetime | None
    ignored: bool
    ignore_reason: str | None
    ignore_expires: date | None


@dataclass(frozen=True)
class ProjectStack:
    findings: tuple[OpenFinding, ...] = ()
    staleness: tuple[Staleness, ...] = ()
    tracked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Installed versions of the tracked packages (staleness may be missing for them)."""
    reconciled_at: datetime | None = None
    advisory_revision: int | None = None
    advisories_feed: FeedStatus | None = None
    plan: Plan | None = None
    """The remediation plan (its target versions go into grouped alerts); None until computed."""


def _finding(row: Any) -> OpenFinding:
    return OpenFinding(
        id=row.id,
        package=row.package,
        vuln_id=row.vuln_id,
        ids=tuple(row.ids or ()),
        versions=tuple(row.versions or ()),
        variant=row.variant,
        state=row.state,
        severity=row.severity,
        score=row.score,
        summary=row.summary,
        fixed_in=row.fixed_in,
        fix_available_at=row.fix_available_at,
        published=row.published,
        first_seen_at=row.first_seen_at,
        exposed_since=row.exposed_since,
        ignored=bool(row.ignored),
        ignore_reason=row.ignore_reason,
        ignore_expires=row.ignore_expires,
    )


def project_views(engine: Engine, projects: Iterable[str]) -> dict[str, ProjectStack]:
    """The stack view of each project that has been reconciled at least once."""
    wanted = list(projects)
    stack = StackStore(engine)
    rows = stack.project_rows(wanted)
    if not rows:
        return {}
    findings: dict[str, list[OpenFinding]] = {}
    for row in stack.open_findings(projects=list(rows)):
        findings.setdefault(row.project, []).append(_finding(row))
    feed = stack.feed("advisories")
    plans = PlanStore(engine).plans(list(rows))
    out: dict[str, ProjectStack] = {}
    for project, row in rows.items():
        summary = row.summary or {}
        tracked = {k: tuple(v) for k, v in (summary.get("tracked") or {}).items()}
        out[project] = ProjectStack(
            findings=tuple(findings.get(project, ())),
            staleness=tuple(Staleness.from_doc(d) for d in row.staleness or ()),
            tracked=tracked,
            reconciled_at=row.reconciled_at,
            advisory_revision=row.advisory_revision,
            advisories_feed=feed,
            plan=plans.get(project),
        )
    return out
