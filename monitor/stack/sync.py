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

from monitor.config.models import MlmonConfig
from monitor.core.errors import SourceError
from monitor.http import HttpFactory
from monitor.stack.advisories.feed import AdvisoryFeed, Holdings
from monitor.stack.advisories.index import AdvisoryIndex
from monitor.stack.advisories.model import AdvisoryError, parse_advisory
from monitor.stack.advisories.offline import OfflineFeed, OfflineSourceError, SnapshotFeed, load_offline
from monitor.stack.advisories.osv_api import OsvApiFeed
from monitor.stack.advisories.snapshot import BUILTIN as BUILTIN_ADVISORIES
from monitor.stack.advisories.snapshot import SnapshotError, read_snapshot
from monitor.stack.advisories.snapshot import resolve as resolve_advisories
from monitor.stack.findings import IgnoreRule, find
from monitor.stack.index_snapshot import IndexSnapshotError, read_index_snapshot
from monitor.stack.index_snapshot import describe as describe_index
from monitor.stack.inventory.changes import from_checkpoint
from monitor.stack.inventory.model import Inventory, merge
from monitor.stack.package_index import configured_index, fetch_history
from monitor.stack.plan.refresh import PlanReport, refresh_plans
from monitor.stack.reconcile import diff_findings, summary
from monitor.stack.releases import ReleaseHistory, staleness
from monitor.stack.store import ImportResult, StackStore
from monitor.store.db import write_tx
from monitor.store.store import Store

log = logging.getLogger("mlmon.stack.sync")

STACK_KINDS = ("python_env", "lockfile", "sbom", "repo", "image")
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
    states = stack.last_successes(STACK_KINDS)
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
    found = from_checkpoint(stack.checkpoint(project, source))
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
    if not cfg.path and not stack.installed_packages():
        # Nothing to ask the API about yet: asking nothing would "succeed" without reaching it, and
        # the feed would read as up on a machine that cannot reach the API. It stays never fetched.
        return FeedOutcome(ADVISORY_FEED, False)
    feed = advisory_feed(config, http)
    try:
        holdings = Holdings(stack.current_advisories_modified(), stack.installed_packages())
        loaded = feed.fetch(holdings, progress)
        result = stack.import_advisories(
            loaded.advisories, feed=ADVISORY_FEED, source=feed.location, now=now, rejected=loaded.rejected
        )
    except (SourceError, OfflineSourceError, OSError) as exc:
        stack.record_feed(ADVISORY_FEED, kind=feed.kind, location=feed.location, now=now, error=str(exc))
        log.warning("advisory refresh from %s failed; keeping the stored data: %s", feed.location, exc)
        return FeedOutcome(ADVISORY_FEED, True, str(exc))
    detail: dict[str, Any] = {
        "revision": result.revision,
        "added": result.added,
        "changed": result.changed,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
    }
    if cfg.path:
        as_of = _data_as_of(cfg.path)
        if as_of:
            detail["as_of"] = as_of
    counts = stack.advisory_counts()
    stack.record_feed(
        ADVISORY_FEED, kind=feed.kind, location=feed.location, now=now, records=counts["records"], detail=detail
    )
    return FeedOutcome(ADVISORY_FEED, True, None, detail)


def _data_as_of(path: str) -> str | None:
    """When an offline database is a snapshot, the date its data is as of."""
    try:
        return read_snapshot(resolve_advisories(path)).as_of or None
    except SnapshotError:
        return None


def advisory_feed(config: MlmonConfig, http: HttpFactory) -> AdvisoryFeed:
    """The configured feed: an offline export when `path` is set, else OSV's API."""
    cfg = config.stack.advisories
    if cfg.path == BUILTIN_ADVISORIES:
        return SnapshotFeed()
    if cfg.path:
        return OfflineFeed(cfg.path)
    return OsvApiFeed(cfg.api_url or "", http.with_timeout(cfg.timeout.total_seconds()))


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
    if cfg.path:
        return _releases_from_snapshot(stack, cfg.path, due, now)
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


def _releases_from_snapshot(stack: StackStore, path: str, due: list[str], now: datetime) -> list[FeedOutcome]:
    location = describe_index(path)
    try:
        snapshot = read_index_snapshot(path)
    except IndexSnapshotError as exc:
        for package in due:
            stack.record_feed(f"index:{package}", kind="snapshot", location=location, now=now, error=str(exc))
        return [FeedOutcome(f"index:{p}", True, str(exc)) for p in due]
    outcomes: list[FeedOutcome] = []
    for package in due:
        name = f"index:{package}"
        try:
            history = snapshot.history(package, now)
        except IndexSnapshotError as exc:
            stack.record_feed(name, kind="snapshot", location=location, now=now, error=str(exc))
            outcomes.append(FeedOutcome(name, True, str(exc)))
            continue
        stack.put_history(history, now)
        detail = {"as_of": snapshot.as_of, "built_from": snapshot.built_from}
        stack.record_feed(
            name, kind="snapshot", location=location, now=now, records=len(history.releases), detail=detail
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
    project_values = {
        "reconciled_at": now,
        "digest": digest,
        "advisory_revision": index.revision,
        "staleness": _staleness(merged, tracked, histories),
        "summary": {
            **summary(findings, ignores, now),
            "tracked": {p: list(merged.versions(p)) for p in sorted(tracked) if merged and merged.versions(p)},
        },
    }
    with write_tx(store.engine) as conn:
        diff = diff_findings(
            stack.open_findings(conn, [project]),
            findings,
            merged,
            project=project,
            revision=index.revision,
            at=at,
            now=now,
        )
        stack.write_diff(conn, project, diff, at)
        stack.put_project(conn, project, project_values)
    return {"opened": len(diff.opened), "resolved": len(diff.resolved), "changed": diff.changed}


def _staleness(
    merged: Inventory | None, tracked: set[str], histories: Mapping[str, ReleaseHistory]
) -> list[dict[str, Any]]:
    stale = []
    for package in sorted(tracked) if merged is not None else ():
        history = histories.get(package)
        for version in merged.versions(package) if merged is not None and history else ():
            found = staleness(history, version) if history else None
            if found is not None:
                stale.append(found.to_doc())
    return stale


# --- one tick -------------------------------------------------------------------------------------


@dataclass
class TickReport:
    ingest: IngestReport
    feeds: list[FeedOutcome]
    reconcile: ReconcileReport
    plans: PlanReport | None = None


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
    reconciled = reconcile(store, config, now)
    index = advisory_index(StackStore(store.engine))
    plans = None
    if index is not None:
        plans = refresh_plans(
            store, config, index, ignore_rules(config), http if refresh else None, env, now, force=force
        )
    return TickReport(ingested, feeds, reconciled, plans)
