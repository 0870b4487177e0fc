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
"""

from __future__ import annotations

from pydantic import Field

from monitor.config.base import StrictModel


class DistributionSettings(StrictModel):
    """How pushed distributions are binned and how large a push may be."""

    bins: int = Field(10, ge=2, le=100, description="bins of a reference (its quantiles)")
    max_values_per_column: int = Field(1_000_000, ge=1, description="raw values accepted per column and push")
    max_columns: int = Field(500, ge=1, description="columns accepted per push")


class ProjectQualityConfig(StrictModel):
    """`projects[].quality`."""

    distribution_bins: int | None = Field(
        default=None, ge=2, le=100, description="bins of this project's references (default quality.distributions.bins)"
    )


class QualityConfig(StrictModel):
    """The top-level `quality` section."""

    distributions: DistributionSettings = Field(default_factory=DistributionSettings)
