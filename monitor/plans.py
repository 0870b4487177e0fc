"""Source plans: each configured source bound to a collector built from its validated params."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collectors.base import Collector, SourceKind
from monitor.config.models import MlmonConfig, SourceConfig


@dataclass(frozen=True)
class SourcePlan:
    project: str
    config: SourceConfig
    collector: Collector

    @property
    def source(self) -> str:
        return self.config.name

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def id(self) -> str:
        return f"{self.project}/{self.config.name}"

    @property
    def interval_seconds(self) -> float:
        return self.config.interval.total_seconds()

    @property
    def timeout_seconds(self) -> float:
        return self.config.timeout.total_seconds()


def build_plans(config: MlmonConfig, registry: Mapping[str, SourceKind[Any]]) -> list[SourcePlan]:
    """Plans for every enabled source (the config has been checked, so kinds and params are valid)."""
    return [
        SourcePlan(project.id, source, registry[source.kind].create(source.params))
        for project in config.projects
        for source in project.sources
        if source.enabled
    ]
