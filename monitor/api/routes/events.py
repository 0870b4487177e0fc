"""Events: version changes, deployments, configuration changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from monitor.api.auth import PrincipalDep
from monitor.api.deps import RuntimeDep, parse_time
from monitor.api.routes.projects import event_out, require_project
from monitor.api.schemas import EventOut
from monitor.core.types import ms_from_datetime

router = APIRouter(prefix="/api/v1", tags=["events"])


@router.get("/events", summary="Events, newest first", response_model=list[EventOut])
def list_events(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    project: str | None = None,
    kind: Annotated[list[str] | None, Query()] = None,
    since: Annotated[str | None, Query(description="RFC 3339 or Unix seconds")] = None,
    until: Annotated[str | None, Query(description="RFC 3339 or Unix seconds")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[EventOut]:
    if project is not None:
        require_project(runtime, project)
    found = runtime.store.events.events(
        project=project,
        since_ms=ms_from_datetime(parse_time(since, "since")) if since else None,
        until_ms=ms_from_datetime(parse_time(until, "until")) if until else None,
        kinds=kind,
        limit=limit,
    )
    return [event_out(e) for e in found if principal.sees(e.project)]
