"""What a configuration reload changed, as change-log entries (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from monitor.config.models import MlmonConfig, ProjectConfig


@dataclass(frozen=True, slots=True)
class ConfigChange:
    action: str
    project: str | None
    target: str
    details: dict[str, Any] = field(default_factory=dict)


def directory(project: ProjectConfig) -> dict[str, Any]:
    """Who a project is and who answers for it: what an audit of a past date replays."""
    return {
        "name": project.display_name,
        "team": project.team,
        "owners": [owner.model_dump(mode="json") for owner in project.owners],
    }


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", by_alias=True) if hasattr(value, "model_dump") else value


def config_changes(old: MlmonConfig, new: MlmonConfig) -> Iterator[ConfigChange]:
    """Projects, rules, budgets and ignores added, removed or changed, one entry each."""
    before = {p.id: p for p in old.projects}
    after = {p.id: p for p in new.projects}
    for pid in sorted(after.keys() - before.keys()):
        yield ConfigChange("project.create", pid, pid, {"directory": {"after": directory(after[pid])}})
    for pid in sorted(before.keys() - after.keys()):
        yield ConfigChange("project.delete", pid, pid, {"directory": {"before": directory(before[pid])}})
    for pid in sorted(after.keys() & before.keys()):
        was, now = before[pid], after[pid]
        if was.spend != now.spend:
            yield ConfigChange("budget.change", pid, pid, {"before": _dump(was.spend), "after": _dump(now.spend)})
        if was.stack != now.stack:
            yield ConfigChange("ignore.change", pid, pid, {"before": _dump(was.stack), "after": _dump(now.stack)})
        other = [
            n for n in type(now).model_fields if n not in ("spend", "stack") and getattr(was, n) != getattr(now, n)
        ]
        if other:
            details: dict[str, Any] = {"fields": other}
            then, later = directory(was), directory(now)
            if then != later:
                details["directory"] = {"before": then, "after": later}
            yield ConfigChange("project.change", pid, pid, details)
    rules_before = {r.name: r for r in old.rules}
    rules_after = {r.name: r for r in new.rules}
    for name in sorted(rules_after.keys() | rules_before.keys()):
        was_rule, now_rule = rules_before.get(name), rules_after.get(name)
        if was_rule == now_rule:
            continue
        action = "rule.create" if was_rule is None else "rule.delete" if now_rule is None else "rule.change"
        scope = (now_rule or was_rule).projects  # type: ignore[union-attr]
        project = scope[0] if scope and len(scope) == 1 else None
        yield ConfigChange(action, project, name, {"before": _dump(was_rule), "after": _dump(now_rule)})
    if old.stack.ignores != new.stack.ignores:
        yield ConfigChange(
            "ignore.change",
            None,
            "stack.ignores",
            {"before": _dump(old.stack)["ignores"], "after": _dump(new.stack)["ignores"]},
        )
    for section in ("receivers", "route", "inhibit_rules", "alerting", "retention", "auth", "quality", "spend"):
        if getattr(old, section) != getattr(new, section):
            yield ConfigChange(f"{section}.change", None, section)
