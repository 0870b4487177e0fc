"""Series listing and range queries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from monitor.api.auth import PrincipalDep
from monitor.api.deps import RuntimeDep, parse_step, parse_time
from monitor.api.schemas import LatestPoint, RangeResult, RangeSeries, SeriesOut
from monitor.core.errors import InvalidInput, Issue
from monitor.core.matchers import Selector, parse_selector
from monitor.core.types import datetime_from_ms, ms_from_datetime
from monitor.store.interface import Aggregation

router = APIRouter(prefix="/api/v1", tags=["series"])


def _selector(text: str, name: str) -> Selector:
    try:
        return parse_selector(text)
    except ValueError as exc:
        raise InvalidInput([Issue(name, str(exc), field=name)], f"invalid {name}") from None


@router.get("/series", summary="Series matching a selector, with their latest sample", response_model=list[SeriesOut])
def list_series(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    match: Annotated[str | None, Query(description='selector, e.g. accuracy{model=~"churn.*"}')] = None,
    project: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[SeriesOut]:
    selector = _selector(match, "match") if match else None
    rows = [r for r in runtime.store.samples.find_series(selector, project) if principal.sees(r.key.project)][:limit]
    out = []
    for row in rows:
        latest = runtime.store.samples.latest(row.key)
        out.append(
            SeriesOut(
                project=row.key.project,
                metric=row.key.metric,
                labels=row.key.label_dict(),
                latest=LatestPoint(timestamp=datetime_from_ms(latest.ts_ms), value=latest.value) if latest else None,
            )
        )
    return out


@router.get(
    "/query_range",
    summary="Points per step bucket [t, t+step), aggregated in the database",
    response_model=RangeResult,
)
def query_range(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    query: Annotated[str, Query(description='series selector, e.g. accuracy{project="churn"}')],
    start: Annotated[str, Query(description="RFC 3339 or Unix seconds")],
    end: Annotated[str, Query(description="RFC 3339 or Unix seconds")],
    step: Annotated[str, Query(description='bucket width: "1h", "5m" or seconds')],
    agg: Aggregation = "avg",
) -> RangeResult:
    selector = _selector(query, "query")
    start_at, end_at = parse_time(start, "start"), parse_time(end, "end")
    step_ms = parse_step(step)
    found = runtime.store.samples.query_range(
        selector, ms_from_datetime(start_at), ms_from_datetime(end_at), step_ms, agg
    )
    return RangeResult(
        query=query,
        start=start_at,
        end=end_at,
        step_seconds=step_ms / 1000,
        aggregation=agg,
        series=[
            RangeSeries(
                project=s.key.project,
                metric=s.key.metric,
                labels=s.key.label_dict(),
                values=[(p.ts_ms / 1000, p.value) for p in s.points],
            )
            for s in found
            if principal.sees(s.key.project)
        ],
    )
