"""SQL of the stack family: advisory revisions, feeds, release histories, inventories, findings.

Nothing here decides anything; `sync.py` decides what changed and calls these in one transaction
per project (or per import).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update

from monitor.stack.advisories.model import Advisory
from monitor.stack.advisories.offline import Rejected
from monitor.stack.reconcile import FindingsDiff, Opened, event_row
from monitor.stack.releases import ReleaseHistory
from monitor.stack.tables import (
    stack_advisories,
    stack_advisory_revisions,
    stack_feeds,
    stack_finding_events,
    stack_findings,
    stack_inventories,
    stack_packages,
    stack_projects,
    stack_releases,
)
from monitor.store.db import write_tx
from monitor.store.schema import source_state

MAX_STORED_ERRORS = 1000


@dataclass(frozen=True)
class ImportResult:
    revision: int
    added: int
    changed: int
    unchanged: int
    rejected: int

    @property
    def modified(self) -> bool:
        return bool(self.added or self.changed)


@dataclass(frozen=True)
class FeedStatus:
    name: str
    kind: str
    location: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    records: int
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        return self.last_success_at is not None and self.consecutive_failures == 0

    def age_seconds(self, now: datetime) -> float | None:
        return (now - self.last_success_at).total_seconds() if self.last_success_at else None

    def to_doc(self, now: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "location": self.location,
            "up": self.up,
            "last_attempt_at": self.last_attempt_at.isoformat() if self.last_attempt_at else None,
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "data_age_seconds": self.age_seconds(now),
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
            "records": self.records,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class InventoryRow:
    project: str
    source: str
    kind: str
    collected_at: datetime
    location: str
    python_version: str | None
    torch_version: str | None
    torch_variant: str | None
    torch_accelerator: str | None
    packages: int
    digest: str


class StackStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- advisories -------------------------------------------------------------------------

    def import_advisories(
        self,
        advisories: Sequence[Advisory],
        *,
        feed: str,
        source: str,
        now: datetime,
        rejected: Sequence[Rejected] = (),
    ) -> ImportResult:
        """Add new records and new revisions of known ones as one database revision."""
        newest: dict[str, Advisory] = {}
        for adv in advisories:
            kept = newest.get(adv.id)
            if kept is None or adv.modified > kept.modified:
                newest[adv.id] = adv
        errors = [{"where": r.where, "reason": r.reason} for r in rejected[:MAX_STORED_ERRORS]]
        with write_tx(self.engine) as conn:
            revision = int(
                conn.execute(
                    insert(stack_advisory_revisions)
                    .values(
                        at=now,
                        feed=feed,
                        source=source,
                        added=0,
                        changed=0,
                        unchanged=0,
                        rejected=len(rejected),
                        errors=errors,
                    )
                    .returning(stack_advisory_revisions.c.id)
                ).scalar_one()
            )
            current = {
                row.id: row.modified
                for row in conn.execute(
                    select(stack_advisories.c.id, stack_advisories.c.modified).where(
                        stack_advisories.c.replaced_revision.is_(None)
                    )
                )
            }
            added = changed = unchanged = 0
            rows: list[dict[str, Any]] = []
            replaced: list[str] = []
            for ident, adv in newest.items():
                known = current.get(ident)
                if known is not None and adv.modified <= known:
                    unchanged += 1
                    continue
                if known is None:
                    added += 1
                else:
                    changed += 1
                    replaced.append(ident)
                rows.append(
                    {
                        "id": ident,
                        "modified": adv.modified,
                        "published": adv.published,
                        "withdrawn": adv.withdrawn,
                        "packages": sorted(adv.packages()),
                        "document": dict(adv.doc),
                        "added_revision": revision,
                        "replaced_revision": None,
                        "imported_at": now,
                    }
                )
            for start in range(0, len(replaced), 500):
                conn.execute(
                    update(stack_advisories)
                    .where(stack_advisories.c.id.in_(replaced[start : start + 500]))
                    .where(stack_advisories.c.replaced_revision.is_(None))
                    .values(replaced_revision=revision)
                )
            for start in range(0, len(rows), 500):
                conn.execute(insert(stack_advisories), rows[start : start + 500])
            conn.execute(
                update(stack_advisory_revisions)
                .where(stack_advisory_revisions.c.id == revision)
                .values(added=added, changed=changed, unchanged=unchanged)
            )
        return ImportResult(revision, added, changed, unchanged, len(rejected))

    def content_revision(self) -> int | None:
        """The newest revision that changed any record (what matching results depend on)."""
        stamp = self.content_stamp()
        return stamp[0] if stamp is not None else None

    def content_stamp(self) -> tuple[int, datetime] | None:
        """(revision, when it was written) of the newest revision that changed any record.

        Caches key on both: a revision number alone repeats after a database is restored from a
        backup or emptied (identities restart), and would then name different records."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(stack_advisory_revisions.c.id, stack_advisory_revisions.c.at)
                .where(or_(stack_advisory_revisions.c.added > 0, stack_advisory_revisions.c.changed > 0))
                .order_by(stack_advisory_revisions.c.id.desc())
                .limit(1)
            ).first()
        return (int(row[0]), row[1]) if row is not None else None

    def advisory_documents(self, revision: int | None = None) -> list[Mapping[str, Any]]:
        """Current records, or the records as they were at `revision`."""
        query = select(stack_advisories.c.document)
        if revision is None:
            query = query.where(stack_advisories.c.replaced_revision.is_(None))
        else:
            query = query.where(stack_advisories.c.added_revision <= revision).where(
                or_(stack_advisories.c.replaced_revision.is_(None), stack_advisories.c.replaced_revision > revision)
            )
        with self.engine.connect() as conn:
            return [row.document for row in conn.execute(query)]

    def advisory_history(self, ident: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(stack_advisories).where(stack_advisories.c.id == ident).order_by(stack_advisories.c.modified)
            )
            return [
                {
                    "id": r.id,
                    "modified": r.modified.isoformat(),
                    "added_revision": r.added_revision,
                    "replaced_revision": r.replaced_revision,
                    "withdrawn": r.withdrawn.isoformat() if r.withdrawn else None,
                    "document": r.document,
                }
                for r in rows
            ]

    def advisory_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            current = conn.execute(
                select(func.count()).select_from(stack_advisories).where(stack_advisories.c.replaced_revision.is_(None))
            ).scalar_one()
            withdrawn = conn.execute(
                select(func.count())
                .select_from(stack_advisories)
                .where(stack_advisories.c.replaced_revision.is_(None), stack_advisories.c.withdrawn.is_not(None))
            ).scalar_one()
            revisions = conn.execute(select(func.count()).select_from(stack_advisory_revisions)).scalar_one()
        return {"records": int(current), "withdrawn": int(withdrawn), "revisions": int(revisions)}

    def revisions(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(stack_advisory_revisions).order_by(stack_advisory_revisions.c.id.desc()).limit(limit)
            )
            return [
                {
                    "revision": r.id,
                    "at": r.at.isoformat(),
                    "feed": r.feed,
                    "source": r.source,
                    "added": r.added,
                    "changed": r.changed,
                    "unchanged": r.unchanged,
                    "rejected": r.rejected,
                    "errors": r.errors[:20],
                }
                for r in rows
            ]

    # --- feeds ------------------------------------------------------------------------------

    def feeds(self) -> list[FeedStatus]:
        with self.engine.connect() as conn:
            return [
                FeedStatus(
                    r.name,
                    r.kind,
                    r.location,
                    r.last_attempt_at,
                    r.last_success_at,
                    r.last_error,
                    r.consecutive_failures,
                    r.records,
                    r.detail or {},
                )
                for r in conn.execute(select(stack_feeds).order_by(stack_feeds.c.name))
            ]

    def feed(self, name: str) -> FeedStatus | None:
        return next((f for f in self.feeds() if f.name == name), None)

    def record_feed(
        self,
        name: str,
        *,
        kind: str,
        location: str,
        now: datetime,
        error: str | None = None,
        records: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """A feed's attempt: success (error None) or failure; a failure keeps the last good data."""
        with write_tx(self.engine) as conn:
            row = conn.execute(select(stack_feeds).where(stack_feeds.c.name == name)).first()
            values: dict[str, Any] = {"kind": kind, "location": location, "last_attempt_at": now, "last_error": error}
            if error is None:
                values["last_success_at"] = now
                values["consecutive_failures"] = 0
                if records is not None:
                    values["records"] = records
                if detail is not None:
                    values["detail"] = dict(detail)
            else:
                values["consecutive_failures"] = (row.consecutive_failures if row else 0) + 1
            if row is None:
                values.setdefault("records", records or 0)
                values.setdefault("detail", dict(detail or {}))
                values.setdefault("consecutive_failures", 0)
                conn.execute(insert(stack_feeds).values(name=name, **values))
            else:
                conn.execute(update(stack_feeds).where(stack_feeds.c.name == name).values(**values))

    # --- release histories ------------------------------------------------------------------

    def put_history(self, history: ReleaseHistory, now: datetime) -> None:
        with write_tx(self.engine) as conn:
            conn.execute(delete(stack_releases).where(stack_releases.c.package == history.package))
            conn.execute(
                insert(stack_releases).values(
                    package=history.package, source=history.source, fetched_at=now, releases=history.to_doc()
                )
            )

    def histories(self) -> dict[str, ReleaseHistory]:
        with self.engine.connect() as conn:
            return {
                r.package: ReleaseHistory.from_doc(r.package, r.releases, r.source, r.fetched_at)
                for r in conn.execute(select(stack_releases))
            }

    # --- inventories and package history ----------------------------------------------------

    def inventory_rows(self, projects: Iterable[str] | None = None) -> list[InventoryRow]:
        columns = [c for c in stack_inventories.c if c.name != "document"]
        query = select(*columns).order_by(stack_inventories.c.project, stack_inventories.c.source)
        if projects is not None:
            query = query.where(stack_inventories.c.project.in_(list(projects)))
        with self.engine.connect() as conn:
            return [InventoryRow(**row._mapping) for row in conn.execute(query)]

    def inventory_documents(self, project: str) -> dict[str, Mapping[str, Any]]:
        with self.engine.connect() as conn:
            return {
                r.source: r.document
                for r in conn.execute(
                    select(stack_inventories.c.source, stack_inventories.c.document).where(
                        stack_inventories.c.project == project
                    )
                )
            }

    def put_inventory(
        self,
        conn: Connection,
        project: str,
        source: str,
        row: Mapping[str, Any],
        pairs: set[tuple[str, str]],
        at: datetime,
    ) -> None:
        """Replace the current inventory of a source and move its package intervals forward."""
        key = and_(stack_inventories.c.project == project, stack_inventories.c.source == source)
        conn.execute(delete(stack_inventories).where(key))
        conn.execute(insert(stack_inventories).values(project=project, source=source, **row))
        self.move_packages(conn, project, source, pairs, at)

    def move_packages(
        self, conn: Connection, project: str, source: str, pairs: set[tuple[str, str]], at: datetime
    ) -> None:
        open_rows = conn.execute(
            select(stack_packages.c.id, stack_packages.c.package, stack_packages.c.version).where(
                stack_packages.c.project == project,
                stack_packages.c.source == source,
                stack_packages.c.removed_at.is_(None),
            )
        ).all()
        have = {(r.package, r.version): r.id for r in open_rows}
        gone = [rid for pair, rid in have.items() if pair not in pairs]
        for start in range(0, len(gone), 500):
            conn.execute(
                update(stack_packages).where(stack_packages.c.id.in_(gone[start : start + 500])).values(removed_at=at)
            )
        conn.execute(
            update(stack_packages)
            .where(
                stack_packages.c.project == project,
                stack_packages.c.source == source,
                stack_packages.c.removed_at.is_(None),
            )
            .values(last_seen_at=at)
        )
        new = [
            {"project": project, "source": source, "package": p, "version": v, "first_seen_at": at, "last_seen_at": at}
            for p, v in sorted(pairs)
            if (p, v) not in have
        ]
        for start in range(0, len(new), 500):
            conn.execute(insert(stack_packages), new[start : start + 500])

    def drop_inventory(self, conn: Connection, project: str, source: str, at: datetime) -> None:
        conn.execute(
            delete(stack_inventories).where(
                stack_inventories.c.project == project, stack_inventories.c.source == source
            )
        )
        self.move_packages(conn, project, source, set(), at)

    def installed_since(self, conn: Connection, project: str, package: str, versions: Sequence[str]) -> datetime | None:
        """When any of these versions of the package was first seen installed (open intervals)."""
        value = conn.execute(
            select(func.min(stack_packages.c.first_seen_at)).where(
                stack_packages.c.project == project,
                stack_packages.c.package == package,
                stack_packages.c.version.in_(list(versions)),
                stack_packages.c.removed_at.is_(None),
            )
        ).scalar()
        return value if isinstance(value, datetime) else None

    def package_history(self, project: str, package: str | None = None) -> list[dict[str, Any]]:
        query = select(stack_packages).where(stack_packages.c.project == project)
        if package is not None:
            query = query.where(stack_packages.c.package == package)
        with self.engine.connect() as conn:
            return [
                {
                    "source": r.source,
                    "package": r.package,
                    "version": r.version,
                    "first_seen_at": r.first_seen_at.isoformat(),
                    "last_seen_at": r.last_seen_at.isoformat(),
                    "removed_at": r.removed_at.isoformat() if r.removed_at else None,
                }
                for r in conn.execute(query.order_by(stack_packages.c.package, stack_packages.c.first_seen_at))
            ]

    # --- projects and findings --------------------------------------------------------------

    def project_rows(self, projects: Iterable[str] | None = None) -> dict[str, Any]:
        query = select(stack_projects)
        if projects is not None:
            query = query.where(stack_projects.c.project.in_(list(projects)))
        with self.engine.connect() as conn:
            return {r.project: r for r in conn.execute(query)}

    def put_project(self, conn: Connection, project: str, values: Mapping[str, Any]) -> None:
        conn.execute(delete(stack_projects).where(stack_projects.c.project == project))
        conn.execute(insert(stack_projects).values(project=project, **values))

    def open_findings(self, conn: Connection | None = None, projects: Iterable[str] | None = None) -> list[Any]:
        query = select(stack_findings).where(stack_findings.c.resolved_at.is_(None))
        if projects is not None:
            query = query.where(stack_findings.c.project.in_(list(projects)))
        query = query.order_by(stack_findings.c.project, stack_findings.c.package, stack_findings.c.vuln_id)
        if conn is not None:
            return list(conn.execute(query))
        with self.engine.connect() as own:
            return list(own.execute(query))

    def findings(
        self,
        *,
        project: str | None = None,
        package: str | None = None,
        as_of: datetime | None = None,
        include_resolved: bool = False,
        vuln: str | None = None,
        limit: int = 10000,
    ) -> list[Any]:
        """Findings open now (or at `as_of`); with `include_resolved`, every finding ever recorded."""
        query = select(stack_findings)
        if project is not None:
            query = query.where(stack_findings.c.project == project)
        if package is not None:
            query = query.where(stack_findings.c.package == package)
        if vuln is not None:
            query = query.where(stack_findings.c.vuln_id == vuln)
        if as_of is not None:
            query = query.where(stack_findings.c.first_seen_at <= as_of).where(
                or_(stack_findings.c.resolved_at.is_(None), stack_findings.c.resolved_at > as_of)
            )
        elif not include_resolved:
            query = query.where(stack_findings.c.resolved_at.is_(None))
        query = query.order_by(stack_findings.c.project, stack_findings.c.package, stack_findings.c.vuln_id).limit(
            limit
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def finding(self, finding_id: int) -> Any | None:
        with self.engine.connect() as conn:
            return conn.execute(select(stack_findings).where(stack_findings.c.id == finding_id)).first()

    def finding_events(self, finding_ids: Sequence[int], until: datetime | None = None) -> dict[int, list[Any]]:
        out: dict[int, list[Any]] = {}
        if not finding_ids:
            return out
        with self.engine.connect() as conn:
            for start in range(0, len(finding_ids), 500):
                query = select(stack_finding_events).where(
                    stack_finding_events.c.finding_id.in_(list(finding_ids[start : start + 500]))
                )
                if until is not None:
                    query = query.where(stack_finding_events.c.at <= until)
                for row in conn.execute(query.order_by(stack_finding_events.c.at, stack_finding_events.c.id)):
                    out.setdefault(row.finding_id, []).append(row)
        return out

    def insert_finding(self, conn: Connection, values: Mapping[str, Any]) -> int:
        return int(conn.execute(insert(stack_findings).values(**values).returning(stack_findings.c.id)).scalar_one())

    def update_finding(self, conn: Connection, finding_id: int, values: Mapping[str, Any]) -> None:
        conn.execute(update(stack_findings).where(stack_findings.c.id == finding_id).values(**values))

    def last_successes(self, kinds: Iterable[str]) -> dict[tuple[str, str], datetime | None]:
        """When each (project, source) of these kinds last ran well."""
        query = select(source_state.c.project, source_state.c.source, source_state.c.last_success_at).where(
            source_state.c.kind.in_(list(kinds))
        )
        with self.engine.connect() as conn:
            return {(r.project, r.source): r.last_success_at for r in conn.execute(query)}

    def checkpoint(self, project: str, source: str) -> Any:
        """The source's checkpoint: the newest inventory its run wrote."""
        query = select(source_state.c.checkpoint).where(
            source_state.c.project == project, source_state.c.source == source
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def installed_packages(self) -> set[str]:
        """Every package some project has installed now."""
        query = select(stack_packages.c.package).where(stack_packages.c.removed_at.is_(None)).distinct()
        with self.engine.connect() as conn:
            return {r.package for r in conn.execute(query)}

    def current_advisories_modified(self) -> dict[str, datetime | None]:
        """Each advisory ID of the current revision and when its record was last modified."""
        query = select(stack_advisories.c.id, stack_advisories.c.modified).where(
            stack_advisories.c.replaced_revision.is_(None)
        )
        with self.engine.connect() as conn:
            return {r.id: r.modified for r in conn.execute(query)}

    def write_diff(self, conn: Connection, project: str, diff: FindingsDiff, at: datetime) -> None:
        """Apply one project's reconciliation: new rows (exposed since their versions were installed),
        updates, resolutions and their events, in the diff's order."""
        events: list[dict[str, Any]] = []
        for step in diff.matched:
            if isinstance(step, Opened):
                exposed = self.installed_since(conn, project, step.finding.package, step.finding.versions) or at
                finding_id = self.insert_finding(conn, {**step.values, "exposed_since": exposed})
            else:
                finding_id = step.row_id
                self.update_finding(conn, finding_id, step.values)
            events.extend(event_row(finding_id, project, e) for e in step.events)
        for gone in diff.resolved:
            self.update_finding(
                conn,
                gone.row_id,
                {"resolved_at": gone.event.at, "resolution": gone.resolution, "last_seen_at": gone.event.at},
            )
            events.append(event_row(gone.row_id, project, gone.event))
        self.add_events(conn, events)

    def add_events(self, conn: Connection, events: Sequence[Mapping[str, Any]]) -> None:
        if events:
            conn.execute(insert(stack_finding_events), list(events))
