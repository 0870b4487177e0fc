"""Configuration of the stack family: `projects[].stack` and the top-level `stack` section.

stack:
  advisories:
    url: https://api.osv.dev        # the live OSV API (querybatch + vulns), or
    path: /srv/osv/PyPI/all.zip     # an offline OSV database (directory of JSON or all.zip),
                                    # or `builtin`: the torch-family snapshot shipped with mlmon
    refresh: 6h
  index:
    url: null                       # default: the index pip is configured to use
    path: null                      # or release histories from a snapshot file (`builtin`)
    packages: [torch]               # release histories for staleness
    refresh: 6h
  sla: {critical: 7d, high: 30d, medium: 90d, low: 180d}
  ignores:
    - {id: CVE-2025-3000, reason: "TorchScript is not used", expires: 2027-01-31}
projects:
  - id: churn
    stack:
      ignores: [...]
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import Field, field_validator, model_validator

from monitor.config.base import StrictModel
from monitor.config.types import Duration, ProjectId
from monitor.stack.sla import Sla
from monitor.stack.versions import canonical_name

DEFAULT_OSV_URL = "https://api.osv.dev"


class IgnoreConfig(StrictModel):
    """An accepted finding: which vulnerability (any of its IDs), why, and until when."""

    id: str = Field(min_length=1, description="any ID of the vulnerability: CVE, GHSA, PYSEC...")
    reason: str = Field(min_length=1)
    expires: date
    packages: list[str] = Field(default_factory=list, description="only these packages (default: any)")
    projects: list[ProjectId] | None = Field(default=None, description="top level only: only these projects")

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an ignore needs a reason")
        return value.strip()

    @field_validator("packages")
    @classmethod
    def _packages(cls, value: list[str]) -> list[str]:
        return [canonical_name(v) for v in value]


class AdvisoriesConfig(StrictModel):
    url: str | None = Field(
        default=None, description=f"OSV API base URL (default {DEFAULT_OSV_URL} unless path is set)"
    )
    path: str | None = Field(
        default=None,
        description="offline OSV database: a directory of JSON files, all.zip, a snapshot file, "
        "or `builtin` (the torch-family snapshot shipped with mlmon)",
    )
    refresh: Duration = timedelta(hours=6)
    timeout: Duration = timedelta(seconds=120)

    @model_validator(mode="after")
    def _one_source(self) -> AdvisoriesConfig:
        if self.url and self.path:
            raise ValueError(
                "set either advisories.url (the OSV API) or advisories.path (an offline database), not both"
            )
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"advisories.url must be an http(s) URL, got {self.url!r}")
        if self.refresh < timedelta(minutes=1):
            raise ValueError("advisories.refresh must be at least 1m")
        return self

    @property
    def api_url(self) -> str | None:
        """The OSV API base URL in use, or None for an offline database."""
        if self.path:
            return None
        return (self.url or DEFAULT_OSV_URL).rstrip("/")


class IndexConfig(StrictModel):
    enabled: bool = True
    url: str | None = Field(default=None, description="default: PIP_INDEX_URL, then pip config, then pip's default")
    path: str | None = Field(
        default=None, description="release histories from a snapshot file instead (`builtin`: the one shipped)"
    )
    packages: list[str] = Field(default_factory=lambda: ["torch"], description="packages whose staleness is tracked")
    refresh: Duration = timedelta(hours=6)
    timeout: Duration = timedelta(seconds=60)

    @field_validator("packages")
    @classmethod
    def _packages(cls, value: list[str]) -> list[str]:
        return [canonical_name(v) for v in value]

    @model_validator(mode="after")
    def _one_index(self) -> IndexConfig:
        if self.url and self.path:
            raise ValueError("set either index.url (a package index) or index.path (a snapshot file), not both")
        return self


class ProjectStackConfig(StrictModel):
    """`projects[].stack`."""

    ignores: list[IgnoreConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_projects(self) -> ProjectStackConfig:
        for ignore in self.ignores:
            if ignore.projects is not None:
                raise ValueError("projects[].stack.ignores apply to their project; `projects` is for stack.ignores")
        return self


class StackConfig(StrictModel):
    """The top-level `stack` section."""

    advisories: AdvisoriesConfig = Field(default_factory=AdvisoriesConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    sla: Sla = Field(default_factory=Sla)
    ignores: list[IgnoreConfig] = Field(default_factory=list)
    sync_interval: Duration = Field(default=timedelta(seconds=60), description="how often findings are reconciled")
