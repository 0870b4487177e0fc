"""The stack family's fleet read model: open findings counted per project, severity and ignore
(overdue ones among them), and each project's torch build, for the overview's scorecards.

Counts are read in SQL, a few thousand rows for a thousand projects whatever the number of
findings, and reused while nothing they depend on has changed.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, literal, or_, select

from monitor.stack.sla import Sla
from monitor.stack.tables import stack_finding_events, stack_findings, stack_inventories, stack_packages, stack_projects
from monitor.store.columns import UtcDateTime

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
_LOCK = threading.Lock()


@dataclass
class StackReads:
    """What the scorecard needs of the stack family: who was reconciled, and open findings counted."""

    reconciled: set[str] = field(default_factory=set)
    findings: dict[str, list[tuple[str, bool, int, int]]] = field(default_factory=dict)
    """project -> (severity, ignored, open findings, overdue among them)."""


_STACK_READS: weakref.WeakKeyDictionary[Engine, tuple[tuple[Any, ...], StackReads]] = weakref.WeakKeyDictionary()


def stack_version(engine: Engine) -> tuple[Any, ...]:
    """Changes whenever a finding does: every change of a finding appends to its event log, and
    every reconcile rewrites its projects' rows."""
    with engine.connect() as conn:
        event = conn.execute(select(func.max(stack_finding_events.c.id))).scalar()
        latest, count = conn.execute(select(func.max(stack_projects.c.reconciled_at), func.count())).one()
    return event, latest, count


def read_stack(engine: Engine, ids: Sequence[str] | None, sla: Sla, now: datetime) -> StackReads:
    """`count_findings`, reused while the findings, the SLA policy, the projects asked for and the
    minute (overdue is a matter of time) are the same."""
    key = (stack_version(engine), sla, now.replace(second=0, microsecond=0), tuple(ids) if ids is not None else None)
    with _LOCK:
        cached = _STACK_READS.get(engine)
    if cached is not None and cached[0] == key:
        return cached[1]
    reads = count_findings(engine, ids, sla, now)
    with _LOCK:
        _STACK_READS[engine] = (key, reads)
    return reads


def count_findings(engine: Engine, ids: Sequence[str] | None, sla: Sla, now: datetime) -> StackReads:
    """Open findings counted in SQL per project, severity and ignore, with the overdue ones among
    them (affected, a fix available for longer than the severity's SLA): a few thousand rows for a
    thousand projects, whatever the number of findings."""
    reads = StackReads()
    projects = select(stack_projects.c.project)
    cutoffs = [(rating, now - allowed) for rating in SEVERITIES if (allowed := sla.for_rating(rating)) is not None]
    late = and_(
        stack_findings.c.state == "affected",
        stack_findings.c.fix_available_at.is_not(None),
        stack_findings.c.fix_available_at
        < case(
            *((stack_findings.c.severity == rating, literal(cutoff, UtcDateTime)) for rating, cutoff in cutoffs),
            else_=None,
        ),
    )
    findings = (
        select(
            stack_findings.c.project,
            stack_findings.c.severity,
            stack_findings.c.ignored,
            func.count(),
            func.sum(case((late, 1), else_=0)),
        )
        .where(stack_findings.c.resolved_at.is_(None))
        .group_by(stack_findings.c.project, stack_findings.c.severity, stack_findings.c.ignored)
    )
    if ids is not None:
        projects = projects.where(stack_projects.c.project.in_(list(ids)))
        findings = findings.where(stack_findings.c.project.in_(list(ids)))
    with engine.connect() as conn:
        reads.reconciled = {str(p) for (p,) in conn.execute(projects)}
        for project, severity, ignored, count, overdue in conn.execute(findings):
            reads.findings.setdefault(project, []).append((severity, bool(ignored), int(count), int(overdue or 0)))
    return reads


def torch_builds(engine: Engine, ids: Sequence[str] | None) -> dict[str, tuple[str | None, str | None]]:
    """project -> (torch version, variant) of its first inventory that has torch."""
    query = (
        select(stack_inventories.c.project, stack_inventories.c.torch_version, stack_inventories.c.torch_variant)
        .where(stack_inventories.c.torch_version.is_not(None))
        .order_by(stack_inventories.c.project, stack_inventories.c.source)
    )
    if ids is not None:
        query = query.where(stack_inventories.c.project.in_(list(ids)))
    out: dict[str, tuple[str | None, str | None]] = {}
    with engine.connect() as conn:
        for project, version, variant in conn.execute(query):
            out.setdefault(project, (version, variant))
    return out


FINDINGS_DAYS = 90
"""Days of the fleet's open critical and high findings chart."""


def open_by_day(engine: Engine, now: datetime, days: int = FINDINGS_DAYS) -> list[tuple[date, int, int]]:
    """(day, critical, high) findings open at the end of each of the last `days` days (today: now),
    from the first day an inventory was read: before it nothing was known, which is not zero."""
    start = now - timedelta(days=days)
    f = stack_findings.c
    query = select(f.severity, f.first_seen_at, f.resolved_at).where(
        f.severity.in_(("critical", "high")),
        f.ignored.is_(False),
        f.first_seen_at <= now,
        or_(f.resolved_at.is_(None), f.resolved_at > start),
    )
    first_day = now.date() - timedelta(days=days - 1)
    span = [first_day + timedelta(days=n) for n in range(days)]
    index = {d: n for n, d in enumerate(span)}
    delta = {"critical": [0] * (days + 1), "high": [0] * (days + 1)}
    with engine.connect() as conn:
        for severity, seen, resolved in conn.execute(query):
            opened = max(seen.date(), first_day)
            changes = delta[severity]
            changes[index[opened]] += 1
            if resolved is not None and resolved <= now:
                # open at a day's end when resolved after it: a fix on day d removes it from d on
                gone = resolved.date()
                if gone >= first_day:
                    changes[index[gone]] -= 1
                else:
                    changes[index[opened]] -= 1
        known = conn.execute(select(func.min(stack_packages.c.first_seen_at))).scalar()
    if known is None:
        return []
    out = []
    critical = high = 0
    for n, day in enumerate(span):
        critical += delta["critical"][n]
        high += delta["high"][n]
        if day >= known.date():
            out.append((day, critical, high))
    return out
