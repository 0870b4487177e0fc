"""The configuration file's schema: projects, their owners and sources, retention.

Later sections (rules, routes, notifiers, budgets) hang off the same root model. Every model
forbids unknown keys, so a misspelt key is an error with its line number, not a silent default.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import EmailStr, Field, field_validator, model_validator

from monitor.config.alerting import AlertingConfig, InhibitConfig, ReceiverConfig, RootRoute, RuleConfig
from monitor.config.base import StrictModel
from monitor.config.types import Duration, LabelSet, ProjectId
from monitor.quality.config import ProjectQualityConfig, QualityConfig
from monitor.spend.config import ProjectSpendConfig, SpendConfig
from monitor.stack.config import ProjectStackConfig, StackConfig

_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
QUEUE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
DEFAULT_QUEUE = "default"
_SLACK = re.compile(r"[@#][\w.\-]{1,80}|[UWC][A-Z0-9]{6,}")


class OwnerConfig(StrictModel):
    """A person (or team alias) who owns a project and receives its alerts."""

    name: str = Field(min_length=1)
    email: EmailStr | None = None
    slack: str | None = Field(default=None, description="@handle, #channel or a Slack member id")

    @field_validator("slack")
    @classmethod
    def _slack(cls, value: str | None) -> str | None:
        if value is not None and not _SLACK.fullmatch(value):
            raise ValueError(f"expected a Slack @handle, #channel or member id (U0123ABCD), got {value!r}")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> OwnerConfig:
        if self.email is None and self.slack is None:
            raise ValueError(f"owner {self.name!r} needs an email or a slack handle to be reachable")
        return self


class SourceConfig(StrictModel):
    """One source of readings for a project. `params` are checked against the kind's own schema."""

    name: str
    kind: str
    interval: Duration = timedelta(seconds=60)
    timeout: Duration = timedelta(seconds=30)
    enabled: bool = True
    queue: str = Field(
        default=DEFAULT_QUEUE,
        description="on PostgreSQL, the job queue its runs go to: only `mlmon worker --queues` naming it runs them",
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str) -> str:
        if not QUEUE_NAME.fullmatch(value):
            raise ValueError(f"expected a queue name matching [a-z0-9][a-z0-9_-]*, got {value!r}")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SOURCE_NAME.fullmatch(value):
            raise ValueError(f"expected a source name matching [a-z0-9][a-z0-9_.-]*, got {value!r}")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("interval must be at least 1s")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("timeout must be positive")
        return value


class ProjectConfig(StrictModel):
    """An ML project mlmon watches."""

    id: ProjectId
    name: str = ""
    team: str | None = None
    description: str = ""
    owners: list[OwnerConfig] = Field(default_factory=list)
    labels: LabelSet = Field(default_factory=dict)
    sources: list[SourceConfig] = Field(default_factory=list)
    stack: ProjectStackConfig = Field(default_factory=ProjectStackConfig)
    quality: ProjectQualityConfig = Field(default_factory=ProjectQualityConfig)
    spend: ProjectSpendConfig = Field(default_factory=ProjectSpendConfig)

    @model_validator(mode="after")
    def _unique_sources(self) -> ProjectConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} is used twice in project {self.id!r}")
            seen.add(source.name)
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.id


class RetentionConfig(StrictModel):
    """How long readings are kept: raw, then hourly aggregates."""

    raw: Duration = timedelta(days=30)
    hourly: Duration = timedelta(days=400)
    source_runs: Duration = timedelta(days=30)

    @model_validator(mode="after")
    def _order(self) -> RetentionConfig:
        if self.hourly < self.raw:
            raise ValueError("retention.hourly must be at least as long as retention.raw")
        if self.raw < timedelta(hours=2):
            raise ValueError("retention.raw must be at least 2h")
        return self


class AuthConfig(StrictModel):
    """Who may do what without a token."""

    anonymous: Literal["viewer", "none"] = Field(
        default="viewer", description="viewer: read without signing in; none: every request needs a token"
    )


class UiConfig(StrictModel):
    """`ui`: what every page says about this installation."""

    banner: str | None = Field(
        default=None, max_length=300, description="a line shown atop every page, e.g. that this is a demo"
    )


class WorkersConfig(StrictModel):
    """What the deployment runs: check-config warns of a source on a queue no worker serves."""

    queues: list[str] = Field(
        default_factory=lambda: [DEFAULT_QUEUE],
        description="the queues some `mlmon worker --queues` serves in this deployment",
    )

    @field_validator("queues")
    @classmethod
    def _queues(cls, value: list[str]) -> list[str]:
        for name in value:
            if not QUEUE_NAME.fullmatch(name):
                raise ValueError(f"expected queue names matching [a-z0-9][a-z0-9_-]*, got {name!r}")
        return value


class MlmonConfig(StrictModel):
    """The root of the configuration file."""

    projects: list[ProjectConfig] = Field(default_factory=list)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    rules: list[RuleConfig] = Field(default_factory=list)
    receivers: list[ReceiverConfig] = Field(default_factory=list)
    route: RootRoute = Field(default_factory=RootRoute)
    inhibit_rules: list[InhibitConfig] = Field(default_factory=list)
    stack: StackConfig = Field(default_factory=StackConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    spend: SpendConfig = Field(default_factory=SpendConfig)
    ui: UiConfig = Field(default_factory=UiConfig)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)

    @model_validator(mode="after")
    def _unique_projects(self) -> MlmonConfig:
        seen: set[str] = set()
        for project in self.projects:
            if project.id in seen:
                raise ValueError(f"project id {project.id!r} is declared twice")
            seen.add(project.id)
        return self

    @model_validator(mode="after")
    def _unique_rules_and_receivers(self) -> MlmonConfig:
        for what, names in (("rule", [r.name for r in self.rules]), ("receiver", [r.name for r in self.receivers])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{what} name {dupes[0]!r} is declared twice")
        return self

    def receiver(self, name: str) -> ReceiverConfig | None:
        return next((r for r in self.receivers if r.name == name), None)

    def project(self, project_id: str) -> ProjectConfig | None:
        for project in self.projects:
            if project.id == project_id:
                return project
        return None

    @property
    def project_ids(self) -> frozenset[str]:
        return frozenset(p.id for p in self.projects)
