"""HTTP routes of the spend family.

GET /api/v1/spend/projects                  every project: budget, spend, forecast, thresholds
GET /api/v1/spend/projects/{id}             one project, with its daily spend per source
GET /api/v1/spend/projects/{id}/tco         TCO and cost per accuracy point / 1,000 predictions
GET /api/v1/spend/sources                   spend sources: state and attribution (unattributed shown)
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from monitor.api.auth import PrincipalDep
from monitor.api.deps import RuntimeDep
from monitor.auth.model import Principal
from monitor.core.errors import NotFound
from monitor.runtime import Runtime
from monitor.spend.report import MAX_DAYS, days_needed, load, tco_report
from monitor.spend.schemas import ProjectDetailOut, ProjectSpendOut, SpendSourceOut, TcoOut
from monitor.spend.views import detail_out, project_out, sources_out, tco_out

router = APIRouter(prefix="/api/v1", tags=["spend"])


def _known(runtime: Runtime, project: str) -> None:
    if runtime.config.project(project) is None:
        raise NotFound(f"unknown project {project!r}")


def _projects(runtime: Runtime, principal: Principal) -> list[ProjectSpendOut]:
    config, now = runtime.config, runtime.clock.now()
    ids = [p.id for p in config.projects if principal.sees(p.id)]
    data = load(runtime.store, config, ids, now, days_needed(config, now))
    return [project_out(data[p], now) for p in ids]


@router.get(
    "/spend/projects", response_model=list[ProjectSpendOut], summary="Budget, spend and forecast of every project"
)
async def spend_projects(runtime: RuntimeDep, principal: PrincipalDep) -> list[ProjectSpendOut]:
    return await run_in_threadpool(_projects, runtime, principal)


def _project(runtime: Runtime, project: str, days: int) -> ProjectDetailOut:
    _known(runtime, project)
    config, now = runtime.config, runtime.clock.now()
    data = load(runtime.store, config, [project], now, max(days, days_needed(config, now)))[project]
    return detail_out(data, now, now.date() - timedelta(days=days), now.date() + timedelta(days=1))


@router.get("/spend/projects/{project}", response_model=ProjectDetailOut, summary="A project's spend in detail")
async def spend_project(
    project: str,
    runtime: RuntimeDep,
    days: int = Query(default=35, ge=1, le=MAX_DAYS, description="daily figures shown"),
) -> ProjectDetailOut:
    return await run_in_threadpool(_project, runtime, project, days)


def _tco(runtime: Runtime, project: str, periods: int | None) -> TcoOut:
    _known(runtime, project)
    count = periods or runtime.config.spend.tco_periods
    return tco_out(tco_report(runtime.store, runtime.config, project, runtime.clock.now(), count))


@router.get(
    "/spend/projects/{project}/tco", response_model=TcoOut, summary="Total cost of ownership and cost per quality"
)
async def spend_tco(
    project: str, runtime: RuntimeDep, periods: int | None = Query(default=None, ge=1, le=36)
) -> TcoOut:
    return await run_in_threadpool(_tco, runtime, project, periods)


def _sources(runtime: Runtime, principal: Principal, days: int) -> list[SpendSourceOut]:
    # A source shows what it attributed to every project: only callers who see its project see it.
    found = sources_out(runtime.store, runtime.config, runtime.clock.now(), days)
    return [source for source in found if principal.sees(source.project)]


@router.get("/spend/sources", response_model=list[SpendSourceOut], summary="Spend sources and what they attributed")
async def spend_sources(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    days: int = Query(default=31, ge=1, le=MAX_DAYS, description="attribution over these days"),
) -> list[SpendSourceOut]:
    return await run_in_threadpool(_sources, runtime, principal, days)
