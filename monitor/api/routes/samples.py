"""Ingest: pushed samples and events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter

from monitor.api.auth import PrincipalDep, check_project, deny_message
from monitor.api.deps import RuntimeDep
from monitor.api.schemas import Accepted
from monitor.auth.model import Permission, Principal
from monitor.auth.tokens import Forbidden
from monitor.core.types import ms_from_datetime
from monitor.ingest import BatchIn, EventsIn, parse_events, parse_samples
from monitor.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["ingest"])

_SAMPLES_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TypeAdapter(BatchIn).json_schema()}},
    }
}
_EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TypeAdapter(EventsIn).json_schema()}},
    }
}


def _may_push(principal: Principal, projects: set[str]) -> None:
    if principal.projects or not principal.can(Permission.PUSH):
        for project in sorted(projects):
            check_project(principal, Permission.PUSH, project)


def _ingest(runtime: Runtime, principal: Principal, body: bytes) -> int:
    if not principal.can(Permission.PUSH) and not principal.projects:
        raise Forbidden(deny_message(principal, Permission.PUSH))
    try:
        samples = parse_samples(body, runtime.config.project_ids, ms_from_datetime(runtime.clock.now()))
    except Exception:
        runtime.telemetry.batches_rejected.labels("invalid").inc()
        raise
    _may_push(principal, {s.series.project for s in samples})
    written = runtime.store.samples.append(samples)
    runtime.telemetry.samples_ingested.inc(len(samples))
    if runtime.ingest_listeners:  # the set costs ~1.5 ms per 5,000 samples; skip it when nobody listens
        runtime.ingested({s.series for s in samples})
    return written


@router.post(
    "/samples",
    summary="Push a batch of up to 10,000 samples (all or nothing)",
    response_model=Accepted,
    openapi_extra=_SAMPLES_BODY,
    responses={413: {"description": "batch over the limit"}, 422: {"description": "invalid items, named"}},
)
async def push_samples(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Accepted:
    body = await request.body()
    return Accepted(accepted=await run_in_threadpool(_ingest, runtime, principal, body))


def _ingest_events(runtime: Runtime, principal: Principal, body: bytes) -> int:
    if not principal.can(Permission.PUSH) and not principal.projects:
        raise Forbidden(deny_message(principal, Permission.PUSH))
    events = parse_events(body, runtime.config.project_ids, ms_from_datetime(runtime.clock.now()))
    _may_push(principal, {e.project for e in events})
    return runtime.store.events.add(events)


@router.post("/events", summary="Record events, e.g. a deployment", response_model=Accepted, openapi_extra=_EVENTS_BODY)
async def push_events(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Accepted:
    body = await request.body()
    return Accepted(accepted=await run_in_threadpool(_ingest_events, runtime, principal, body))
