"""The stack family's audit evidence read from its tables: packages installed, findings with
their events, sources' inventories and runs, the advisory revision and the feeds, at a moment.

Values are read raw and decoded once each (`monitor.store.raw_values`): a report reads tens of
thousands of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, func, or_, select, union

from monitor.stack.evidence import (
    AdvisoryEvidence,
    FeedEvidence,
    FindingEvent,
    FindingRecord,
    InstalledPackage,
    SourceEvidence,
)
from monitor.stack.releases import ReleaseHistory
from monitor.stack.sync import STACK_KINDS
from monitor.stack.tables import (
    stack_advisories,
    stack_advisory_revisions,
    stack_feeds,
    stack_finding_events,
    stack_findings,
    stack_inventories,
    stack_packages,
    stack_releases,
)
from monitor.store.raw_values import Decoder, json_text, raw
from monitor.store.schema import source_runs, source_state


def history_start(conn: Connection) -> datetime | None:
    """The first moment anything the report replays was recorded (inventory, advisories, finding)."""
    row = conn.execute(
        select(
            select(func.min(stack_packages.c.first_seen_at)).scalar_subquery(),
            select(func.min(stack_advisory_revisions.c.at)).scalar_subquery(),
            select(func.min(stack_findings.c.first_seen_at)).scalar_subquery(),
        )
    ).one()
    moments = [m for m in row if isinstance(m, datetime)]
    return min(moments) if moments else None


def _with_projects(query: Select[Any], column: Any, wanted: Sequence[str] | None) -> Select[Any]:
    return query if wanted is None else query.where(column.in_(list(wanted)))


def known_elsewhere(conn: Connection, names: Sequence[str]) -> set[str]:
    """Projects no longer configured that the stack history still knows."""
    if not names:
        return set()
    query = union(
        select(stack_packages.c.project).where(stack_packages.c.project.in_(list(names))),
        select(stack_findings.c.project).where(stack_findings.c.project.in_(list(names))),
    )
    return {row[0] for row in conn.execute(query)}


def packages_at(
    conn: Connection, as_of: datetime, wanted: Sequence[str] | None, decoder: Decoder
) -> list[InstalledPackage]:
    p = stack_packages.c
    # unordered: the builder sorts each project's few hundred rows (cheaper than sorting them all in SQL)
    query = select(p.project, p.source, p.package, p.version, raw(p.first_seen_at)).where(
        p.first_seen_at <= as_of, or_(p.removed_at.is_(None), p.removed_at > as_of)
    )
    moment = decoder.required
    return [
        InstalledPackage(project, source, package, version, moment(since))
        for project, source, package, version, since in conn.execute(_with_projects(query, p.project, wanted)).all()
    ]


def _finding_filter(as_of: datetime, since: datetime) -> Any:
    f = stack_findings.c
    return and_(f.first_seen_at <= as_of, or_(f.resolved_at.is_(None), f.resolved_at > since))


REPLAYED_EVENTS = ("changed", "ignored", "unignored")
"""`opened` repeats the row's first values and `resolved` its resolved_at: neither needs reading."""


def findings_at(
    conn: Connection, as_of: datetime, since: datetime, wanted: Sequence[str] | None, decoder: Decoder
) -> list[FindingRecord]:
    """Findings in scope with their events: those after `as_of` are undone to replay the past."""
    f = stack_findings.c
    scope = _finding_filter(as_of, since)
    e = stack_finding_events.c
    events: dict[int, list[FindingEvent]] = {}
    query = _with_projects(
        select(e.finding_id, raw(e.at), e.kind, json_text(e.detail))
        .join(stack_findings, f.id == e.finding_id)
        .where(scope, e.kind.in_(REPLAYED_EVENTS))
        .order_by(e.finding_id, e.at, e.id),
        f.project,
        wanted,
    )
    # raw values through the decoder: the same change (a re-scored advisory) repeats across projects
    for finding_id, at, kind, detail in conn.execute(query).all():
        events.setdefault(finding_id, []).append(FindingEvent(decoder.required(at), kind, decoder.document(detail)))
    columns = [
        f.id, f.project, f.package, f.vuln_id, json_text(f.ids), json_text(f.versions), f.variant, f.state, f.severity,
        f.score, f.summary, f.fixed_in, raw(f.fix_available_at), raw(f.published), raw(f.exposed_since),
        raw(f.first_seen_at), raw(f.resolved_at), f.resolution, f.advisory_revision,
    ]  # fmt: skip
    moment, required, strings = decoder.moment, decoder.required, decoder.strings
    out = []
    # .all(): one fetch instead of a driver call per row (psycopg's fetchone costs ~3 µs a row)
    for row in conn.execute(_with_projects(select(*columns).where(scope), f.project, wanted)).all():
        (ident, project, package, vuln, ids, versions, variant, state, severity, score, summary, fixed_in,
         fix_at, published, exposed, first, resolved, resolution, revision) = row  # fmt: skip
        out.append(
            FindingRecord(
                ident, project, package, vuln, strings(ids), strings(versions), variant, state, severity, score,
                summary, fixed_in, moment(fix_at), moment(published), moment(exposed), required(first),
                moment(resolved), resolution, revision, tuple(events.get(ident, ())),
            )
        )  # fmt: skip
    return out


def sources_at(conn: Connection, as_of: datetime, current: bool, wanted: Sequence[str] | None) -> list[SourceEvidence]:
    """Each stack source: the inventory in force at `as_of` and its last run by then."""
    i = stack_inventories.c
    inventories = {
        (r.project, r.source): r
        for r in conn.execute(
            _with_projects(
                select(
                    i.project,
                    i.source,
                    i.kind,
                    i.location,
                    i.collected_at,
                    i.torch_version,
                    i.torch_variant,
                    i.torch_accelerator,
                ),
                i.project,
                wanted,
            )
        )
    }
    s = source_state.c
    columns: list[Any] = [s.project, s.source, s.kind, s.last_run_at, s.last_outcome, s.last_error, s.last_success_at]
    if not current:
        # the state row is the present; a past moment is read from the runs log (index on project, source, time)
        r = source_runs.alias("runs")
        same = and_(r.c.project == s.project, r.c.source == s.source, r.c.started_at <= as_of)
        newest = r.c.started_at.desc()
        columns = [
            s.project,
            s.source,
            s.kind,
            select(r.c.started_at).where(same).order_by(newest).limit(1).scalar_subquery().label("last_run_at"),
            select(r.c.outcome).where(same).order_by(newest).limit(1).scalar_subquery().label("last_outcome"),
            select(r.c.error).where(same).order_by(newest).limit(1).scalar_subquery().label("last_error"),
            select(func.max(r.c.started_at))
            .where(same, r.c.outcome == "ok")
            .scalar_subquery()
            .label("last_success_at"),
        ]
    states = conn.execute(_with_projects(select(*columns).where(s.kind.in_(STACK_KINDS)), s.project, wanted))
    out: list[SourceEvidence] = []
    seen: set[tuple[str, str]] = set()
    for state in states:
        key = (state.project, state.source)
        seen.add(key)
        inventory = inventories.get(key)
        in_force = inventory is not None and inventory.collected_at <= as_of
        collected = inventory.collected_at if in_force and inventory is not None else state.last_success_at
        out.append(
            SourceEvidence(
                project=state.project,
                source=state.source,
                kind=state.kind,
                location=inventory.location if inventory is not None else None,
                collected_at=collected,
                collected_from="inventory" if in_force else "runs",
                torch_version=inventory.torch_version if in_force and inventory is not None else None,
                torch_variant=inventory.torch_variant if in_force and inventory is not None else None,
                torch_accelerator=inventory.torch_accelerator if in_force and inventory is not None else None,
                last_run_at=state.last_run_at,
                last_outcome=state.last_outcome,
                last_error=state.last_error,
            )
        )
    for key, inventory in inventories.items():
        if key not in seen and inventory.collected_at <= as_of:  # an inventory whose run state is gone
            out.append(
                SourceEvidence(
                    project=inventory.project,
                    source=inventory.source,
                    kind=inventory.kind,
                    location=inventory.location,
                    collected_at=inventory.collected_at,
                    torch_version=inventory.torch_version,
                    torch_variant=inventory.torch_variant,
                    torch_accelerator=inventory.torch_accelerator,
                )
            )
    return out


def advisories_at(conn: Connection, as_of: datetime) -> AdvisoryEvidence | None:
    """The advisory database revision in force at `as_of`: when it was refreshed, from where."""
    r = stack_advisory_revisions.c
    latest = conn.execute(
        select(r.id, r.at, r.feed, r.source).where(r.at <= as_of).order_by(r.id.desc()).limit(1)
    ).first()
    if latest is None:
        return None
    content = conn.execute(
        select(r.id, r.at).where(r.at <= as_of, or_(r.added > 0, r.changed > 0)).order_by(r.id.desc()).limit(1)
    ).first()
    a = stack_advisories.c
    records = conn.execute(
        select(func.count())
        .select_from(stack_advisories)
        .where(a.added_revision <= latest.id, or_(a.replaced_revision.is_(None), a.replaced_revision > latest.id))
    ).scalar_one()
    return AdvisoryEvidence(
        revision=latest.id,
        refreshed_at=latest.at,
        feed=latest.feed,
        source=latest.source,
        records=int(records),
        content_revision=content.id if content is not None else None,
        content_changed_at=content.at if content is not None else None,
    )


_IDS_PER_QUERY = 500


def documents_then(conn: Connection, revision: int, names: Sequence[str]) -> dict[str, Any]:
    """ID -> the OSV record in force at `revision`, for those of `names` that had one."""
    a = stack_advisories.c
    found: dict[str, Any] = {}
    for start in range(0, len(names), _IDS_PER_QUERY):
        query = select(a.id, a.document).where(
            a.id.in_(list(names[start : start + _IDS_PER_QUERY])),
            a.added_revision <= revision,
            or_(a.replaced_revision.is_(None), a.replaced_revision > revision),
        )
        found.update((ident, document) for ident, document in conn.execute(query))
    return found


def feed_states(conn: Connection) -> list[FeedEvidence]:
    f = stack_feeds.c
    query = select(
        f.name,
        f.kind,
        f.location,
        f.last_attempt_at,
        f.last_success_at,
        f.last_error,
        f.consecutive_failures,
        f.records,
    ).order_by(f.name)
    return [FeedEvidence(*row) for row in conn.execute(query)]


def fix_uploads(conn: Connection, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    """Upload times of fix versions that differ from the stored ones (rare: a fix changed later)."""
    if not wanted:
        return {}
    packages = sorted({p for p, _ in wanted})
    out: dict[tuple[str, str], datetime] = {}
    query = select(stack_releases.c.package, stack_releases.c.releases).where(stack_releases.c.package.in_(packages))
    for package, releases in conn.execute(query):
        history = ReleaseHistory.from_doc(package, releases or {})
        for name, version in wanted:
            uploaded = history.uploaded(version) if name == package else None
            if uploaded is not None:
                out[(name, version)] = uploaded
    return out
