"""What the project page shows of one project, read from the families' stores and turned into charts.

Quality: the success metric's series and every series with a baseline, over the last
QUALITY_DAYS days (averaged per step in SQL), with the baseline as a step line, the target as a
reference line, the project's events as markers (model version changes apart) and drift markers:
pushed distribution batches whose statistic reached the threshold of the project's
`distribution` rule (Evidently's 0.1 defaults without one), and quality alerts (drop, change,
distribution) at the moment they became active.

Spend: the budget period's burn-up against the budget with the forecast band, the period's spend
by kind (GPU and other usage, purchases, credits, adjustments: whether the budget counts each),
GPU efficiency per day (busy / held GPU-hours of the sources that measure it, saying which busy
time came from a coarser fallback metric) and the TCO report of the spend family. Stack:
inventories, torch staleness and the open findings with their SLA due dates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from markupsafe import Markup

from alerts.store import AlertStore
from monitor.config.models import MlmonConfig, ProjectConfig
from monitor.core.matchers import Matcher, Selector, matches_all
from monitor.core.types import Event, SeriesKey, ms_from_datetime
from monitor.quality.names import BASELINE_SUFFIX, DRIFT_METRIC, MODEL_VERSION
from monitor.spend.budget import BudgetStatus, combine
from monitor.spend.kinds import KindTotal, bases_read, spend_by_kind
from monitor.spend.ledger import SourceDays
from monitor.spend.report import TcoReport, days_needed, load, report_periods, tco_report
from monitor.spend.series import BUSY_METRIC, CHARGE_SCOPES
from monitor.stack.advisories.severity import RANK
from monitor.stack.releases import Staleness
from monitor.stack.store import InventoryRow, StackStore
from monitor.store.store import Store
from monitor.views import charts
from monitor.views.charts import BurnUp, HLine, Line, Marker
from monitor.views.plan_view import PlanView, finding_docs, plan_view

QUALITY_DAYS = 30
EFFICIENCY_DAYS = 30
MAX_QUALITY_CHARTS = 8
MAX_POINTS = 240
QUALITY_RULE_KINDS = ("drop", "change", "distribution")
DRIFT_DEFAULTS = {"wasserstein": 0.1, "psi": 0.1, "jensen_shannon": 0.1}


@dataclass(frozen=True)
class QualityChart:
    key: SeriesKey
    svg: Markup
    latest: float | None
    baseline: float | None


@dataclass(frozen=True)
class SpendKinds:
    """The Spend by kind table: each kind's total over the period to date (kinds.py)."""

    period: str
    currency: str
    bases: list[str]
    """The cost bases in those totals (billed or effective of a bill, allocated, estimated)."""
    rows: list[KindTotal]

    @property
    def has_charges(self) -> bool:
        """Purchases, credits or adjustments: charges that may cover several days."""
        return any(k.scope in CHARGE_SCOPES for k in self.rows)

    @property
    def left_out(self) -> list[str]:
        """The kinds the budget's figure does not count."""
        return [k.label for k in self.rows if k.counted is False]


@dataclass
class ProjectPage:
    project: ProjectConfig
    now: datetime
    quality: list[QualityChart] = field(default_factory=list)
    quality_more: int = 0
    drift_markers: int = 0
    version_markers: int = 0
    budget: BudgetStatus | None = None
    burn_up: Markup | None = None
    efficiency: Markup | None = None
    gpu_hours: float | None = None
    tco: TcoReport | None = None
    tco_rows: list[Any] = field(default_factory=list)
    """The TCO report's rows from the period holding the first day with spend data (none before)."""
    first_spend_day: date | None = None
    spend_refs: list[str] = field(default_factory=list)
    """The spend sources the budget and efficiency come from (other projects' shared ones included)."""
    spend_problems: list[str] = field(default_factory=list)
    spend_kinds: SpendKinds | None = None
    busy_fallbacks: list[str] = field(default_factory=list)
    """Why some busy time on the efficiency chart is coarser: read from a fallback metric."""
    inventories: list[InventoryRow] = field(default_factory=list)
    staleness: list[Staleness] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    plan: PlanView | None = None
    reconciled_at: datetime | None = None
    events: list[Event] = field(default_factory=list)


def _exact(key: SeriesKey) -> Selector:
    matchers = [Matcher.of("project", "=", key.project), *(Matcher.of(k, "=", v) for k, v in key.labels)]
    return Selector(key.metric, tuple(matchers))


def _points(
    store: Store, key: SeriesKey, start_ms: int, end_ms: int, step_ms: int, agg: str
) -> list[tuple[int, float]]:
    for found in store.samples.query_range(_exact(key), start_ms, end_ms, step_ms, agg):  # type: ignore[arg-type]
        if found.key == key:
            return [(p.ts_ms, p.value) for p in found.points]
    return []


def _applies(rule: Any, project: ProjectConfig) -> bool:
    if rule.projects is not None:
        return project.id in rule.projects
    return matches_all(rule.project_matchers, {**project.labels, "project": project.id})


def drift_thresholds(config: MlmonConfig, project: ProjectConfig) -> dict[str, float]:
    """The effect-size thresholds of the first `distribution` rule for the project (or the defaults)."""
    for rule in config.rules:
        if rule.kind == "distribution" and rule.enabled and _applies(rule, project):
            out = {}
            for name, default in DRIFT_DEFAULTS.items():
                value = rule.params.get(name, default)
                if isinstance(value, int | float):
                    out[name] = float(value)
            return out
    return dict(DRIFT_DEFAULTS)


def drift_markers(
    store: Store, config: MlmonConfig, project: ProjectConfig, start_ms: int, end_ms: int
) -> list[Marker]:
    thresholds = drift_thresholds(config, project)
    found: dict[int, list[str]] = {}
    selector = Selector(DRIFT_METRIC, (Matcher.of("project", "=", project.id),))
    for series in store.samples.window(selector, start_ms, end_ms):
        labels = series.key.label_dict()
        limit = thresholds.get(labels.get("statistic", ""))
        if limit is None:
            continue
        where = "/".join(v for v in (labels.get("dataset"), labels.get("column")) if v)
        for point in series.points:
            if point.value >= limit:
                found.setdefault(point.ts_ms, []).append(
                    f"{where} {labels['statistic']} {point.value:.3g} >= {limit:g}"
                )
    markers = [Marker(ts, "drift: " + "; ".join(sorted(texts)[:5]), "drift") for ts, texts in sorted(found.items())]
    kinds = {r.name: r.kind for r in config.rules}
    for alert in AlertStore(store.engine).list(project=project.id, limit=500):
        if kinds.get(alert.rule) in QUALITY_RULE_KINDS and alert.active_at is not None:
            at = ms_from_datetime(alert.active_at)
            if start_ms <= at <= end_ms:
                markers.append(Marker(at, f"alert {alert.rule} ({alert.state.value})", "drift"))
    return markers


def event_markers(events: Sequence[Event]) -> list[Marker]:
    return [Marker(e.ts_ms, e.describe(), "version" if e.kind == MODEL_VERSION else "event") for e in events]


def quality_keys(store: Store, project: ProjectConfig) -> list[SeriesKey]:
    """The success metric's series (matching its labels) first, then every series with a baseline."""
    rows = [r.key for r in store.samples.find_series(project=project.id)]
    have = set(rows)
    target = project.quality.success
    chosen = [k for k in rows if target is not None and k.metric == target.metric and target.selects(dict(k.labels))]
    for key in rows:
        if key.metric.endswith(BASELINE_SUFFIX):
            base = SeriesKey(key.project, key.metric[: -len(BASELINE_SUFFIX)], key.labels)
            if base in have and base not in chosen:
                chosen.append(base)
    return chosen


def quality_charts(store: Store, config: MlmonConfig, project: ProjectConfig, now: datetime, page: ProjectPage) -> None:
    end = ms_from_datetime(now)
    start = end - QUALITY_DAYS * charts.DAY_MS
    step = max(charts.HOUR_MS, (end - start) // MAX_POINTS)
    keys = quality_keys(store, project)
    page.quality_more = max(0, len(keys) - MAX_QUALITY_CHARTS)
    events = store.events.events(project=project.id, since_ms=start, until_ms=end, limit=500)
    markers = event_markers(events) + drift_markers(store, config, project, start, end)
    page.drift_markers = sum(m.kind == "drift" for m in markers)
    page.version_markers = sum(m.kind == "version" for m in markers)
    target = project.quality.success
    for key in keys[:MAX_QUALITY_CHARTS]:
        points = _points(store, key, start, end, step, "avg")
        base_key = SeriesKey(key.project, key.metric + BASELINE_SUFFIX, key.labels)
        baseline = _points(store, base_key, start, end, step, "last")
        lines = [Line(key.metric, points, "series")]
        if not baseline:
            # a baseline set before the window (a constant from the `baseline` source) still holds in it
            before = store.samples.latest_many(_exact(base_key), until_ms=start)
            held = [(start, p.value) for found in before if found.key == base_key for p in found.points[-1:]]
            baseline = held
        if baseline:
            # drawn across the whole chart: from the window's start (the first value known in it)
            # to now, where the last value still holds
            across = [(start, baseline[0][1]), *baseline] if baseline[0][0] > start else baseline
            lines.append(Line(base_key.metric, [*across, (end, baseline[-1][1])], "baseline", step=True))
        hlines = []
        if target is not None and key.metric == target.metric and target.selects(dict(key.labels)):
            hlines.append(HLine(target.target, f"target {target.op} {target.target:g}", "target"))
        labels = ", ".join(f"{k}={v}" for k, v in key.labels)
        title = f"{key.metric}{' (' + labels + ')' if labels else ''}, last {QUALITY_DAYS} days"
        svg = charts.time_chart(title, lines, start_ms=start, end_ms=end, hlines=hlines, markers=markers,
                                kind="quality")  # fmt: skip
        latest = store.samples.latest(key)
        base = store.samples.latest(base_key)
        page.quality.append(QualityChart(key, svg, latest.value if latest else None, base.value if base else None))


def spend_charts(store: Store, config: MlmonConfig, project: ProjectConfig, now: datetime, page: ProjectPage) -> None:
    data = load(store, config, [project.id], now, max(days_needed(config, now), EFFICIENCY_DAYS + 2))[project.id]
    settings = project.spend
    status = data.budget(now)
    page.budget = status
    page.spend_refs = [*data.counted, *data.efficiency]
    page.spend_problems = list(data.problems)
    counted = data.pick(data.counted)
    if status is not None:
        f = status.forecast
        chart = BurnUp(
            status.period.first,
            status.period.last,
            sorted(status.daily.items()),
            status.amount,
            status.currency,
            status.horizon,
            status.spent_complete,
            (f.lower, f.point, f.upper)
            if f.available and f.point is not None and f.lower is not None and f.upper is not None
            else None,  # fmt: skip
            [
                (t.amount, f"{t.label} ({t.basis})")
                for t in status.thresholds
                if t.basis == "actual" and t.amount != status.amount
            ],  # fmt: skip
        )
        page.spend_problems = list(status.problems)
        title = f"Spend in {status.period.label} against the budget of {status.amount:,.0f} {status.currency}"
        period, currency = status.period, status.currency
    else:
        period, currency = report_periods(settings, now, 1)[0], data.currency
        total = combine(counted, currency, "billed", "all", period.days)
        daily = sorted((d, v) for d, v in total.daily.items() if period.contains(d))
        chart = BurnUp(period.first, period.last, daily, None, currency)
        title = f"Spend in {period.label} (no budget)"
    page.burn_up = charts.burn_up(chart, title)
    budget = settings.budget
    basis = budget.cost if budget else "billed"
    kinds = spend_by_kind(counted, currency, basis, period.days, budget)
    page.spend_kinds = SpendKinds(period.label, currency, bases_read(counted, basis), kinds)
    efficiency = data.pick(data.efficiency)
    page.efficiency, page.gpu_hours = efficiency_chart(efficiency, now.date())
    page.busy_fallbacks = busy_fallbacks(efficiency, now.date())
    if config.project(project.id) is not None:
        page.tco = tco_report(store, config, project.id, now, config.spend.tco_periods)
        known = combine(counted, data.currency, "billed", "all").daily
        page.first_spend_day = min(known) if known else None
        page.tco_rows = list(page.tco.rows)


def busy_fallbacks(sources: Sequence[SourceDays], today: date) -> list[str]:
    """One sentence per source and fallback metric that busy time in the efficiency chart's days came from."""
    window = set(efficiency_days(today))
    out = []
    for source in sources:
        for metric, days in sorted(source.busy_from.items()):
            used = len(days & window)
            if used:
                out.append(
                    f"Busy time from {source.source.ref} on {used} of these days is {metric}, the share of time "
                    "any kernel ran: the exporter reports no profiling metric (DCGM_FI_PROF_GR_ENGINE_ACTIVE) for "
                    "those GPUs, so a GPU running one small kernel counts as fully busy. Its readings are "
                    f'labelled {BUSY_METRIC}="{metric}".'
                )
    return out


def efficiency_days(today: date) -> list[date]:
    """The days the efficiency chart draws: the EFFICIENCY_DAYS complete days before today."""
    return [today - timedelta(days=n) for n in range(EFFICIENCY_DAYS, 0, -1)]


def efficiency_chart(sources: Sequence[Any], today: date) -> tuple[Markup | None, float | None]:
    days = efficiency_days(today)
    held = dict.fromkeys(days, 0.0)
    busy = dict.fromkeys(days, 0.0)
    measured: set[date] = set()
    for source in sources:
        for day, seconds in source.gpu_usage.items():
            if day in held:
                held[day] += seconds
                if day in source.gpu_busy:
                    busy[day] += source.gpu_busy[day]
                    measured.add(day)
    if not any(held.values()):
        return None, None
    bars = [(d.strftime("%b %d").replace(" 0", " "), busy[d] / held[d] if d in measured and held[d] else None)
            for d in days]  # fmt: skip
    svg = charts.bar_chart(
        f"GPU efficiency (busy / held GPU-hours) per day, last {EFFICIENCY_DAYS} days",
        bars,
        y_max=1.0,
        y_format=charts.percent,
        kind="efficiency",
    )
    return svg, math.fsum(held.values()) / 3600


def stack_details(store: Store, config: MlmonConfig, project: ProjectConfig, now: datetime, page: ProjectPage) -> None:
    stack = StackStore(store.engine)
    page.inventories = stack.inventory_rows([project.id])
    row = stack.project_rows([project.id]).get(project.id)
    if row is not None:
        page.reconciled_at = row.reconciled_at
        page.staleness = [Staleness.from_doc(d) for d in row.staleness or ()]
    docs = []
    for doc in finding_docs(stack, project.id, (row.reconciled_at, row.digest) if row is not None else None):
        doc.update(config.stack.sla.due_fields(doc, now))
        docs.append(doc)
    docs.sort(
        key=lambda d: (not d["overdue"], d["status"] != "open", -RANK.get(d["severity"], 0), d["package"], d["id"])
    )
    page.findings = docs


def project_page(store: Store, config: MlmonConfig, project: ProjectConfig, now: datetime) -> ProjectPage:
    page = ProjectPage(project, now)
    quality_charts(store, config, project, now, page)
    spend_charts(store, config, project, now, page)
    stack_details(store, config, project, now, page)
    page.plan = plan_view(store.engine, project.id, page.findings)
    page.events = store.events.events(project=project.id, limit=20)
    return page
