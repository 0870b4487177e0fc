"""A project's spend as the rules, the API and /metrics see it: read once, for many projects.

`load(store, config, projects, now, days_back)` reads every spend source's days for the projects
in one pass per (source, metric) and returns a `ProjectSpend` per project: its currency, budget
settings, the days of each source, and which sources its budget counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from monitor.config.models import MlmonConfig
from monitor.core.durations import parse_duration
from monitor.core.types import ms_from_datetime
from monitor.spend.budget import BudgetStatus, budget_status, combine
from monitor.spend.config import ForecastConfig, ProjectSpendConfig, SeriesRef
from monitor.spend.ledger import HOUR_MS, SourceDays, SourceState, read_days, source_states
from monitor.spend.periods import Period, PeriodKind, period_at
from monitor.spend.series import UNATTRIBUTED, local_day, zone
from monitor.spend.sources import EFFICIENCY_PREFERENCE, UnknownSource, counted, spend_sources
from monitor.spend.tco import TcoRow, increase, tco_rows
from monitor.store.interface import Aggregation
from monitor.store.store import Store

SPEND_CHANGE = "spend_change"
IDLE_GPU = "idle_gpu"
MAX_DAYS = 400


@dataclass(frozen=True)
class ProjectSpend:
    project: str
    settings: ProjectSpendConfig
    forecast: ForecastConfig
    sources: dict[str, SourceDays]
    counted: list[str]
    """Refs of the sources the budget counts (and the default for the other rules)."""
    efficiency: list[str]
    problems: list[str] = field(default_factory=list)
    unattributed: dict[str, SourceDays] = field(default_factory=dict)
    """GPU time and spend no project claims, of the sources this project owns (its idle GPUs are
    the owner's to hear about)."""

    @property
    def currency(self) -> str:
        return self.settings.currency_code

    def pick(self, refs: Iterable[str]) -> list[SourceDays]:
        return [self.sources[r] for r in refs if r in self.sources]

    def resolve(self, names: Iterable[str] | None, default: list[str]) -> list[str]:
        """Refs of sources named `name` or `project/name` (raising UnknownSource), or `default`."""
        if names is None:
            return default
        known = [days.source for days in self.sources.values()]
        return [s.ref for s in counted(known, list(names))]

    def budget(self, now: datetime) -> BudgetStatus | None:
        if self.settings.budget is None:
            return None
        status = budget_status(self.settings.budget, self.forecast, self.currency, self.pick(self.counted), now)
        if self.problems:
            status.problems[:0] = self.problems
        return status


def days_needed(config: MlmonConfig, now: datetime) -> int:
    """How many days back the rules and budgets of `config` look (at least 35)."""
    days = 35
    for project in config.projects:
        budget = project.spend.budget
        if budget is not None:
            period = period_at(now, zone(budget.timezone), budget.period, budget.reset_day, budget.start_month)
            lookback = config.spend.forecast_for(budget).lookback.days
            days = max(days, (local_day(now, zone(budget.timezone)) - period.first).days + lookback + 2)
    for rule in config.rules:
        if rule.kind in (SPEND_CHANGE, IDLE_GPU):
            for key in ("baseline", "window"):
                try:
                    span = parse_duration(rule.params.get(key, 0))
                except ValueError:
                    continue  # check-config reports it
                days = max(days, math.ceil(span.total_seconds() / 86400) + 3)
    return min(days, MAX_DAYS)


def span(now: datetime, days_back: int) -> tuple[date, date]:
    """The days read: `days_back` days before today, to tomorrow (time zones ahead of UTC)."""
    return (now - timedelta(days=days_back + 1)).date(), (now + timedelta(days=1)).date()


def load(
    store: Store,
    config: MlmonConfig,
    projects: Iterable[str],
    now: datetime,
    days_back: int,
    states: Mapping[str, SourceState] | None = None,
    preloaded: Mapping[str, Mapping[str, SourceDays]] | None = None,
) -> dict[str, ProjectSpend]:
    """The spend of `projects` over the last `days_back` days (and today).

    `preloaded`: project -> source ref -> days already read (the provider's cache)."""
    sources = spend_sources(config)
    by_id = {p.id: p for p in config.projects}
    wanted = [p for p in projects if p in by_id]
    if preloaded is None:
        first, last = span(now, days_back)
        states = states if states is not None else source_states(store, sources)
        preloaded = read_days(
            store,
            sources,
            [*wanted, UNATTRIBUTED],
            first,
            last,
            raw_retention=config.retention.raw,
            now=now,
            states=states,
        )
    nobody = preloaded.get(UNATTRIBUTED, {})
    efficiency = [s.ref for s in counted(sources, None, EFFICIENCY_PREFERENCE)]
    out: dict[str, ProjectSpend] = {}
    for project_id in wanted:
        settings = by_id[project_id].spend
        problems: list[str] = []
        budget = settings.budget
        try:
            chosen = counted(sources, budget.sources if budget else None)
        except UnknownSource as exc:
            problems.append(str(exc))
            chosen = []
        out[project_id] = ProjectSpend(
            project_id,
            settings,
            config.spend.forecast_for(budget) if budget else config.spend.forecast,
            dict(preloaded.get(project_id, {})),
            [s.ref for s in chosen],
            efficiency,
            problems,
            {ref: days for ref, days in nobody.items() if days.source.project == project_id},
        )
    return out


def report_periods(settings: ProjectSpendConfig, now: datetime, count: int) -> list[Period]:
    """The current budget period and the `count - 1` before it (calendar months in UTC without a budget)."""
    budget = settings.budget
    if budget is None:
        current = period_at(now, zone("UTC"), PeriodKind.MONTHLY)
    else:
        current = period_at(now, zone(budget.timezone), budget.period, budget.reset_day, budget.start_month)
    periods = [current]
    while len(periods) < count:
        periods.append(periods[-1].previous())
    return list(reversed(periods))


def _period_value(store: Store, ref: SeriesRef, project: str, period: Period, agg: Aggregation) -> list[float]:
    start, stop = ms_from_datetime(period.start), ms_from_datetime(period.stop) - 1
    found = store.samples.query_range(ref.selector(project), start, stop, stop - start + 1, agg)
    return [p.value for series in found for p in series.points]


def accuracy_by_period(
    store: Store, settings: ProjectSpendConfig, project: str, periods: Iterable[Period]
) -> dict[date, float | None]:
    """Mean accuracy (as a ratio) of each period: the mean of each matching series, averaged."""
    out: dict[date, float | None] = {}
    ref = settings.accuracy
    for period in periods:
        if ref is None:
            out[period.first] = None
            continue
        means = _period_value(store, ref, project, period, "avg")
        scale = 100.0 if ref.unit == "percent" else 1.0
        out[period.first] = math.fsum(means) / len(means) / scale if means else None
    return out


def predictions_by_period(
    store: Store, settings: ProjectSpendConfig, project: str, periods: Iterable[Period]
) -> dict[date, float | None]:
    """Predictions served in each period, summed over the matching series."""
    out: dict[date, float | None] = {}
    ref = settings.predictions
    for period in periods:
        if ref is None:
            out[period.first] = None
            continue
        if ref.aggregation == "sum":
            sums = _period_value(store, ref, project, period, "sum")
            out[period.first] = math.fsum(sums) if sums else None
            continue
        start, stop = ms_from_datetime(period.start), ms_from_datetime(period.stop) - 1
        found = store.samples.query_range(ref.selector(project), start, stop, HOUR_MS, "last")
        totals = [increase([p.value for p in series.points]) for series in found if series.points]
        out[period.first] = math.fsum(totals) if totals else None
    return out


@dataclass(frozen=True)
class TcoReport:
    project: str
    currency: str
    fixed_monthly: float
    counted: list[str]
    rows: list[TcoRow]
    problems: list[str]


def tco_report(store: Store, config: MlmonConfig, project_id: str, now: datetime, count: int) -> TcoReport:
    """TCO and cost per quality for the last `count` periods (limited to what the store keeps)."""
    project = config.project(project_id)
    assert project is not None
    settings = project.spend
    periods = report_periods(settings, now, count)
    days_back = min(MAX_DAYS, (now.date() - periods[0].first).days + 2)
    periods = [p for p in periods if (now.date() - p.first).days <= days_back]
    data = load(store, config, [project_id], now, days_back)[project_id]
    budget = settings.budget
    cost = budget.cost if budget else "billed"
    sources = data.pick(data.counted)
    total = combine(sources, data.currency, cost, "all")
    gpu = combine(sources, data.currency, cost, "gpu")
    rows = tco_rows(
        periods,
        total.daily,
        gpu.daily,
        settings.fixed_monthly,
        now,
        accuracy_by_period(store, settings, project_id, periods),
        predictions_by_period(store, settings, project_id, periods),
    )
    # a period that ends before the first day with data has no spend to show, not a spend of 0.00
    first = min(total.daily) if total.daily else None
    rows = [r for r in rows if first is not None and r.period.last >= first]
    return TcoReport(
        project_id, data.currency, settings.fixed_monthly, data.counted, rows, data.problems + total.problems
    )


def current_tco(store: Store, data: ProjectSpend, now: datetime) -> TcoRow:
    """The current period's TCO row of already-loaded spend (for /metrics)."""
    settings = data.settings
    period = report_periods(settings, now, 1)[0]
    cost = settings.budget.cost if settings.budget else "billed"
    sources = data.pick(data.counted)
    total = combine(sources, data.currency, cost, "all", period.days)
    gpu = combine(sources, data.currency, cost, "gpu", period.days)
    return tco_rows(
        [period],
        total.daily,
        gpu.daily,
        settings.fixed_monthly,
        now,
        accuracy_by_period(store, settings, data.project, [period]),
        predictions_by_period(store, settings, data.project, [period]),
    )[0]
