"""From what the stack family holds (an inventory, its findings, the advisory index) to the plan's inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Protocol

from monitor.stack.advisories.index import AdvisoryIndex
from monitor.stack.inventory.model import Inventory
from monitor.stack.plan.build import BuildTarget
from monitor.stack.plan.builder import build_plan
from monitor.stack.plan.model import Exposure, IndexLookup, Plan
from monitor.stack.versions import local_label


class _FindingLike(Protocol):
    @property
    def package(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def rating(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def fix_versions(self) -> tuple[str, ...]: ...
    @property
    def ignored(self) -> bool: ...


def exposures(findings: Iterable[_FindingLike]) -> dict[str, list[Exposure]]:
    """Open (not ignored) findings by package."""
    out: dict[str, list[Exposure]] = {}
    for f in findings:
        if not f.ignored:
            out.setdefault(f.package, []).append(Exposure(f.key, f.rating, f.state, tuple(f.fix_versions)))
    return out


def installed(inventory: Inventory) -> dict[str, tuple[str, ...]]:
    return {name: inventory.versions(name) for name in inventory.names()}


def variant_indexes(inventory: Inventory) -> dict[str, str]:
    """Indexes a lock file records for packages with a local label (torch `+cu121` from a variant
    index): those versions exist only there. Others are read from the configured index."""
    out: dict[str, str] = {}
    for pkg in inventory.packages:
        if pkg.index and pkg.index.startswith(("http://", "https://")) and local_label(pkg.version):
            out.setdefault(pkg.name, pkg.index.rstrip("/"))
    return out


def build_target(inventory: Inventory, sys_platform: str | None = None, machine: str | None = None) -> BuildTarget:
    python = inventory.python_version
    if python:
        python = ".".join(python.split(".")[:2])
    return BuildTarget(python, sys_platform, machine)


def matcher(index: AdvisoryIndex) -> Callable[[str, str], frozenset[str]]:
    def open_at(package: str, version: str) -> frozenset[str]:
        return frozenset(m.key for m in index.match(package, version))

    return open_at


def plan_for(
    inventory: Inventory,
    findings: Iterable[_FindingLike],
    index: AdvisoryIndex,
    lookup: IndexLookup,
    *,
    index_url: str | None,
    now: datetime | None,
    platform: Mapping[str, str] | None = None,
) -> Plan:
    platform = platform or {}
    return build_plan(
        installed(inventory),
        exposures(findings),
        matcher(index),
        lookup,
        build_target(inventory, platform.get("sys_platform"), platform.get("platform_machine")),
        index_url=index_url,
        index_urls=variant_indexes(inventory),
        now=now,
    )
