"""Response models of the spend API (what `/docs` shows)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class ForecastOut(BaseModel):
    available: bool
    reason: str | None = Field(description="why there is no forecast (e.g. not enough complete days)")
    point: float | None
    lower: float | None
    upper: float | None
    confidence: float = Field(description="of the prediction interval [lower, upper]")
    days_used: int
    daily_mean: float | None
    remaining_days: int
    method: str
    seasonality: str = Field(description="weekly (one run rate per weekday) | none")
    seasonality_p: float | None = Field(description="ANOVA p-value of a weekday effect, when tested")


class ThresholdOut(BaseModel):
    spend: str = Field(description="actual | forecast")
    threshold: str
    amount: float
    value: float | None
    crossed: bool


class PeriodOut(BaseModel):
    kind: str
    label: str
    first_day: date
    last_day: date
    starts_at: datetime
    resets_at: datetime
    timezone: str


class BudgetOut(BaseModel):
    amount: float
    currency: str
    period: PeriodOut
    spent: float
    spent_complete_days: float
    used: float = Field(description="spent / amount")
    data_through: date | None = Field(description="the last day the counted sources have data for (still billing)")
    days_left: float
    by_source: dict[str, float]
    forecast: ForecastOut
    thresholds: list[ThresholdOut]
    problems: list[str] = Field(description="why the budget cannot be evaluated (e.g. a source in another currency)")
    waiting: list[str] = Field(description="counted sources that have stored no spend yet")
    cost: str
    scope: str


class TcoRowOut(BaseModel):
    period: str
    first_day: date
    last_day: date
    partial: bool
    elapsed: float
    spend: float
    gpu_spend: float
    fixed: float
    tco: float
    accuracy: float | None
    accuracy_points: float | None
    predictions: float | None
    spend_per_accuracy_point: float | None
    tco_per_accuracy_point: float | None
    spend_per_1000_predictions: float | None
    tco_per_1000_predictions: float | None


class TcoOut(BaseModel):
    project: str
    currency: str
    fixed_monthly: float
    sources: list[str]
    periods: list[TcoRowOut]
    problems: list[str]


class ProjectSpendOut(BaseModel):
    project: str
    currency: str
    budget: BudgetOut | None
    counted_sources: list[str]
    problems: list[str]


class DailyOut(BaseModel):
    day: date
    source: str
    basis: str
    scope: str
    amount: float


class GpuDayOut(BaseModel):
    day: date
    source: str
    gpu_hours: float
    busy_hours: float | None
    efficiency: float | None


class ProjectDetailOut(ProjectSpendOut):
    daily: list[DailyOut]
    gpu: list[GpuDayOut]


class AttributionOut(BaseModel):
    attributed_project: str
    configured: bool = Field(description="false: a tag value or label that names no configured project")
    amount: float
    rows: float | None


class SpendSourceOut(BaseModel):
    project: str
    name: str
    kind: str
    timezone: str
    currency: str | None
    data_through: date | None
    up: bool | None
    last_success_at: datetime | None
    last_error: str | None
    files: int | None = Field(default=None, description="FOCUS files read (focus sources)")
    attribution: list[AttributionOut] = Field(description="spend per attributed project over the requested days")
    unattributed: float = Field(description="spend no rule attributed (rows without the tag), same days")
