"""Reading the history the audit report needs: a handful of bulk queries in one read snapshot.

Whatever the number of projects: installed packages at `as_of`, findings open then or fixed in
the period (without their large `detail` documents), their events up to `as_of`, inventories,
source states (with the last runs up to `as_of` for a past date), the advisory revision then,
feeds, the change log; release histories only for the rare fix that changed after `as_of`.
Read-only: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.config.models import MlmonConfig
from monitor.core.errors import InvalidInput, Issue, NotFound
from monitor.core.gc_pause import gc_paused
from monitor.reports.advisories_then import advisories_then
from monitor.reports.audit import build_audit
from monitor.reports.audit_inputs import (
    DEFAULT_PERIOD,
    AuditInputs,
    ProjectInfo,
)
from monitor.reports.directory_then import DIRECTORY_ACTIONS, directory_then
from monitor.reports.replay import changed_fix
from monitor.stack import evidence_reads
from monitor.stack.advisories.severity import RATINGS
from monitor.stack.plan.store import PlanStore
from monitor.stack.sync import STACK_KINDS
from monitor.store.raw_values import Decoder
from monitor.store.store import Store

CHANGES_LIMIT = 100_000


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput([Issue(field, message, field=field)], f"invalid {field}")


def project_infos(config: MlmonConfig, wanted: Sequence[str] | None) -> list[ProjectInfo]:
    chosen = set(wanted) if wanted is not None else None
    return [
        ProjectInfo(
            id=p.id,
            name=p.display_name,
            team=p.team,
            owners=tuple(o.model_dump(mode="json") for o in p.owners),
            sources=tuple((s.name, s.kind) for s in p.sources if s.kind in STACK_KINDS),
        )
        for p in config.projects
        if chosen is None or p.id in chosen
    ]


def load_audit(
    store: Store,
    config: MlmonConfig,
    now: datetime,
    *,
    as_of: datetime | None = None,
    since: datetime | None = None,
    projects: Sequence[str] | None = None,
) -> AuditInputs:
    """Everything the report of `as_of` (default: now) needs, or a clear refusal.

    Raises NotFound for a project neither configured nor in the history, InvalidInput for an
    `as_of` before any history or in the future, or a `since` not before `as_of`.
    """
    current = as_of is None
    moment = now if as_of is None else as_of
    if moment > now:
        raise _invalid("as_of", f"{moment.isoformat()} is in the future (now is {now.isoformat()})")
    start = since if since is not None else moment - DEFAULT_PERIOD
    if start >= moment:
        raise _invalid("since", f"the period must start before as_of ({moment.isoformat()}), got {start.isoformat()}")
    wanted = list(dict.fromkeys(projects)) if projects else None
    infos = project_infos(config, wanted)
    engine = store.engine
    snapshot = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**snapshot) as conn, conn.begin():
        first = evidence_reads.history_start(conn)
        if not current and (first is None or moment < first):
            what = (
                "nothing has been recorded yet"
                if first is None
                else f"the earliest inventory, finding or advisory data was recorded at {first.isoformat()}"
            )
            raise _invalid("as_of", f"no history on or before {moment.isoformat()}: {what}")
        if wanted is not None:
            configured = {p.id for p in infos}
            missing = [p for p in wanted if p not in configured]
            gone = evidence_reads.known_elsewhere(conn, missing)
            unknown = [p for p in missing if p not in gone]
            if unknown:
                raise NotFound(f"unknown project {unknown[0]!r}: not in the configuration and not in the stack history")
        decoder = Decoder()
        packages = evidence_reads.packages_at(conn, moment, wanted, decoder)
        findings = evidence_reads.findings_at(conn, moment, start, wanted, decoder)
        sources = evidence_reads.sources_at(conn, moment, current, wanted)
        advisories = evidence_reads.advisories_at(conn, moment)
        feeds = evidence_reads.feed_states(conn) if current else []
        needed = {(f.package, fix) for f in findings if f.events and (fix := changed_fix(f, moment)) is not None}
        uploads = evidence_reads.fix_uploads(conn, needed)
        then = None
        if not current and advisories is not None:
            groups = {(f.ids, f.package) for f in findings}
            names = sorted({name for ids, _ in groups for name in ids})
            then = advisories_then(groups, evidence_reads.documents_then(conn, advisories.revision, names))
    changes = store.changes.entries(since=start, until=moment, limit=CHANGES_LIMIT)
    if not current:
        later = store.changes.entries(since=moment, actions=DIRECTORY_ACTIONS, limit=CHANGES_LIMIT)
        infos = directory_then(infos, later, moment, wanted)
    return AuditInputs(
        generated_at=now,
        as_of=moment,
        since=start,
        current=current,
        history_starts_at=first,
        sla={rating: config.stack.sla.for_rating(rating) for rating in RATINGS},
        projects=infos,
        packages=packages,
        sources=sources,
        findings=findings,
        uploads=uploads,
        advisories=advisories,
        feeds=feeds,
        changes=changes,
        changes_truncated=len(changes) >= CHANGES_LIMIT,
        advisories_then=then,
    )


def audit_report(
    store: Store,
    config: MlmonConfig,
    now: datetime,
    *,
    as_of: datetime | None = None,
    since: datetime | None = None,
    projects: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Load and build: the report document for the API and the CLI."""
    with gc_paused():
        doc = build_audit(load_audit(store, config, now, as_of=as_of, since=since, projects=projects))
    return with_plans(store, doc, current=as_of is None)


def with_plans(store: Store, doc: dict[str, Any], *, current: bool) -> dict[str, Any]:
    """Each project's remediation plan (the stored, current one: a plan is not replayed for a past date)."""
    names = [p["project"] for p in doc.get("projects", [])]
    plans = PlanStore(store.engine).documents(names) if current else {}
    for project in doc.get("projects", []):
        project["plan"] = plans.get(project["project"])
    doc["plan_note"] = (
        None if current else "Remediation plans are shown for the present only: a plan is not replayed for a past date."
    )
    return doc
