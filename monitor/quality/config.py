"""Configuration of the quality family: `projects[].quality` and the top-level `quality` section.

quality:
  distributions:
    bins: 10                      # reference bins for PSI / Jensen-Shannon (deciles by default)
    max_values_per_column: 1000000
    max_columns: 500
projects:
  - id: churn
    quality:
      distribution_bins: 20       # this project's references get 20 bins
      success: {metric: accuracy, op: ">=", target: 0.92, labels: {model: churn-classifier}}
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Literal

from pydantic import Field, field_validator

from monitor.config.base import StrictModel
from monitor.config.types import LabelSet, MetricName
from monitor.quality.names import BASELINE_SUFFIX, EXAMPLES_SUFFIX

SuccessOp = Literal[">=", ">", "<=", "<"]
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


class DistributionSettings(StrictModel):
    """How pushed distributions are binned and how large a push may be."""

    bins: int = Field(10, ge=2, le=100, description="bins of a reference (its quantiles)")
    max_values_per_column: int = Field(1_000_000, ge=1, description="raw values accepted per column and push")
    max_columns: int = Field(500, ge=1, description="columns accepted per push")


class SuccessTarget(StrictModel):
    """A project's declared success metric and target: what "accurate enough" means for it.

    Every series of `metric` in the project whose labels include `labels` must meet the target
    (with several, the worst one decides)."""

    metric: MetricName
    op: SuccessOp = Field(default=">=", description="how the newest value compares with the target to succeed")
    target: float
    labels: LabelSet = Field(default_factory=dict, description="the series: labels they must carry (a subset)")

    @field_validator("metric")
    @classmethod
    def _measured(cls, value: str) -> str:
        for suffix in (BASELINE_SUFFIX, EXAMPLES_SUFFIX):
            if value.endswith(suffix):
                raise ValueError(
                    f"the success metric is what the model achieves, not its {suffix[1:]}: "
                    f"use {value[: -len(suffix)]!r}"
                )
        return value

    @field_validator("target")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"the target must be a finite number, got {value}")
        return value

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">=", ">")

    def met(self, value: float) -> bool:
        return _OPS[self.op](value, self.target)

    def selects(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with these labels is one the target is about."""
        return all(labels.get(k) == v for k, v in self.labels.items())

    def __str__(self) -> str:
        chosen = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        series = f"{self.metric}{{{chosen}}}" if chosen else self.metric
        return f"{series} {self.op} {self.target:g}"


class ProjectQualityConfig(StrictModel):
    """`projects[].quality`."""

    distribution_bins: int | None = Field(
        default=None, ge=2, le=100, description="bins of this project's references (default quality.distributions.bins)"
    )
    success: SuccessTarget | None = Field(
        default=None, description="the declared success metric and target, e.g. accuracy >= 0.92"
    )


class QualityConfig(StrictModel):
    """The top-level `quality` section."""

    distributions: DistributionSettings = Field(default_factory=DistributionSettings)
