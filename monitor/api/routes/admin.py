"""Administration: configuration reload and the service's own status."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from monitor import __version__
from monitor.api.auth import PrincipalDep, permit
from monitor.api.deps import RuntimeDep
from monitor.api.schemas import ReloadOut
from monitor.auth.model import Permission
from monitor.runtime import Runtime

router = APIRouter(tags=["admin"])


@router.post(
    "/-/reload",
    summary="Re-read the configuration file (refused files leave the old one running)",
    dependencies=[permit(Permission.RELOAD)],
)
def reload(runtime: RuntimeDep, principal: PrincipalDep) -> ReloadOut:
    outcome = runtime.reload(actor=principal.name)
    if outcome.error is not None:
        raise outcome.error
    return ReloadOut(status="reloaded", changed_projects=list(outcome.changed_projects))


def store_size_bytes(runtime: Runtime) -> float:
    engine = runtime.store.engine
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:":
            return 0.0
        return float(sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)))
    with engine.connect() as conn:
        return float(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


@router.get("/api/v1/status", summary="The service's own state: version, store size, source health")
def status(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    statuses = runtime.store.sources.statuses()
    return {
        "version": __version__,
        # where the file lives is the admins' business, not every reader's
        "config": str(runtime.settings.config) if principal.can(Permission.RELOAD) else None,
        "projects": len(runtime.config.projects),
        "sources": {
            "configured": len(runtime.plans),
            "up": sum(1 for s in statuses if s.up),
            "failing": sum(1 for s in statuses if not s.up),
        },
        "store": {
            "dialect": runtime.store.engine.dialect.name,
            "series": runtime.store.samples.count_series(),
            "size_bytes": store_size_bytes(runtime),
        },
    }
