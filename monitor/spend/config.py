"""Configuration of the spend family: `projects[].spend` and the top-level `spend` section.

projects:
  - id: churn
    spend:
      currency: USD                        # the project's currency (default USD)
      budget:
        amount: 12000
        period: monthly                    # monthly (default) | quarterly | annual
        reset_day: 1                       # the day of the month a period starts (1-28)
        start_month: 1                     # quarterly / annual: the month the year starts
        timezone: UTC                      # period boundaries are local midnights
        sources: [aws-focus]               # spend sources counted (default: see docs/spend.md)
        cost: billed                       # FOCUS cost column: billed | effective
        scope: all                         # all | gpu
        exclude: [purchase]                # FOCUS charges not counted: purchase | credit | adjustment
        thresholds:
          actual: ["50%", "90%", "100%"]   # percent of the budget, or an amount: 5000
          forecast: ["100%"]
        forecast: {lookback: 28d, min_days: 7, confidence: 0.8}
      fixed_costs:                         # monthly amounts added to measured spend (TCO)
        - {name: ML engineers, category: people, monthly: 30000}
      accuracy: {metric: accuracy, match: ['model="churn"'], unit: ratio}
      predictions: {metric: predictions_served, aggregation: sum}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from monitor.config.base import StrictModel
from monitor.config.types import Duration, MetricName
from monitor.core.matchers import Matcher, Selector, parse_matchers
from monitor.spend.periods import PeriodKind
from monitor.spend.series import currency_problem, zone

DEFAULT_CURRENCY = "USD"
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")


@dataclass(frozen=True, slots=True)
class Threshold:
    """A threshold as a fraction of the budget (`90%` -> ratio 0.9) or as an amount."""

    ratio: float | None = None
    amount: float | None = None

    def of(self, budget: float) -> float:
        """The amount this threshold stands for, given the budget amount."""
        return self.amount if self.amount is not None else budget * (self.ratio or 0.0)

    @property
    def label(self) -> str:
        if self.ratio is not None:
            return f"{self.ratio * 100:g}%"
        return f"{self.amount:g}"

    def __str__(self) -> str:
        return self.label


def parse_threshold(value: object) -> Threshold:
    if isinstance(value, Threshold):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a percentage like '90%' or an amount like 5000, got a boolean")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"an amount threshold must be positive, got {value}")
        return Threshold(amount=float(value))
    if isinstance(value, str):
        found = _PERCENT.fullmatch(value)
        if found:
            ratio = float(found.group(1)) / 100
            if ratio <= 0:
                raise ValueError(f"a percentage threshold must be positive, got {value!r}")
            return Threshold(ratio=ratio)
        try:
            return parse_threshold(float(value))
        except ValueError:
            pass
    raise ValueError(f"expected a percentage like '90%' or an amount like 5000, got {value!r}")


ThresholdSpec = Annotated[Threshold, BeforeValidator(parse_threshold), PlainSerializer(str, return_type=str)]


def _check_currency(value: str | None) -> str | None:
    if value is not None:
        problem = currency_problem(value)
        if problem:
            raise ValueError(problem)
    return value


def _check_zone(value: str) -> str:
    zone(value)
    return value


def _whole_days(value: timedelta, what: str) -> timedelta:
    if value < timedelta(days=1) or value % timedelta(days=1):
        raise ValueError(f"{what} must be a whole number of days (1d or more), got {value}")
    return value


Seasonality = Literal["auto", "weekly", "none"]


class ForecastConfig(StrictModel):
    """How the period-end forecast is made (see monitor/spend/forecast.py)."""

    lookback: Duration = Field(default=timedelta(days=28), description="complete days the run rate is taken from")
    min_days: int = Field(default=7, ge=2, le=90, description="no forecast with fewer complete days")
    confidence: float = Field(default=0.8, gt=0.5, lt=1.0, description="of the prediction interval")
    seasonality: Seasonality = Field(
        default="auto",
        description="weekly: one run rate per weekday; auto: weekly when the weekdays differ (ANOVA, 5 %); none: flat",
    )

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, value: timedelta) -> timedelta:
        value = _whole_days(value, "forecast.lookback")
        if value > timedelta(days=90):
            raise ValueError("forecast.lookback is at most 90d")
        return value

    @model_validator(mode="after")
    def _enough(self) -> ForecastConfig:
        if self.min_days > self.lookback.days:
            raise ValueError(f"forecast.min_days ({self.min_days}) exceeds the lookback ({self.lookback.days} days)")
        return self


class Thresholds(StrictModel):
    actual: list[ThresholdSpec] = Field(
        default_factory=lambda: [Threshold(ratio=0.5), Threshold(ratio=0.9), Threshold(ratio=1.0)]
    )
    forecast: list[ThresholdSpec] = Field(default_factory=lambda: [Threshold(ratio=1.0)])

    @field_validator("actual", "forecast")
    @classmethod
    def _distinct(cls, value: list[Threshold]) -> list[Threshold]:
        labels = [t.label for t in value]
        if len(set(labels)) != len(labels):
            raise ValueError(f"thresholds are repeated: {labels}")
        return value


class BudgetConfig(StrictModel):
    """A project's spend budget for each period."""

    amount: float = Field(gt=0)
    currency: str | None = Field(default=None, description="defaults to the project's spend.currency")
    period: PeriodKind = PeriodKind.MONTHLY
    reset_day: int = Field(default=1, ge=1, le=28)
    start_month: int = Field(default=1, ge=1, le=12, description="quarterly / annual periods start in this month")
    timezone: str = "UTC"
    sources: list[str] | None = Field(default=None, description="spend sources counted: name or project/name")
    cost: Literal["billed", "effective"] = "billed"
    scope: Literal["all", "gpu"] = "all"
    exclude: list[Literal["purchase", "credit", "adjustment"]] = Field(
        default_factory=list,
        description="FOCUS charge categories not counted (as cloud budgets can leave out upfront fees and credits); "
        "all are counted by default",
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)
    forecast: ForecastConfig | None = Field(default=None, description="defaults to the top-level spend.forecast")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return _check_currency(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("sources must name at least one spend source (or be left out)")
        return value


class FixedCost(StrictModel):
    """A cost that is not measured: people, licences, storage. A monthly amount."""

    name: str = Field(min_length=1)
    category: str = Field(default="other", pattern=r"^[a-z][a-z0-9_]*$", description="people, licences, storage ...")
    monthly: float = Field(ge=0)
    currency: str | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return _check_currency(value)


class SeriesRef(StrictModel):
    """A series of the project itself, by metric name and label matchers."""

    metric: MetricName
    match: list[str] = Field(default_factory=list)

    @field_validator("match")
    @classmethod
    def _match(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_matchers(text)
        return value

    def selector(self, project: str) -> Selector:
        matchers: list[Matcher] = [Matcher.of("project", "=", project)]
        for text in self.match:
            matchers.extend(parse_matchers(text))
        return Selector(self.metric, tuple(matchers))


class AccuracySeries(SeriesRef):
    unit: Literal["ratio", "percent"] = Field(default="ratio", description="0.87 (ratio) or 87 (percent)")


class PredictionSeries(SeriesRef):
    aggregation: Literal["sum", "increase"] = Field(
        default="sum", description="sum: each sample counts predictions since the last; increase: a running total"
    )


class ProjectSpendConfig(StrictModel):
    """`projects[].spend`."""

    currency: str | None = Field(default=None, description="the project's currency (default USD)")
    budget: BudgetConfig | None = None
    fixed_costs: list[FixedCost] = Field(default_factory=list)
    accuracy: AccuracySeries | None = None
    predictions: PredictionSeries | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return _check_currency(value)

    @model_validator(mode="after")
    def _one_currency(self) -> ProjectSpendConfig:
        stated = {"currency": self.currency}
        if self.budget is not None:
            stated["budget.currency"] = self.budget.currency
        for index, cost in enumerate(self.fixed_costs):
            stated[f"fixed_costs[{index}].currency"] = cost.currency
        given = {where: code for where, code in stated.items() if code is not None}
        if len(set(given.values())) > 1:
            listed = ", ".join(f"{where} {code}" for where, code in given.items())
            raise ValueError(f"a project has one currency; amounts in another are never summed with it: {listed}")
        return self

    @property
    def currency_code(self) -> str:
        """The project's currency: stated anywhere in the section, else USD."""
        for code in (
            self.currency,
            self.budget.currency if self.budget else None,
            *(c.currency for c in self.fixed_costs),
        ):
            if code is not None:
                return code
        return DEFAULT_CURRENCY

    @property
    def fixed_monthly(self) -> float:
        return sum(c.monthly for c in self.fixed_costs)


class SpendConfig(StrictModel):
    """The top-level `spend` section: defaults for every project."""

    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    tco_periods: int = Field(default=6, ge=1, le=36, description="periods the TCO report covers by default")

    def forecast_for(self, budget: BudgetConfig) -> ForecastConfig:
        return budget.forecast or self.forecast
