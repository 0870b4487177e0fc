"""Configuration checks of the stack family that span sections (see monitor.config.loader.ExtraCheck)."""

from __future__ import annotations

from collections.abc import Iterator

from monitor.config.loader import ExtraCheck, Loc
from monitor.config.models import MlmonConfig


def _ignores_name_projects(config: MlmonConfig) -> Iterator[tuple[Loc, str]]:
    known = config.project_ids
    for index, ignore in enumerate(config.stack.ignores):
        for project in ignore.projects or []:
            if project not in known:
                yield ("stack", "ignores", index, "projects"), f"unknown project {project!r}"


def _tracked_packages_unique(config: MlmonConfig) -> Iterator[tuple[Loc, str]]:
    seen: set[str] = set()
    for package in config.stack.index.packages:
        if package in seen:
            yield ("stack", "index", "packages"), f"package {package!r} is listed twice"
        seen.add(package)


CHECKS: list[ExtraCheck] = [_ignores_name_projects, _tracked_packages_unique]
