"""Projects as configured, with the state of their sources, series and recent events."""

from __future__ import annotations

from fastapi import APIRouter

from monitor.api.auth import PrincipalDep
from monitor.api.deps import RuntimeDep
from monitor.api.schemas import (
    EventOut,
    LatestPoint,
    OwnerOut,
    ProjectDetail,
    ProjectOut,
    SeriesOut,
    SourceOut,
)
from monitor.config.models import ProjectConfig
from monitor.core.errors import NotFound
from monitor.core.types import Event, datetime_from_ms
from monitor.runtime import Runtime
from monitor.store.sources import SourceStatus
from monitor.workqueue.waiting import Waiting, waiting_runs

router = APIRouter(prefix="/api/v1", tags=["projects"])


def _waiting(runtime: Runtime) -> dict[str, Waiting]:
    intervals = {plan.id: plan.interval_seconds for plan in runtime.plans}
    return waiting_runs(runtime.store.engine, runtime.clock.now(), intervals)


def _project_out(
    project: ProjectConfig, statuses: dict[tuple[str, str], SourceStatus], waiting: dict[str, Waiting]
) -> ProjectOut:
    sources = []
    for source in project.sources:
        status = statuses.get((project.id, source.name))
        queued = waiting.get(f"{project.id}/{source.name}")
        sources.append(
            SourceOut(
                name=source.name,
                kind=source.kind,
                interval_seconds=source.interval.total_seconds(),
                enabled=source.enabled,
                up=status.up if status else None,
                last_run_at=status.last_run_at if status else None,
                last_success_at=status.last_success_at if status else None,
                last_error=status.last_error if status else None,
                consecutive_failures=status.consecutive_failures if status else 0,
                queue=source.queue,
                last_worker=status.last_worker if status else None,
                waiting=queued.message if queued else None,
            )
        )
    return ProjectOut(
        id=project.id,
        name=project.display_name,
        team=project.team,
        description=project.description,
        owners=[OwnerOut(name=o.name, email=o.email, slack=o.slack) for o in project.owners],
        labels=project.labels,
        sources=sources,
    )


def event_out(event: Event) -> EventOut:
    return EventOut(
        project=event.project,
        timestamp=datetime_from_ms(event.ts_ms),
        kind=event.kind,
        subject=event.subject,
        old=event.old,
        new=event.new,
        message=event.message,
        source=event.source,
        labels=dict(event.labels),
    )


def require_project(runtime: Runtime, project_id: str) -> ProjectConfig:
    project = runtime.config.project(project_id)
    if project is None:
        raise NotFound(
            f"unknown project {project_id!r}; known projects: {', '.join(sorted(runtime.config.project_ids))}"
        )
    return project


@router.get("/projects", summary="Every configured project", response_model=list[ProjectOut])
def list_projects(runtime: RuntimeDep, principal: PrincipalDep) -> list[ProjectOut]:
    statuses = {(s.project, s.source): s for s in runtime.store.sources.statuses()}
    waiting = _waiting(runtime)
    return [_project_out(p, statuses, waiting) for p in runtime.config.projects if principal.sees(p.id)]


@router.get("/projects/{project_id}", summary="One project in detail", response_model=ProjectDetail)
def get_project(project_id: str, runtime: RuntimeDep) -> ProjectDetail:
    project = require_project(runtime, project_id)
    statuses = {(s.project, s.source): s for s in runtime.store.sources.statuses(project.id)}
    base = _project_out(project, statuses, _waiting(runtime))
    series = []
    for row in runtime.store.samples.find_series(project=project.id):
        latest = runtime.store.samples.latest(row.key)
        series.append(
            SeriesOut(
                project=row.key.project,
                metric=row.key.metric,
                labels=row.key.label_dict(),
                latest=LatestPoint(timestamp=datetime_from_ms(latest.ts_ms), value=latest.value) if latest else None,
            )
        )
    events = [event_out(e) for e in runtime.store.events.events(project=project.id, limit=20)]
    return ProjectDetail(**base.model_dump(), series=series, recent_events=events)
