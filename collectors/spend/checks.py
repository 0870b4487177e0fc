"""Configuration checks of the spend family that span sections (see monitor.config.loader.ExtraCheck).

- a budget never counts one bill twice: without `sources` it may not default to several dcgm or
  opencost sources (they usually watch the same GPUs), and two counted sources may not read the
  same endpoint or files;
- a budget's sources exist, share its time zone (days are cut at the same midnights) and, when
  they declare one, its currency;
- a budget has something to count, and the store keeps its period's days (retention.hourly);
- spend rules name existing sources;
- attribution rules map to configured projects;
- the focus source can run here (pyarrow installed).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from collectors.spend.focus_params import ColumnRule, FocusParams, TagRule
from collectors.spend.focus_reader import duckdb_missing
from monitor.config.loader import ExtraCheck, Loc
from monitor.config.models import MlmonConfig
from monitor.spend.periods import PeriodKind
from monitor.spend.sources import SpendSource, UnknownSource, counted, find, spend_sources

_LONGEST = {PeriodKind.MONTHLY: 31, PeriodKind.QUARTERLY: 92, PeriodKind.ANNUAL: 366}


def _origin(config: MlmonConfig, source: SpendSource) -> tuple[str, ...]:
    """What a source reads: its kind, URL (or path) and the filter that narrows it."""
    project = next(p for p in config.projects if p.id == source.project)
    params = dict(next(s for s in project.sources if s.name == source.name).params)
    where = str(params.get("url") or params.get("path") or params.get("query") or "").rstrip("/")
    narrowed = str(params.get("selector") or params.get("aggregate") or params.get("exclude") or "")
    return source.kind, where, narrowed


def _double_counting(
    config: MlmonConfig, chosen: list[SpendSource], by_default: bool, at: Loc
) -> Iterator[tuple[Loc, str]]:
    kinds = {s.kind for s in chosen}
    if by_default and len(chosen) > 1 and kinds & {"dcgm", "opencost"}:
        refs = ", ".join(s.ref for s in chosen)
        yield (
            (*at, "sources"),
            (
                f"without sources the budget counts every {chosen[0].kind} source ({refs}); two of them usually "
                "measure the same GPUs, which would count their spend twice: name the ones to count in sources"
            ),
        )
        return
    seen: dict[tuple[str, ...], str] = {}
    for source in chosen:
        origin = _origin(config, source)
        if origin[1] and origin in seen:
            yield (
                (*at, "sources"),
                (
                    f"spend sources {seen[origin]} and {source.ref} read the same {origin[0]} data ({origin[1]}): "
                    "counting both would count that spend twice; keep one"
                ),
            )
        seen.setdefault(origin, source.ref)


def check_budgets(config: MlmonConfig) -> Iterator[tuple[Loc, str]]:
    sources = spend_sources(config)
    for index, project in enumerate(config.projects):
        budget = project.spend.budget
        if budget is None:
            continue
        at: Loc = ("projects", index, "spend", "budget")
        try:
            chosen = counted(sources, budget.sources)
        except UnknownSource as exc:
            yield (*at, "sources"), str(exc)
            continue
        if not chosen:
            yield at, "no spend source (kind focus, opencost or dcgm) is configured: the budget has nothing to count"
        yield from _double_counting(config, chosen, budget.sources is None, at)
        currency = project.spend.currency_code
        for source in chosen:
            if source.timezone != budget.timezone:
                yield (
                    (*at, "timezone"),
                    (
                        f"the budget's periods start at midnight {budget.timezone} but spend source {source.ref} cuts "
                        f"days at midnight {source.timezone}; set the same timezone on both"
                    ),
                )
            if source.currency is not None and source.currency != currency:
                yield (
                    at,
                    (
                        f"spend source {source.ref} reports {source.currency} but the project's currency is "
                        f"{currency}; amounts in two currencies are never summed"
                    ),
                )
        lookback = config.spend.forecast_for(budget).lookback
        needed = timedelta(days=_LONGEST[budget.period]) + lookback
        if needed > config.retention.hourly:
            yield (
                (*at, "period"),
                (
                    f"a {budget.period.value} budget with a {lookback.days}d forecast lookback reads "
                    f"{needed.days} days back, but retention.hourly keeps {config.retention.hourly.days} days; "
                    "raise retention.hourly"
                ),
            )


def check_rules(config: MlmonConfig) -> Iterator[tuple[Loc, str]]:
    sources = spend_sources(config)
    for index, rule in enumerate(config.rules):
        if rule.kind not in ("spend_change", "idle_gpu"):
            continue
        names = rule.params.get("sources")
        if not isinstance(names, list):
            continue
        for position, name in enumerate(names):
            try:
                find(sources, str(name))
            except UnknownSource as exc:
                yield ("rules", index, "params", "sources", position), f"rule {rule.name!r}: {exc}"


def _targets(kind: str, params: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    """(where in params, project id) of every explicit mapping to a project."""
    if kind == "focus":
        try:
            focus = FocusParams.model_validate(params)
        except ValidationError:
            return  # the kind's own check reports it
        for position, rule in enumerate(focus.attribution):
            if isinstance(rule, ColumnRule):
                yield ("attribution", position, "project"), rule.project
            elif isinstance(rule, TagRule):
                for value, project in rule.values.items():
                    yield ("attribution", position, "values", value), project
    else:
        mapping = params.get("projects")
        if isinstance(mapping, dict):
            for value, project in mapping.items():
                yield ("projects", str(value)), str(project)


def check_spend_sources(config: MlmonConfig) -> Iterator[tuple[Loc, str]]:
    ids = config.project_ids
    for pi, project in enumerate(config.projects):
        for si, source in enumerate(project.sources):
            if source.kind not in ("focus", "opencost", "dcgm"):
                continue
            at: Loc = ("projects", pi, "sources", si)
            if source.kind == "focus":
                missing = duckdb_missing()
                if missing:
                    yield (*at, "kind"), missing
            for where, target in _targets(source.kind, dict(source.params)):
                if target not in ids:
                    yield (
                        (*at, "params", *where),
                        (f"maps to project {target!r}, which is not configured; known: {', '.join(sorted(ids))}"),
                    )


CHECKS: list[ExtraCheck] = [check_budgets, check_rules, check_spend_sources]
