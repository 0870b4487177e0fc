"""Project settings managed through the API (budgets, rules, ignores), laid over the YAML file.

The YAML file stays the source of truth for everything else; an override adds to it or, for a
budget, replaces the file's budget of that project. The merged document is validated exactly as
a file would be, so an override can never make the configuration invalid unnoticed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

OverrideKind = Literal["budget", "rule", "ignore"]
KINDS: tuple[OverrideKind, ...] = ("budget", "rule", "ignore")


@dataclass(frozen=True, slots=True)
class Override:
    project: str
    kind: OverrideKind
    name: str
    body: dict[str, Any]
    created_by: str = ""
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def apply_overrides(data: dict[str, Any], overrides: Sequence[Override]) -> dict[str, Any]:
    """The YAML data with the overrides laid over it (the input is left untouched)."""
    if not overrides:
        return data
    merged = copy.deepcopy(data)
    projects = {p.get("id"): p for p in merged.get("projects") or [] if isinstance(p, dict)}
    for override in overrides:
        project = projects.get(override.project)
        if project is None:
            continue  # the project left the file; its overrides wait, unused, until it returns
        if override.kind == "budget":
            spend = project.setdefault("spend", {}) or {}
            project["spend"] = {**spend, "budget": override.body}
        elif override.kind == "ignore":
            stack = project.setdefault("stack", {}) or {}
            project["stack"] = {**stack, "ignores": [*(stack.get("ignores") or []), override.body]}
        else:
            merged["rules"] = [*(merged.get("rules") or []), {**override.body, "projects": [override.project]}]
    return merged
