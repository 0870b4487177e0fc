"""HTTP routes of the stack family (under /api/v1/stack).

GET  /stack/projects                     torch build, findings counts, staleness per project
GET  /stack/projects/{id}                one project: inventories, staleness, open findings
GET  /stack/projects/{id}/packages       installed packages, with their version history
GET  /stack/findings                     findings (open now, at ?as_of=, or all), SLA state
GET  /stack/findings/{n}                 one finding with its event history
GET  /stack/advisories                   feeds (data age), counts, revisions
GET  /stack/advisories/{id}              every stored revision of one record
POST /stack/sync                         ingest + reconcile now (?refresh=true also refreshes feeds)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from monitor.api.auth import PrincipalDep, permit
from monitor.api.deps import RuntimeDep, parse_time
from monitor.api.schemas import RowId
from monitor.auth.model import Permission
from monitor.core.errors import InvalidInput, Issue, NotFound
from monitor.http import HttpFactory
from monitor.runtime import Runtime
from monitor.stack.advisories.severity import RANK, RATINGS
from monitor.stack.history import finding_doc
from monitor.stack.inventory.model import Inventory
from monitor.stack.plan.store import PlanStore
from monitor.stack.releases import Staleness
from monitor.stack.store import StackStore
from monitor.stack.sync import tick
from monitor.stack.versions import canonical_name

router = APIRouter(prefix="/api/v1", tags=["stack"])


def _project_or_404(runtime: Runtime, project: str) -> None:
    if runtime.config.project(project) is None:
        raise NotFound(f"unknown project {project!r}")


@router.get("/stack/projects", summary="Stack health of every project")
def projects(runtime: RuntimeDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    stack = StackStore(runtime.store.engine)
    now = runtime.clock.now()
    rows = stack.project_rows()
    inventories: dict[str, list[Any]] = {}
    for inv in stack.inventory_rows():
        inventories.setdefault(inv.project, []).append(inv)
    out = []
    for project in runtime.config.projects:
        if not principal.sees(project.id):
            continue
        row = rows.get(project.id)
        invs = inventories.get(project.id, [])
        torch = next((i for i in invs if i.torch_version), None)
        out.append(
            {
                "project": project.id,
                "torch": {
                    "version": torch.torch_version,
                    "variant": torch.torch_variant,
                    "accelerator": torch.torch_accelerator,
                }
                if torch
                else None,
                "sources": [
                    {
                        "source": i.source,
                        "kind": i.kind,
                        "collected_at": i.collected_at.isoformat(),
                        "packages": i.packages,
                        "python": i.python_version,
                    }
                    for i in invs
                ],
                "findings": (row.summary or {}).get("findings", {}) if row else {},
                "staleness": [_stale(d, now) for d in (row.staleness or [])] if row else [],
                "reconciled_at": row.reconciled_at.isoformat() if row else None,
                "advisory_revision": row.advisory_revision if row else None,
            }
        )
    return out


def _torch(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    torch = Inventory.from_doc(doc).torch
    return torch.to_doc() if torch is not None else None


def _stale(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    stale = Staleness.from_doc(doc)
    return {**doc, "behind_seconds": stale.behind_seconds(now)}


@router.get(
    "/stack/projects/{project}", summary="One project's inventories, staleness, open findings and remediation plan"
)
def project_detail(project: str, runtime: RuntimeDep) -> dict[str, Any]:
    _project_or_404(runtime, project)
    stack = StackStore(runtime.store.engine)
    now = runtime.clock.now()
    row = stack.project_rows([project]).get(project)
    docs = stack.inventory_documents(project)
    invs = {i.source: i for i in stack.inventory_rows([project])}
    findings = [finding_doc(r, []) for r in stack.findings(project=project)]
    for doc in findings:
        doc.update(runtime.config.stack.sla.due_fields(doc, now))
    return {
        "project": project,
        "inventories": [
            {
                "source": source,
                "kind": invs[source].kind,
                "collected_at": invs[source].collected_at.isoformat(),
                "location": invs[source].location,
                "python": invs[source].python_version,
                "torch": _torch(doc),
                "packages": invs[source].packages,
                "notes": list(doc.get("notes", []))[:100],
            }
            for source, doc in docs.items()
            if source in invs
        ],
        "staleness": [_stale(d, now) for d in (row.staleness or [])] if row else [],
        "summary": row.summary if row else None,
        "reconciled_at": row.reconciled_at.isoformat() if row else None,
        "findings": findings,
        "plan": PlanStore(runtime.store.engine).documents([project]).get(project),
    }


@router.get("/stack/projects/{project}/packages", summary="Installed packages and their version history")
def project_packages(project: str, runtime: RuntimeDep, package: str | None = None) -> dict[str, Any]:
    _project_or_404(runtime, project)
    stack = StackStore(runtime.store.engine)
    name = canonical_name(package) if package else None
    current = [
        {"source": source, **pkg.to_doc()}
        for source, doc in stack.inventory_documents(project).items()
        for pkg in Inventory.from_doc(doc).packages
        if name is None or pkg.name == name
    ]
    return {"project": project, "packages": current, "history": stack.package_history(project, name)}


@router.get("/stack/findings", summary="Findings open now, open at a past moment (as_of), or all")
def findings(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    project: str | None = None,
    package: str | None = None,
    severity: str | None = Query(None, description="lowest severity: low, medium, high, critical"),
    status: str | None = Query(None, description="open, ignored or resolved"),
    as_of: str | None = Query(None, description="RFC 3339 time or Unix seconds"),
    include_resolved: bool = False,
    overdue: bool | None = None,
) -> list[dict[str, Any]]:
    if severity is not None and severity not in RATINGS:
        raise InvalidInput([Issue("severity", f"expected one of {', '.join(RATINGS)}", field="severity")])
    if status is not None and status not in ("open", "ignored", "resolved"):
        raise InvalidInput([Issue("status", "expected open, ignored or resolved", field="status")])
    moment = parse_time(as_of, "as_of") if as_of else None
    stack = StackStore(runtime.store.engine)
    rows = stack.findings(
        project=project,
        package=canonical_name(package) if package else None,
        as_of=moment,
        include_resolved=include_resolved or status == "resolved",
    )
    events = stack.finding_events([r.id for r in rows], until=moment)
    now = moment or runtime.clock.now()
    out = []
    for row in rows:
        if not principal.sees(row.project):
            continue
        doc = finding_doc(row, events.get(row.id, []), moment)
        doc.update(runtime.config.stack.sla.due_fields(doc, now))
        if severity is not None and RANK[doc["severity"]] < RANK[severity]:
            continue
        if status is not None and doc["status"] != status:
            continue
        if overdue is not None and doc["overdue"] != overdue:
            continue
        out.append(doc)
    return out


@router.get("/stack/findings/{finding_id}", summary="One finding with its full event history")
def finding(finding_id: RowId, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    stack = StackStore(runtime.store.engine)
    row = stack.finding(finding_id)
    if row is None or not principal.sees(row.project):
        raise NotFound(f"no finding {finding_id}")
    doc = finding_doc(row, stack.finding_events([finding_id]).get(finding_id, []))
    doc.update(runtime.config.stack.sla.due_fields(doc, runtime.clock.now()))
    return doc


@router.get("/stack/advisories", summary="Advisory and index feeds (with the age of their data), counts, revisions")
def advisories(runtime: RuntimeDep) -> dict[str, Any]:
    stack = StackStore(runtime.store.engine)
    now = runtime.clock.now()
    return {
        "counts": stack.advisory_counts(),
        "content_revision": stack.content_revision(),
        "feeds": [f.to_doc(now) for f in stack.feeds()],
        "revisions": stack.revisions(20),
    }


@router.get("/stack/advisories/{ident}", summary="Every stored revision of one advisory record")
def advisory(ident: str, runtime: RuntimeDep) -> list[dict[str, Any]]:
    found = StackStore(runtime.store.engine).advisory_history(ident)
    if not found:
        raise NotFound(f"no advisory {ident!r} is stored")
    return found


@router.post(
    "/stack/sync",
    summary="Ingest inventories and reconcile findings now (refresh=true: feeds too)",
    dependencies=[permit(Permission.RELOAD)],
)
async def sync(runtime: RuntimeDep, refresh: bool = False) -> dict[str, Any]:
    report = await run_in_threadpool(
        tick, runtime.store, runtime.config, runtime.clock.now(), HttpFactory(), os.environ, refresh=refresh
    )
    return {
        "inventories_updated": [f"{p}/{s}" for p, s in report.ingest.updated],
        "inventories_removed": [f"{p}/{s}" for p, s in report.ingest.removed],
        "feeds": [{"feed": f.name, "error": f.error, "detail": f.detail} for f in report.feeds if f.ran],
        "reconciled": report.reconcile.reconciled,
        "opened": report.reconcile.opened,
        "resolved": report.reconcile.resolved,
        "changed": report.reconcile.changed,
        "no_advisories": report.reconcile.no_advisories,
        "errors": {**report.ingest.errors, **report.reconcile.errors},
    }
