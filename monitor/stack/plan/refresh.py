"""The service's plan step: after findings are reconciled, each project's plan is brought up to date.

A plan is recomputed only when what it depends on moved (advisory revision, the project's
inventories, its ignores in force, the index in use and the target platform) or when the index
pages it was built from are older than `stack.index.refresh`; otherwise the stored plan stands.
The index is read through the store's cache, so a page read for one project serves every project,
and an index that cannot be reached leaves "unknown (index unreachable since ...)" in the plan.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.config.models import MlmonConfig
from monitor.core.errors import SourceError
from monitor.http import HttpFactory
from monitor.stack.advisories.index import AdvisoryIndex
from monitor.stack.findings import IgnoreRule, find
from monitor.stack.inventory.model import Inventory, merge
from monitor.stack.package_index import configured_index
from monitor.stack.plan.index_client import IndexClient
from monitor.stack.plan.inputs import plan_for
from monitor.stack.plan.store import PlanStore, StoreIndexCache
from monitor.stack.store import StackStore
from monitor.store.store import Store

log = logging.getLogger(__name__)


@dataclass
class PlanReport:
    computed: int = 0
    kept: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    index_url: str | None = None
    index_note: str | None = None
    requests: int = 0
    seconds: float = 0.0


def platform_of(config: MlmonConfig, project: str) -> dict[str, str]:
    """The target platform a project's stack sources declare (`environment`), if any."""
    for p in config.projects:
        if p.id != project:
            continue
        for source in p.sources:
            env = source.params.get("environment")
            if isinstance(env, Mapping):
                return {
                    "sys_platform": str(env.get("sys_platform", "linux")),
                    "platform_machine": str(env.get("platform_machine", "x86_64")),
                }
    return {}


def _digest(parts: Sequence[object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def refresh_plans(
    store: Store,
    config: MlmonConfig,
    index: AdvisoryIndex,
    ignores: Mapping[str, list[IgnoreRule]],
    http: HttpFactory | None,
    env: Mapping[str, str],
    now: datetime,
    *,
    force: bool = False,
) -> PlanReport:
    """`http=None` reads the index from the store's cache only (no network)."""
    started = time.perf_counter()
    report = PlanReport()
    cfg = config.stack.index
    if cfg.enabled and cfg.path:
        # A snapshot holds release histories, not an index's file lists or metadata: no URL is
        # guessed in its place (a demo or an offline site reaches nothing outside the machine).
        report.index_note = f"stack.index.path {cfg.path}: a release snapshot, no package index to read"
    elif cfg.enabled:
        try:
            report.index_url = configured_index(env, cfg.url).url
        except SourceError as exc:
            report.index_note = str(exc)
    stack = StackStore(store.engine)
    plans = PlanStore(store.engine)
    by_project: dict[str, list[Any]] = {}
    for row in stack.inventory_rows():
        by_project.setdefault(row.project, []).append(row)
    known = plans.keys()
    plans.drop(p for p in known if p not in by_project)
    cache = StoreIndexCache(store.engine)
    with ExitStack() as stack_of_clients:
        online = None
        if http is not None and report.index_url:
            online = stack_of_clients.enter_context(http.with_timeout(cfg.timeout.total_seconds()).client())
        client = IndexClient(
            online,
            report.index_url,
            cache,
            now,
            max_age=cfg.refresh,
            no_index=report.index_note or "stack.index is disabled",
        )
        for project in sorted(by_project):
            rows = by_project[project]
            active = [r for r in ignores.get(project, []) if r.active(now)]
            platform = platform_of(config, project)
            key = _digest(
                [
                    index.revision,
                    sorted((r.source, r.digest) for r in rows),
                    sorted(r.to_doc().items() for r in active),
                    report.index_url,
                    platform,
                ]
            )
            previous = known.get(project)
            if not force and previous is not None and previous[0] == key and now - previous[1] < cfg.refresh:
                report.kept += 1
                continue
            try:
                documents = stack.inventory_documents(project)
                inventories = [Inventory.from_doc(documents[r.source]) for r in rows if r.source in documents]
                merged = merge("repo", project, inventories)
                findings = find(merged, index, project=project, ignores=ignores.get(project, []), now=now)
                plan = plan_for(merged, findings, index, client, index_url=report.index_url, now=now, platform=platform)
                plans.put(project, key, plan, now)
                report.computed += 1
            except Exception as exc:  # one project's plan must not stop the others
                log.exception("remediation plan of %s failed", project)
                report.errors[project] = f"{type(exc).__name__}: {exc}"
        report.requests = client.requests
    report.seconds = time.perf_counter() - started
    return report
