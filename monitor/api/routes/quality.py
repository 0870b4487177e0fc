"""HTTP routes of the quality family.

| method and path | |
|---|---|
| `POST /api/v1/quality/distributions` | push a reference or a current batch of a dataset |
| `GET /api/v1/quality/references` | active (or all) references, with a summary of each |
| `GET /api/v1/quality/references/{id}` | one reference, with its stored profile |
| `GET /api/v1/quality/comparisons` | comparisons of current batches with their references, newest first |
| `GET /api/v1/quality/series?match=` | quality series with their newest value, n, baseline and how it was made |
| `GET /api/v1/quality/models?project=` | delivery pace of each registered model of a project |
"""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Engine

from monitor.api.auth import PrincipalDep, check_project
from monitor.api.deps import RuntimeDep, parse_time
from monitor.api.schemas import RowId
from monitor.auth.model import Permission, Principal
from monitor.core.errors import InvalidInput, Issue, NotFound, TooLarge
from monitor.core.matchers import parse_selector
from monitor.core.types import datetime_from_ms, ms_from_datetime
from monitor.quality.columnar import MEDIA_TYPES, media_type, parse_meta, read_table, table_columns
from monitor.quality.distributions import (
    MAX_BODY_BYTES,
    DistributionPush,
    DistributionStore,
    PushResult,
    Reference,
    ReferenceCache,
    check_project_and_size,
    ingest,
    ingest_columns,
    parse_push,
)
from monitor.quality.drift import profile_from_json
from monitor.quality.views import model_pace, series_with_baselines
from monitor.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["quality"])

MAX_TABLE_BODY_BYTES = 512 * 1024 * 1024
"""Arrow and Parquet bodies are compact (8 bytes a number): 512 MiB is about 60 million values."""

_CACHES: weakref.WeakKeyDictionary[Engine, ReferenceCache] = weakref.WeakKeyDictionary()


def reference_cache(engine: Engine) -> ReferenceCache:
    """The decoded-reference cache of one database (ids are only unique within a database)."""
    cache = _CACHES.get(engine)
    if cache is None:
        cache = _CACHES[engine] = ReferenceCache()
    return cache


class PushOut(BaseModel):
    role: str
    project: str
    dataset: str
    timestamp: datetime
    columns: dict[str, dict[str, Any]]


class ReferenceOut(BaseModel):
    id: int
    project: str
    dataset: str
    labels: dict[str, str]
    column: str
    kind: str
    n: int
    note: str
    active: bool
    created_at: datetime
    summary: dict[str, Any]
    profile: dict[str, Any] | None = None


class ComparisonOut(BaseModel):
    id: int
    project: str
    dataset: str
    labels: dict[str, str]
    column: str
    timestamp: datetime
    reference_id: int
    n: int
    summary: dict[str, Any]
    statistics: dict[str, float]


class BaselineOut(BaseModel):
    value: float
    at: str
    n: float | None
    how: dict[str, Any]


class QualitySeriesOut(BaseModel):
    project: str
    metric: str
    labels: dict[str, str]
    latest: tuple[str, float] | None
    examples: float | None
    baseline: BaselineOut | None
    drop: float | None


_PUSH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": TypeAdapter(DistributionPush).json_schema()},
            "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.apache.arrow.file": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _push(runtime: Runtime, principal: Principal, body: bytes) -> PushOut:
    config = runtime.config
    settings = config.quality.distributions
    push = parse_push(body, config.project_ids, settings.max_columns)
    check_project(principal, Permission.PUSH, push.project)
    project = config.project(push.project)
    bins = push.bins or (project.quality.distribution_bins if project else None) or settings.bins
    result = ingest(
        runtime.store,
        reference_cache(runtime.store.engine),
        push,
        runtime.clock.now(),
        bins,
        settings.max_values_per_column,
        keep=config.retention.hourly,
    )
    return _push_out(runtime, result)


def _push_out(runtime: Runtime, result: PushResult) -> PushOut:
    if result.keys:
        runtime.ingested(set(result.keys))
    return PushOut(
        role=result.role,
        project=result.project,
        dataset=result.dataset,
        timestamp=datetime_from_ms(result.ts_ms),
        columns=result.columns,
    )


@router.post(
    "/quality/distributions",
    summary="Push a reference or current distribution of a dataset's columns",
    response_model=PushOut,
    openapi_extra=_PUSH_BODY,
    responses={413: {"description": "body or push over the limits"}, 422: {"description": "invalid columns, named"}},
)
async def push_distribution(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> PushOut:
    kind = media_type(request.headers.get("content-type"))
    if kind in MEDIA_TYPES:
        body = await _read_limited(request, MAX_TABLE_BODY_BYTES)
        return await run_in_threadpool(_push_table, runtime, principal, body, kind, dict(request.query_params))
    body = await _read_limited(request, MAX_BODY_BYTES)
    return await run_in_threadpool(_push, runtime, principal, body)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, read as it streams in and refused as soon as it passes `limit` (never buffered whole
    beyond it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge([Issue("body", f"body is {declared} bytes; the limit is {limit}")], "body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge([Issue("body", f"body is over the limit of {limit} bytes")], "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _push_table(runtime: Runtime, principal: Principal, body: bytes, kind: str, query: dict[str, str]) -> PushOut:
    config = runtime.config
    settings = config.quality.distributions
    meta, categorical = parse_meta(query)
    table = read_table(body, kind)
    check_project_and_size(meta, table.num_columns, config.project_ids, settings.max_columns)
    check_project(principal, Permission.PUSH, meta.project)
    project = config.project(meta.project)
    bins = meta.bins or (project.quality.distribution_bins if project else None) or settings.bins
    data = table_columns(
        table, meta.role, bins if meta.role == "reference" else None, settings.max_values_per_column, categorical
    )
    result = ingest_columns(
        runtime.store, reference_cache(runtime.store.engine), meta, data, runtime.clock.now(), config.retention.hourly
    )
    return _push_out(runtime, result)


def _reference_out(ref: Reference, with_profile: bool) -> ReferenceOut:
    return ReferenceOut(
        id=ref.id,
        project=ref.project,
        dataset=ref.dataset,
        labels=dict(ref.labels),
        column=ref.column,
        kind=ref.kind,
        n=ref.n,
        note=ref.note,
        active=ref.active,
        created_at=ref.created_at,
        summary=profile_from_json(ref.profile).summary(),
        profile=dict(ref.profile) if with_profile else None,
    )


@router.get("/quality/references", summary="Reference distributions", response_model=list[ReferenceOut])
def list_references(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    project: str | None = None,
    dataset: str | None = None,
    include_inactive: bool = False,
) -> list[ReferenceOut]:
    found = DistributionStore(runtime.store.engine).references(project, dataset, include_inactive)
    return [_reference_out(r, False) for r in found if principal.sees(r.project)]


@router.get("/quality/references/{ref_id}", summary="One reference, with its profile", response_model=ReferenceOut)
def get_reference(runtime: RuntimeDep, principal: PrincipalDep, ref_id: RowId) -> ReferenceOut:
    reference = DistributionStore(runtime.store.engine).reference(ref_id)
    if not principal.sees(reference.project):
        raise NotFound(f"no reference {ref_id}")
    return _reference_out(reference, True)


@router.get(
    "/quality/comparisons",
    summary="Current batches compared with their references, newest first",
    response_model=list[ComparisonOut],
)
def list_comparisons(
    runtime: RuntimeDep,
    project: str,
    dataset: str | None = None,
    column: str | None = None,
    since: Annotated[str | None, Query(description="RFC 3339 or Unix seconds")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[ComparisonOut]:
    _require(runtime, project)
    since_ms = ms_from_datetime(parse_time(since, "since")) if since else None
    found = DistributionStore(runtime.store.engine).comparisons(project, dataset, column, since_ms, limit)
    return [
        ComparisonOut(
            id=c.id,
            project=c.project,
            dataset=c.dataset,
            labels=dict(c.labels),
            column=c.column,
            timestamp=datetime_from_ms(c.ts_ms),
            reference_id=c.reference_id,
            n=c.n,
            summary=dict(c.summary),
            statistics=dict(c.statistics),
        )
        for c in found
    ]


@router.get(
    "/quality/series",
    summary="Quality series with their newest value, n and baseline",
    response_model=list[QualitySeriesOut],
)
def quality_series(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    match: Annotated[str, Query(description='selector, e.g. accuracy{project="churn"}')],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[QualitySeriesOut]:
    try:
        selector = parse_selector(match)
    except ValueError as exc:
        raise InvalidInput([Issue("match", str(exc), field="match")], "invalid match") from None
    out = []
    for s in series_with_baselines(runtime.store, selector, limit):
        if not principal.sees(s.key.project):
            continue
        baseline = None
        if s.baseline is not None:
            baseline = BaselineOut(value=s.baseline.value, at=s.baseline.at, n=s.baseline.n, how=dict(s.baseline.how))
        out.append(
            QualitySeriesOut(
                project=s.key.project,
                metric=s.key.metric,
                labels=s.key.label_dict(),
                latest=s.latest,
                examples=s.examples,
                baseline=baseline,
                drop=s.drop,
            )
        )
    return out


@router.get("/quality/models", summary="Delivery pace of each registered model of a project")
def quality_models(runtime: RuntimeDep, project: str) -> list[dict[str, Any]]:
    _require(runtime, project)
    return model_pace(runtime.store, project)


def _require(runtime: Runtime, project: str) -> None:
    if runtime.config.project(project) is None:
        raise NotFound(f"unknown project {project!r}")
