"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api.deps import RuntimeDep
from monitor.store import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and its schema is at the newest migration")
def readyz(runtime: RuntimeDep) -> JSONResponse:
    try:
        runtime.store.ping()
    except Exception as exc:
        return JSONResponse({"status": "not ready", "reason": f"database unreachable: {exc}"}, status_code=503)
    current = migrate.current_revision(runtime.store.engine)
    head = migrate.head_revision(runtime.store.engine)
    if current != head:
        reason = f"database schema is at {current or 'no revision'}, expected {head}; run `mlmon migrate`"
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready", "schema": current})


@router.get("/metrics", summary="Prometheus exposition", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    body = await run_in_threadpool(generate_latest, runtime.metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
