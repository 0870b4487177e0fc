"""Response models of the API (what `/docs` shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel


class Accepted(BaseModel):
    accepted: int


class LatestPoint(BaseModel):
    timestamp: datetime
    value: float


class SeriesOut(BaseModel):
    project: str
    metric: str
    labels: dict[str, str]
    latest: LatestPoint | None = None


class RangeSeries(BaseModel):
    project: str
    metric: str
    labels: dict[str, str]
    values: list[tuple[float, float]]
    """[unix seconds of the bucket start, aggregated value]"""


class RangeResult(BaseModel):
    query: str
    start: datetime
    end: datetime
    step_seconds: float
    aggregation: str
    series: list[RangeSeries]


class OwnerOut(BaseModel):
    name: str
    email: str | None = None
    slack: str | None = None


class SourceOut(BaseModel):
    name: str
    kind: str
    interval_seconds: float
    enabled: bool
    up: bool | None = None
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0


class ProjectOut(BaseModel):
    id: str
    name: str
    team: str | None
    description: str
    owners: list[OwnerOut]
    labels: dict[str, str]
    sources: list[SourceOut]


class EventOut(BaseModel):
    project: str
    timestamp: datetime
    kind: str
    subject: str
    old: str | None
    new: str | None
    message: str
    source: str | None
    labels: dict[str, str]


class ProjectDetail(ProjectOut):
    series: list[SeriesOut]
    recent_events: list[EventOut]


class ReloadOut(BaseModel):
    status: str
    changed_projects: list[str]


RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a row id")]
"""An id in a URL: larger numbers cannot be a row (and overflow the database's integer)."""
