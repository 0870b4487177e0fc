"""Rules as the engine runs them: config + kind + validated params, compiled once per config load."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from alerts.kinds.base import KindParams, ProjectView, RuleKind, SeriesNeed
from alerts.routing import RouteError, compile_routes
from alerts.state import Timing
from alerts.templates import template_problems
from monitor.config.alerting import RuleConfig
from monitor.config.loader import ExtraCheck, Loc, RawCheck, model_problems
from monitor.config.models import MlmonConfig, ProjectConfig
from monitor.core.matchers import Matcher, matches_all

DEFAULT_ANNOTATIONS = {"description": ""}


@dataclass(frozen=True)
class CompiledRule:
    config: RuleConfig
    kind: RuleKind[Any]
    params: KindParams
    needs: tuple[SeriesNeed, ...]
    timing: Timing
    annotations: Mapping[str, str]
    project_matchers: tuple[Matcher, ...] = ()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def metrics(self) -> frozenset[str]:
        return frozenset(n.selector.metric for n in self.needs if n.selector.metric)

    def applies_to(self, project: ProjectConfig) -> bool:
        if self.config.projects is not None:
            return project.id in self.config.projects
        return matches_all(self.project_matchers, {**project.labels, "project": project.id})


def compile_rule(rule: RuleConfig, kind: RuleKind[Any]) -> CompiledRule:
    params = kind.params.model_validate(rule.params)
    annotations = {"summary": kind.summary, **DEFAULT_ANNOTATIONS, **rule.annotations}
    timing = Timing(rule.for_, rule.keep_firing_for)
    return CompiledRule(rule, kind, params, tuple(kind.needs(params)), timing, annotations, rule.project_matchers)


def compile_rules(config: MlmonConfig, kinds: Mapping[str, RuleKind[Any]]) -> list[CompiledRule]:
    return [compile_rule(rule, kinds[rule.kind]) for rule in config.rules if rule.enabled]


def project_view(project: ProjectConfig) -> ProjectView:
    return ProjectView(
        id=project.id,
        name=project.display_name,
        team=project.team,
        labels=dict(project.labels),
        owners=[o.name for o in project.owners],
        sources=[s.name for s in project.sources],
    )


def alerting_checks(kinds: Mapping[str, RuleKind[Any]]) -> list[ExtraCheck]:
    """Config checks of the alert engine: rule kinds, params and templates (on the raw data, so they
    run even when another part of the file is invalid), then references to projects, sources and
    receivers, and the route timers."""

    def rules(data: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
        items = data.get("rules")
        for index, rule in enumerate(items if isinstance(items, list) else []):
            if not isinstance(rule, dict) or not isinstance(rule.get("kind"), str):
                continue  # the schema check reports it
            at: Loc = ("rules", index)
            name = rule.get("name", f"#{index}")
            kind = kinds.get(rule["kind"])
            if kind is None:
                known = ", ".join(sorted(kinds))
                yield (*at, "kind"), f"rule {name!r}: unknown rule kind {rule['kind']!r}; expected one of: {known}"
                continue
            for loc, why in model_problems(kind.params, rule.get("params") or {}, (*at, "params")):
                yield loc, f"rule {name!r}: {why}"
            annotations = rule.get("annotations")
            for field, text in annotations.items() if isinstance(annotations, dict) else []:
                for problem in template_problems(str(text)):
                    yield (*at, "annotations", field), f"rule {name!r}: {problem}"

    def references(config: MlmonConfig) -> Iterator[tuple[Loc, str]]:
        projects = config.project_ids
        for index, rule in enumerate(config.rules):
            at: Loc = ("rules", index)
            for project_id in rule.projects or []:
                if project_id not in projects:
                    yield (*at, "projects"), f"rule {rule.name!r}: unknown project {project_id!r}"
            if rule.sources is not None:
                scope = [p for p in config.projects if rule.projects is None or p.id in rule.projects]
                declared = {s.name for p in scope for s in p.sources}
                for source in rule.sources:
                    if source not in declared:
                        yield (*at, "sources"), f"rule {rule.name!r}: no project in its scope has a source {source!r}"
        receivers = {r.name for r in config.receivers}
        if config.route.receiver is not None and config.route.receiver not in receivers:
            yield (
                ("route", "receiver"),
                f"route: unknown receiver {config.route.receiver!r}; declare it under receivers",
            )
        for index, child in enumerate(config.route.routes):
            if child.receiver not in receivers:
                yield (
                    ("route", "routes", index, "receiver"),
                    f"route: unknown receiver {child.receiver!r}; declare it under receivers",
                )
        try:
            compile_routes(config.route)
        except RouteError as exc:
            yield tuple(exc.where.replace("[", ".").replace("]", "").split(".")), str(exc)

    return [RawCheck(rules), references]
