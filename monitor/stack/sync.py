"""Keeping the stack tables current: inventories from source checkpoints, advisory and release
feeds, and findings reconciled into their history.

One `tick` does, in order:
  1. ingest: copy each stack source's newest inventory (its checkpoint, written by the runner with
     the run) into `stack_inventories`, moving the package version intervals on;
  2. feeds: refresh the advisories and release histories whose refresh interval has passed; a
     failure is recorded on the feed, and the last good data stays in use;
  3. reconcile: for each project whose inputs changed (inventories, advisory revision, release
     data, ignores in force), match and write what changed to the findings history.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from collectors.http import HttpFactory
from monitor.config.models import MlmonConfig
from monitor.core.errors import SourceError
from monitor.stack.advisories.index import AdvisoryIndex
from monitor.stack.advisories.model import AdvisoryError, parse_advisory
from monitor.stack.advisories.offline import OfflineSourceError, Rejected, load_offline, parse_records
from monitor.stack.advisories.osv_api import fetch_records, list_records
from monitor.stack.findings import Finding, IgnoreRule, expired, find, variant
from monitor.stack.inventory.changes import from_checkpoint
from monitor.stack.inventory.model import Inventory, merge
from monitor.stack.package_index import configured_index, fetch_history
from monitor.stack.releases import ReleaseHistory, staleness
from monitor.stack.store import ImportResult, StackStore
from monitor.stack.tables import stack_advisories, stack_packages
from monitor.store.db import write_tx
from monitor.store.schema import source_state
from monitor.store.store import Store

log = logging.getLogger("mlmon.stack.sync")

STACK_KINDS = ("python_env", "lockfile", "sbom", "repo")
ADVISORY_FEED = "advisories"
RETRY_FAILED_AFTER = timedelta(minutes=10)
Progress = Callable[[int, int], None]


# --- the advisory index, cached per database revision --------------------------------------------

_INDEX_LOCK = threading.Lock()
_INDEX_CACHE: dict[str, tuple[tuple[int, datetime], AdvisoryIndex]] = {}


def advisory_index(stack: StackStore) -> AdvisoryIndex | None:
    """The compiled index of the stored advisories (rebuilt only when the content revision moves)."""
    stamp = stack.content_stamp()
    if stamp is None:
        return None
    revision = stamp[0]
    key = stack.engine.url.render_as_string(hide_password=True)
    with _INDEX_LOCK:
        cached = _INDEX_CACHE.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    advisories = []
    for doc in stack.advisory_documents():
        try:
            advisories.append(parse_advisory(doc))
        except AdvisoryError as exc:  # stored records were checked on import; a schema change could still bite
            log.warning("stored advisory skipped: %s", exc)
    index = AdvisoryIndex(advisories, revision)
    with _INDEX_LOCK:
        _INDEX_CACHE[key] = (stamp, index)
    return index


# --- configuration-derived inputs -----------------------------------------------------------------


def ignore_rules(config: MlmonConfig) -> dict[str, list[IgnoreRule]]:
    """The ignores that apply to each project, with where each is written."""
    out: dict[str, list[IgnoreRule]] = {p.id: [] for p in config.projects}
    for index, item in enumerate(config.stack.ignores):
        rule = IgnoreRule(
            item.id,
            item.reason,
            item.expires,
            tuple(item.packages),
            tuple(item.projects) if item.projects is not None else None,
            f"stack.ignores[{index}]",
        )
        for project in out:
            if rule.projects is None or project in rule.projects:
                out[project].append(rule)
    for pi, declared in enumerate(config.projects):
        for index, item in enumerate(declared.stack.ignores):
            out[declared.id].append(
                IgnoreRule(
                    item.id,
                    item.reason,
                    item.expires,
                    tuple(item.packages),
                    None,
                    f"projects[{pi}].stack.ignores[{index}]",
                )
            )
    return out


def stack_sources(config: MlmonConfig) -> dict[str, list[str]]:
    """project -> names of its enabled stack sources."""
    return {
        p.id: [s.name for s in p.sources if s.kind in STACK_KINDS and s.enabled]
        for p in config.projects
        if any(s.kind in STACK_KINDS for s in p.sources)
    }


# --- 1. inventories from checkpoints --------------------------------------------------------------


@dataclass
class IngestReport:
    updated: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def inventory_row(inventory: Inventory, collected_at: datetime) -> dict[str, Any]:
    torch = inventory.torch
    return {
        "kind": inventory.kind,
        "collected_at": collected_at,
        "location": inventory.location,
        "python_version": inventory.python_version,
        "torch_version": torch.version if torch else None,
        "torch_variant": torch.variant if torch else None,
        "torch_accelerator": torch.accelerator if torch else None,
        "packages": len(inventory.packages),
        "digest": inventory.digest(),
        "document": inventory.to_doc(),
    }


def ingest(store: Store, config: MlmonConfig, now: datetime, projects: Iterable[str] | None = None) -> IngestReport:
    stack = StackStore(store.engine)
    wanted = stack_sources(config)
    if projects is not None:
        only = set(projects)
        wanted = {p: s for p, s in wanted.items() if p in only}
    report = IngestReport()
    stored = {(r.project, r.source): r for r in stack.inventory_rows()}
    with store.engine.connect() as conn:
        states = {
            (r.project, r.source): r.last_success_at
            for r in conn.execute(
                select(source_state.c.project, source_state.c.source, source_state.c.last_success_at).where(
                    source_state.c.kind.in_(STACK_KINDS)
                )
            )
        }
    for project, sources in wanted.items():
        for source in sources:
            success = states.get((project, source))
            have = stored.get((project, source))
            if success is None or (have is not None and have.collected_at >= success):
                continue
            try:
                _ingest_one(store, stack, project, source)
                report.updated.append((project, source))
            except Exception as exc:
                log.exception("ingesting the inventory of %s/%s failed", project, source)
                report.errors[f"{project}/{source}"] = f"{type(exc).__name__}: {exc}"
    scope = set(wanted) if projects is not None else None
    for project, source in stored:
        if scope is not None and project not in scope:
            continue
        if source not in wanted.get(project, []):
            with write_tx(store.engine) as conn:
                stack.drop_inventory(conn, project, source, now)
            report.removed.append((project, source))
    return report


def _ingest_one(store: Store, stack: StackStore, project: str, source: str) -> None:
    with store.engine.connect() as conn:
        checkpoint = conn.execute(
            select(source_state.c.checkpoint).where(source_state.c.project == project, source_state.c.source == source)
        ).scalar()
    found = from_checkpoint(checkpoint)
    if found is None:
        return
    inventory, collected_at = found
    pairs = {(p.name, p.version) for p in inventory.packages}
    with write_tx(store.engine) as conn:
        stack.put_inventory(conn, project, source, inventory_row(inventory, collected_at), pairs, collected_at)


# --- 2. feeds ---------------------------------------------------------------------------------------


@dataclass
class FeedOutcome:
    name: str
    ran: bool
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _due(stack: StackStore, name: str, every: timedelta, now: datetime, force: bool) -> bool:
    if force:
        return True
    status = stack.feed(name)
    if status is None or status.last_attempt_at is None:
        return True
    if status.consecutive_failures:
        return now - status.last_attempt_at >= min(every, RETRY_FAILED_AFTER)
    return now - status.last_attempt_at >= every


def installed_packages(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return {
            r.package
            for r in conn.execute(
                select(stack_packages.c.package).where(stack_packages.c.removed_at.is_(None)).distinct()
            )
        }


def import_offline(
    store: Store, path: str, now: datetime, *, feed: str = "import", progress: Progress | None = None
) -> ImportResult:
    """Load an offline database (directory or all.zip) into the store as one revision."""
    loaded = load_offline(path, progress)
    return StackStore(store.engine).import_advisories(
        loaded.advisories, feed=feed, source=path, now=now, rejected=loaded.rejected
    )


def refresh_advisories(
    store: Store,
    config: MlmonConfig,
    http: HttpFactory,
    now: datetime,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> FeedOutcome:
    cfg = config.stack.advisories
    stack = StackStore(store.engine)
    if not _due(stack, ADVISORY_FEED, cfg.refresh, now, force):
        return FeedOutcome(ADVISORY_FEED, False)
    location = cfg.path or cfg.api_url or ""
    kind = "offline" if cfg.path else "osv-api"
    if not cfg.path and not installed_packages(store):
        # Nothing to ask the API about yet: asking nothing would "succeed" without reaching it, and
        # the feed would read as up on a machine that cannot reach the API. It stays never fetched.
        return FeedOutcome(ADVISORY_FEED, False)
    try:
        if cfg.path:
            result = import_offline(store, cfg.path, now, feed=ADVISORY_FEED, progress=progress)
        else:
            result = _refresh_from_api(
                store, stack, location, http.with_timeout(cfg.timeout.total_seconds()), now, progress
            )
    except (SourceError, OfflineSourceError, OSError) as exc:
        stack.record_feed(ADVISORY_FEED, kind=kind, location=location, now=now, error=str(exc))
        log.warning("advisory refresh from %s failed; keeping the stored data: %s", location, exc)
        return FeedOutcome(ADVISORY_FEED, True, str(exc))
    detail = {
        "revision": result.revision,
        "added": result.added,
        "changed": result.changed,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
    }
    counts = stack.advisory_counts()
    stack.record_feed(ADVISORY_FEED, kind=kind, location=location, now=now, records=counts["records"], detail=detail)
    return FeedOutcome(ADVISORY_FEED, True, None, detail)


def _refresh_from_api(
    store: Store, stack: StackStore, url: str, http: HttpFactory, now: datetime, progress: Progress | None
) -> ImportResult:
    packages = installed_packages(store)
    with stack.engine.connect() as conn:
        known = {
            r.id: r.modified
            for r in conn.execute(
                select(stack_advisories.c.id, stack_advisories.c.modified).where(
                    stack_advisories.c.replaced_revision.is_(None)
                )
            )
        }
    with http.client(base_url=url) as client:
        listing = list_records(client, packages)
        wanted = [i for i, modified in listing.ids.items() if i not in known or modified is None or modified > known[i]]
        docs, refused = fetch_records(client, wanted, progress)
    parsed = parse_records(docs)
    rejected = [*parsed.rejected, *(Rejected(where, why) for where, why in refused)]
    return stack.import_advisories(parsed.advisories, feed=ADVISORY_FEED, source=url, now=now, rejected=rejected)


def tracked_packages(store: Store, config: MlmonConfig) -> list[str]:
    """Release histories to keep: the configured packages, and any package with a fixable finding."""
    stack = StackStore(store.engine)
    wanted = list(config.stack.index.packages)
    for row in stack.open_findings():
        if row.fixed_in and row.package not in wanted:
            wanted.append(row.package)
    return wanted


def refresh_releases(
    store: Store, config: MlmonConfig, http: HttpFactory, env: Mapping[str, str], now: datetime, *, force: bool = False
) -> list[FeedOutcome]:
    cfg = config.stack.index
    if not cfg.enabled:
        return []
    stack = StackStore(store.engine)
    due = [p for p in tracked_packages(store, config) if _due(stack, f"index:{p}", cfg.refresh, now, force)]
    if not due:
        return []
    outcomes: list[FeedOutcome] = []
    try:
        choice = configured_index(env, cfg.url)
    except SourceError as exc:
        for package in due:
            stack.record_feed(f"index:{package}", kind="index", location="", now=now, error=str(exc))
        return [FeedOutcome(f"index:{p}", True, str(exc)) for p in due]
    with http.with_timeout(cfg.timeout.total_seconds()).client() as client:
        for package in due:
            name = f"index:{package}"
            try:
                history = fetch_history(client, choice.url, package)
            except SourceError as exc:
                stack.record_feed(name, kind="index", location=choice.url, now=now, error=str(exc))
                outcomes.append(FeedOutcome(name, True, str(exc)))
                continue
            stack.put_history(history, now)
            kind = "json-api" if history.source.endswith("/json") else "pep691"
            stack.record_feed(
                name,
                kind=kind,
                location=history.source,
                now=now,
                records=len(history.releases),
                detail={"index": choice.url, "index_origin": choice.origin},
            )
            outcomes.append(FeedOutcome(name, True, None, {"releases": len(history.releases)}))
    return outcomes


# --- 3. findings ------------------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    projects: int = 0
    reconciled: int = 0
    opened: int = 0
    resolved: int = 0
    changed: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    no_advisories: bool = False


def _digest(parts: Sequence[object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def reconcile(
    store: Store, config: MlmonConfig, now: datetime, projects: Iterable[str] | None = None, *, force: bool = False
) -> ReconcileReport:
    """Bring every project's findings history up to date with its inventories and the advisories."""
    started = time.perf_counter()
    projects = list(projects) if projects is not None else None
    stack = StackStore(store.engine)
    report = ReconcileReport()
    index = advisory_index(stack)
    if index is None:
        report.no_advisories = True
        return report
    histories = stack.histories()
    ignores = ignore_rules(config)
    rows = stack.inventory_rows(projects)
    by_project: dict[str, list[Any]] = {}
    for row in rows:
        by_project.setdefault(row.project, []).append(row)
    known = stack.project_rows(projects)
    targets = set(by_project) | set(known)
    tracked = set(config.stack.index.packages)
    # Release data changes fix dates and staleness; a refresh that brings nothing new changes nothing.
    releases = _digest(sorted((p, h.to_doc()) for p, h in histories.items()))
    for project in sorted(targets):
        report.projects += 1
        inventories = by_project.get(project, [])
        active = [r for r in ignores.get(project, []) if r.active(now)]
        digest = _digest(
            [
                sorted((r.source, r.digest, r.collected_at) for r in inventories),
                index.revision,
                releases,
                sorted(r.to_doc().items() for r in active),
                sorted(tracked),
            ]
        )
        previous = known.get(project)
        if not force and previous is not None and previous.digest == digest:
            continue
        try:
            counts = _reconcile_project(
                store, stack, project, inventories, index, ignores.get(project, []), histories, tracked, now, digest
            )
        except Exception as exc:
            log.exception("reconciling stack findings of %s failed", project)
            report.errors[project] = f"{type(exc).__name__}: {exc}"
            continue
        report.reconciled += 1
        report.opened += counts["opened"]
        report.resolved += counts["resolved"]
        report.changed += counts["changed"]
    report.seconds = time.perf_counter() - started
    return report


def _finding_values(f: Finding, inventory: Inventory) -> dict[str, Any]:
    return {
        "package": f.package,
        "vuln_id": f.key,
        "ids": list(f.ids),
        "versions": list(f.versions),
        "variant": variant(inventory, f.package),
        "state": f.state,
        "severity": f.rating,
        "score": f.score,
        "summary": f.summary[:4000],
        "fixed_in": f.fixed_in,
        "fix_available_at": f.fix_available_at,
        "published": f.published,
        "detail": f.to_doc(inventory),
    }


_TRACKED_FIELDS = ("vuln_id", "versions", "state", "severity", "fixed_in", "variant")


def _reconcile_project(
    store: Store,
    stack: StackStore,
    project: str,
    rows: list[Any],
    index: AdvisoryIndex,
    ignores: list[IgnoreRule],
    histories: Mapping[str, ReleaseHistory],
    tracked: set[str],
    now: datetime,
    digest: str,
) -> dict[str, int]:
    documents = stack.inventory_documents(project) if rows else {}
    inventories = [Inventory.from_doc(documents[r.source]) for r in rows if r.source in documents]
    merged = merge("repo", project, inventories) if inventories else None
    findings = find(merged, index, project=project, ignores=ignores, now=now, histories=histories) if merged else []
    newest = max((r.collected_at for r in rows), default=None)
    previous = stack.project_rows([project]).get(project)
    # Changes caused by a new inventory date from when it was read; the rest from now.
    at = newest if newest is not None and (previous is None or newest > previous.reconciled_at) else now
    at = min(at, now)
    counts = {"opened": 0, "resolved": 0, "changed": 0}
    events: list[dict[str, Any]] = []
    with write_tx(store.engine) as conn:
        open_rows = stack.open_findings(conn, [project])
        unmatched = {r.id: r for r in open_rows}
        for finding in findings:
            row = _matching_row(unmatched.values(), finding)
            assert merged is not None  # findings come from an inventory
            values = _finding_values(finding, merged)
            if row is None:
                exposed = stack.installed_since(conn, project, finding.package, finding.versions) or at
                finding_id = stack.insert_finding(
                    conn,
                    {
                        **values,
                        "project": project,
                        "first_seen_at": at,
                        "last_seen_at": now,
                        "exposed_since": exposed,
                        "ignored": finding.ignore is not None,
                        "ignore_reason": finding.ignore.reason if finding.ignore else None,
                        "ignore_expires": finding.ignore.expires if finding.ignore else None,
                        "ignored_at": at if finding.ignore else None,
                        "advisory_revision": index.revision,
                    },
                )
                counts["opened"] += 1
                events.append(
                    _event(
                        finding_id,
                        project,
                        at,
                        "opened",
                        {
                            "versions": list(finding.versions),
                            "severity": finding.rating,
                            "state": finding.state,
                            "fixed_in": finding.fixed_in,
                            "ids": list(finding.ids),
                            "advisory_revision": index.revision,
                        },
                    )
                )
                if finding.ignore is not None:
                    events.append(_event(finding_id, project, at, "ignored", finding.ignore.to_doc()))
                continue
            del unmatched[row.id]
            update: dict[str, Any] = {"last_seen_at": now}
            changes = {k: [getattr(row, k), values[k]] for k in _TRACKED_FIELDS if getattr(row, k) != values[k]}
            if changes or row.detail != values["detail"]:
                update.update(values)
            if changes:
                counts["changed"] += 1
                events.append(_event(row.id, project, at, "changed", {**changes, "advisory_revision": index.revision}))
            ignore = finding.ignore
            if ignore is not None and (
                not row.ignored or row.ignore_reason != ignore.reason or row.ignore_expires != ignore.expires
            ):
                update.update(ignored=True, ignore_reason=ignore.reason, ignore_expires=ignore.expires, ignored_at=now)
                events.append(_event(row.id, project, now, "ignored", ignore.to_doc()))
            elif ignore is None and row.ignored:
                lapsed = row.ignore_expires is not None and row.ignore_expires < now.date()
                update.update(ignored=False, ignored_at=None)
                events.append(
                    _event(
                        row.id,
                        project,
                        now,
                        "unignored",
                        {
                            "reason": "expired" if lapsed else "removed from the configuration",
                            "was": {"reason": row.ignore_reason, "expires": str(row.ignore_expires)},
                        },
                    )
                )
            stack.update_finding(conn, row.id, update)
        for row in unmatched.values():
            resolution = _resolution(row, merged, index)
            stack.update_finding(conn, row.id, {"resolved_at": at, "resolution": resolution, "last_seen_at": at})
            events.append(
                _event(
                    row.id,
                    project,
                    at,
                    "resolved",
                    {"resolution": resolution, "installed": _installed(merged, row.package)},
                )
            )
            counts["resolved"] += 1
        stack.add_events(conn, events)
        stale = []
        if merged is not None:
            for package in sorted(tracked):
                history = histories.get(package)
                for version in merged.versions(package) if history else ():
                    found = staleness(history, version) if history else None
                    if found is not None:
                        stale.append(found.to_doc())
        summary = _summary(findings, ignores, now)
        summary["tracked"] = {p: list(merged.versions(p)) for p in sorted(tracked) if merged and merged.versions(p)}
        stack.put_project(
            conn,
            project,
            {
                "reconciled_at": now,
                "digest": digest,
                "advisory_revision": index.revision,
                "staleness": stale,
                "summary": summary,
            },
        )
    return counts


def _event(finding_id: int, project: str, at: datetime, kind: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "finding_id": finding_id,
        "project": project,
        "at": at,
        "kind": kind,
        "detail": json.loads(json.dumps(detail, default=str)),
    }


def _matching_row(rows: Iterable[Any], finding: Finding) -> Any | None:
    """The open row of this vulnerability: same package and main ID, or any shared ID (merged aliases)."""
    candidates = [r for r in rows if r.package == finding.package]
    for row in candidates:
        if row.vuln_id == finding.key:
            return row
    ids = set(finding.ids)
    for row in candidates:
        if ids & set(row.ids or []):
            return row
    return None


def _installed(merged: Inventory | None, package: str) -> list[str]:
    return list(merged.versions(package)) if merged is not None else []


def _resolution(row: Any, merged: Inventory | None, index: AdvisoryIndex) -> str:
    if merged is None:
        return "source_removed"
    versions = merged.versions(row.package)
    if not versions:
        return "removed"
    if set(versions) != set(row.versions or []):
        return "upgraded"
    return "advisory_changed"


def _summary(findings: Sequence[Finding], ignores: Sequence[IgnoreRule], now: datetime) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    for f in findings:
        bucket = "ignored" if f.ignored else f.state
        counts.setdefault(bucket, {}).setdefault(f.rating, 0)
        counts[bucket][f.rating] += 1
    return {
        "findings": counts,
        "expired_ignores": [r.to_doc() for r in expired(ignores, now)],
    }


# --- one tick -------------------------------------------------------------------------------------


@dataclass
class TickReport:
    ingest: IngestReport
    feeds: list[FeedOutcome]
    reconcile: ReconcileReport


def tick(
    store: Store,
    config: MlmonConfig,
    now: datetime,
    http: HttpFactory,
    env: Mapping[str, str],
    *,
    refresh: bool = True,
    force: bool = False,
) -> TickReport:
    """Ingest, refresh what is due, reconcile: the stack family's periodic job."""
    ingested = ingest(store, config, now)
    feeds: list[FeedOutcome] = []
    if refresh:
        feeds.append(refresh_advisories(store, config, http, now, force=force))
        feeds.extend(refresh_releases(store, config, http, env, now, force=force))
    return TickReport(ingested, feeds, reconcile(store, config, now))
