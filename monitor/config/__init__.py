"""Configuration: the YAML file of projects, sources, budgets, rules and notifiers; env settings."""

from __future__ import annotations

from monitor.config.loader import load_config, parse_config
from monitor.config.models import MlmonConfig, OwnerConfig, ProjectConfig, SourceConfig
from monitor.config.settings import Settings

__all__ = [
    "MlmonConfig",
    "OwnerConfig",
    "ProjectConfig",
    "Settings",
    "SourceConfig",
    "load_config",
    "parse_config",
]
