"""The health scorecard of every project: accurate? affordable? patched? owned?

One `Scorecard` per project, read in bulk: one pass per family for all the projects asked for,
never a query per project, so the overview of a thousand projects stays cheap.

- quality: the newest value of every series of the declared success metrics and of every metric
  that has a `<metric>_baseline` series (one `latest_many` per metric), and those baselines;
- spend: the spend family's provider (`monitor.spend.providers.SpendProvider`, which caches each
  source's days until its data version changes or the day turns), then each project's budget
  status with its forecast and the current period's TCO (pure);
- stack: the stack family's bulk view (`monitor.stack.view.project_views`: open findings with
  their fix dates) and the inventories (torch version and build);
- alerts: the counts of pending and firing alerts per project and severity (one query);
- owners, team, targets and budgets from the configuration.

The verdicts (`Status`) are deliberately simple and documented in docs/ui.md; the cells keep the
numbers so the pages can show why.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from alerts.store import AlertStore
from monitor.config.models import MlmonConfig, ProjectConfig
from monitor.core.matchers import Selector
from monitor.core.types import Labels
from monitor.quality.config import SuccessTarget
from monitor.quality.names import BASELINE_SUFFIX
from monitor.spend.budget import BudgetStatus, combine
from monitor.spend.providers import SpendProvider
from monitor.spend.report import ProjectSpend, report_periods
from monitor.spend.sources import SpendSource, spend_sources
from monitor.spend.tco import tco_rows
from monitor.stack.fleet_counts import SEVERITIES, StackReads, read_stack, torch_builds
from monitor.stack.store import StackStore
from monitor.store.schema import series as series_table
from monitor.store.store import Store
from monitor.views.source_health import FleetSources, State, read_fleet_sources
from monitor.views.verdicts import Status, Verdict, overall, question_verdict

EFFICIENCY_DAYS = 7


FLAGS: dict[str, str] = {
    "no_owner": "no owner",
    "single_owner": "a single owner",
    "no_target": "no success target",
    "no_baseline": "no baseline",
    "no_budget": "no budget",
}
"""The red flags a sponsor asks about, by key (the overview filters on the keys)."""


@dataclass(frozen=True, slots=True)
class QualityCell:
    """Accurate? The declared target against the newest value, and the baseline beside it."""

    target: SuccessTarget | None
    metric: str | None
    """The metric shown: the success metric, else the first one with a baseline."""
    value: float | None
    baseline: float | None
    at_ms: int | None
    series: int
    """Series of the shown metric considered (the worst one decides)."""
    met: bool | None
    has_baseline: bool
    status: Status
    reasons: tuple[str, ...] = ()
    """Why the verdict is not what the data alone says (a failing source), or why there is no data."""

    @property
    def delta(self) -> float | None:
        return None if self.value is None or self.baseline is None else self.value - self.baseline

    @property
    def margin(self) -> float | None:
        """How far past the target the value is, in the good direction (negative: missed)."""
        if self.target is None or self.value is None:
            return None
        gap = self.value - self.target.target
        return gap if self.target.higher_is_better else -gap


@dataclass(frozen=True, slots=True)
class SpendCell:
    """Affordable? The period's spend and forecast against the budget, and the TCO to date."""

    currency: str
    budget: float | None
    period: str | None
    spent: float | None
    forecast: float | None
    lower: float | None
    upper: float | None
    forecast_note: str | None
    tco: float | None
    fixed: float
    efficiency: float | None
    """Busy / held GPU-hours over the last EFFICIENCY_DAYS days, where a source measures it."""
    problems: tuple[str, ...]
    status: Status
    reasons: tuple[str, ...] = ()
    daily: tuple[float | None, ...] = ()
    """Spend per day of the period from its first day to today (None: no data that day)."""

    @property
    def used(self) -> float | None:
        return self.spent / self.budget if self.spent is not None and self.budget else None

    @property
    def forecast_used(self) -> float | None:
        return self.forecast / self.budget if self.forecast is not None and self.budget else None


@dataclass(frozen=True, slots=True)
class StackCell:
    """Patched? The torch build and the open findings (ignored ones apart), overdue ones counted."""

    torch: str | None
    variant: str | None
    open: Mapping[str, int]
    """severity -> open findings that are not ignored."""
    ignored: int
    overdue: int
    reconciled: bool
    status: Status
    reasons: tuple[str, ...] = ()

    @property
    def open_total(self) -> int:
        return sum(self.open.values())

    @property
    def weight(self) -> tuple[int, ...]:
        """Sort key: overdue first, then by the count of each severity, worst first."""
        return (self.overdue, *(self.open.get(s, 0) for s in SEVERITIES))


@dataclass(frozen=True, slots=True)
class AlertCell:
    firing: int
    pending: int
    critical: int
    """Firing alerts labelled severity=critical."""
    status: Status


@dataclass(frozen=True, slots=True)
class Scorecard:
    project: str
    name: str
    team: str | None
    owners: tuple[str, ...]
    quality: QualityCell
    spend: SpendCell
    stack: StackCell
    alerts: AlertCell
    flags: tuple[str, ...] = ()
    worst: Status = Status.NONE
    """The project's health (verdicts.overall: "not known" comes before "fine")."""
    sources_failing: int = 0
    """Sources it depends on (shared ones included) that are failing or stale."""
    sources_never: int = 0

    @property
    def statuses(self) -> dict[str, Status]:
        return {
            "quality": self.quality.status,
            "spend": self.spend.status,
            "stack": self.stack.status,
            "alerts": self.alerts.status,
        }


# --- quality ------------------------------------------------------------------------------------


@dataclass
class QualityReads:
    """Newest points of the quality series of the wanted projects: project -> (metric, labels) -> (ts, value)."""

    latest: dict[str, dict[tuple[str, Labels], tuple[int, float]]] = field(default_factory=dict)

    def of(self, project: str) -> dict[tuple[str, Labels], tuple[int, float]]:
        return self.latest.get(project, {})


def baseline_metrics(engine: Engine) -> list[str]:
    """Names of the stored `<metric>_baseline` metrics (one indexed scan of the series names)."""
    query = (
        select(series_table.c.metric)
        .where(series_table.c.metric.like(f"%{BASELINE_SUFFIX.replace('_', '!_')}", escape="!"))
        .distinct()
    )
    with engine.connect() as conn:
        return sorted(str(m) for (m,) in conn.execute(query))


def read_quality(store: Store, projects: Sequence[ProjectConfig], all_projects: bool) -> QualityReads:
    """One `latest_many` per metric: the success metrics, the baselined metrics and their baselines."""
    wanted = {p.id for p in projects}
    baselines = baseline_metrics(store.engine)
    measured = {m[: -len(BASELINE_SUFFIX)] for m in baselines}
    measured.update(p.quality.success.metric for p in projects if p.quality.success is not None)
    reads = QualityReads()
    scope = None if all_projects else wanted
    for metric in sorted(measured | set(baselines)):
        for found in store.samples.latest_many(Selector(metric), projects=scope):
            key = found.key
            if key.project in wanted and found.points:
                point = found.points[-1]
                reads.latest.setdefault(key.project, {})[(key.metric, key.labels)] = (point.ts_ms, point.value)
    return reads


def quality_cell(project: ProjectConfig, reads: QualityReads) -> QualityCell:
    target = project.quality.success
    latest = reads.of(project.id)
    baselined = sorted(
        (metric[: -len(BASELINE_SUFFIX)], labels) for metric, labels in latest if metric.endswith(BASELINE_SUFFIX)
    )
    if target is not None:
        metric = target.metric
        chosen = [
            (labels, point) for (m, labels), point in latest.items() if m == metric and target.selects(dict(labels))
        ]
    elif baselined:
        metric = baselined[0][0]
        chosen = [
            (labels, latest[(metric, labels)]) for m, labels in baselined if m == metric and (m, labels) in latest
        ]
    else:
        return QualityCell(None, None, None, None, None, 0, None, False, Status.NONE)
    if not chosen:
        return QualityCell(target, metric, None, None, None, 0, None, bool(baselined), Status.NONE)
    if target is not None:
        # the worst series decides
        labels, (ts, value) = min(chosen, key=lambda c: c[1][1] if target.higher_is_better else -c[1][1])
    else:
        labels, (ts, value) = chosen[0]
    base = latest.get((metric + BASELINE_SUFFIX, labels))
    baseline = base[1] if base is not None else None
    met = target.met(value) if target is not None else None
    if met is None:
        status = Status.NONE
    elif not met:
        status = Status.BAD
    elif baseline is not None and target is not None and (value < baseline) == target.higher_is_better:
        status = Status.WARN if value != baseline else Status.OK
    else:
        status = Status.OK
    return QualityCell(target, metric, value, baseline, ts, len(chosen), met, bool(baselined), status)


# --- spend --------------------------------------------------------------------------------------


class _SpendReader:
    """The spend family's provider for one database (it caches each source's days until the
    source's data version changes or the day turns), and the spend cells worked out from them."""

    def __init__(self) -> None:
        self.config: MlmonConfig | None = None
        self.provider = SpendProvider(self._config)
        self.cells: dict[str, tuple[tuple[Any, ...], SpendCell]] = {}
        self.last: tuple[tuple[Any, ...], Mapping[str, ProjectSpend]] | None = None

    def _config(self) -> MlmonConfig:
        assert self.config is not None
        return self.config


_READERS: weakref.WeakKeyDictionary[Engine, _SpendReader] = weakref.WeakKeyDictionary()
_READERS_LOCK = threading.Lock()


def _reader(engine: Engine) -> _SpendReader:
    with _READERS_LOCK:
        reader = _READERS.get(engine)
        if reader is None:
            reader = _READERS[engine] = _SpendReader()
        return reader


def spend_runs(store: Store, sources: Sequence[SpendSource]) -> tuple[tuple[str, Any], ...]:
    """(source ref, (successful runs, last one)) of each spend source: only their projects' states are read."""
    refs = {s.ref for s in sources}
    runs: dict[str, Any] = dict.fromkeys(refs)
    for project in sorted({s.project for s in sources}):
        for status in store.sources.statuses(project):
            ref = f"{status.project}/{status.source}"
            if ref in refs:
                runs[ref] = (status.runs_total - status.failures_total, status.last_success_at)
    return tuple(sorted(runs.items()))


def read_spend(store: Store, config: MlmonConfig, now: datetime) -> Mapping[str, ProjectSpend]:
    """The spend of every configured project through the family's provider. Always all of them:
    the provider caches per set of projects, and one set keeps its cache warm for every page.

    The provider's answer is reused as it stands while the configuration, the day and each spend
    source's last successful run are the same: a source's stored days (and the checkpoint that
    versions them) only change in a successful run."""
    reader = _reader(store.engine)
    key = (config, now.date(), spend_runs(store, spend_sources(config)))
    with _READERS_LOCK:
        last = reader.last
        if last is not None and last[0][0] is config and last[0][1:] == key[1:]:
            return last[1]
        reader.config = config
        data = reader.provider(store, config.project_ids, now)
        reader.last = (key, data)
        return data


def spend_cells(
    store: Store,
    config: MlmonConfig,
    projects: Sequence[ProjectConfig],
    now: datetime,
    data: Mapping[str, ProjectSpend] | None = None,
) -> dict[str, SpendCell]:
    """Each project's spend cell, worked out again only when its spend settings (a reload), the
    days read from its sources (new data, a new day) or the minute change: a budget's forecast
    costs ~0.1 ms a project, and the overview of a thousand projects is asked for often."""
    if data is None:
        data = read_spend(store, config, now)
    reader = _reader(store.engine)
    minute = now.replace(second=0, microsecond=0)
    out: dict[str, SpendCell] = {}
    fresh: dict[str, tuple[tuple[Any, ...], SpendCell]] = {}
    with _READERS_LOCK:
        known = dict(reader.cells)
    for project in projects:
        spend = data.get(project.id)
        key = (project.spend, minute, *(spend.sources.values() if spend is not None else ()))
        cached = known.get(project.id)
        if (
            cached is not None
            and len(cached[0]) == len(key)
            and all(a is b or a == b for a, b in zip(cached[0], key, strict=True))
        ):
            cell = cached[1]
        else:
            cell = spend_cell(spend, project, now)
            fresh[project.id] = (key, cell)  # only what changed: few objects survive a request
        out[project.id] = cell
    if fresh:
        with _READERS_LOCK:
            reader.cells.update(fresh)
    return out


def _efficiency(data: ProjectSpend, today: date) -> float | None:
    first = today - timedelta(days=EFFICIENCY_DAYS)
    held = busy = 0.0
    for source in data.pick(data.efficiency):
        for day, seconds in source.gpu_usage.items():
            if first <= day < today and day in source.gpu_busy:
                held += seconds
                busy += source.gpu_busy[day]
    return busy / held if held > 0 else None


def spend_cell(data: ProjectSpend | None, project: ProjectConfig, now: datetime) -> SpendCell:
    settings = project.spend
    fixed = settings.fixed_monthly
    if data is None:
        return SpendCell(settings.currency_code, None, None, None, None, None, None, None, None, fixed, None, (),
                         Status.NONE)  # fmt: skip
    status: BudgetStatus | None = data.budget(now)
    budget = settings.budget
    efficiency = _efficiency(data, now.date())
    if status is not None and budget is not None and budget.scope == "all":
        # the budget's own daily spend is the TCO's measured part (same period, cost column, scope)
        tco = tco_rows([status.period], status.daily, {}, fixed, now, {}, {})[0].tco if status.by_source else None
    else:
        period = report_periods(settings, now, 1)[0]
        total = combine(data.pick(data.counted), data.currency, budget.cost if budget else "billed", "all", period.days)
        tco = tco_rows([period], total.daily, {}, fixed, now, {}, {})[0].tco if total.by_source else None
        if status is None:
            spent = math.fsum(v for d, v in total.daily.items() if period.contains(d)) if total.by_source else None
            return SpendCell(data.currency, None, period.label, spent, None, None, None, None, tco, fixed, efficiency,
                             tuple(data.problems + total.problems), Status.NONE,
                             daily=_per_day(total.daily, period.first, min(period.last, now.date())))  # fmt: skip
    outlook = status.forecast
    problems = tuple(status.problems)
    if problems or not status.by_source:
        verdict = Status.NONE
    elif status.spent >= status.amount or (outlook.point is not None and outlook.point >= status.amount):
        verdict = Status.BAD
    elif status.used >= 0.9 or (outlook.upper is not None and outlook.upper >= status.amount):
        verdict = Status.WARN
    else:
        verdict = Status.OK
    return SpendCell(
        status.currency,
        status.amount,
        status.period.label,
        status.spent if status.by_source else None,
        outlook.point,
        outlook.lower,
        outlook.upper,
        None if outlook.available else outlook.reason,
        tco,
        fixed,
        efficiency,
        problems,
        verdict,
        daily=_per_day(status.daily, status.period.first, min(status.period.last, now.date())),
    )


def _per_day(daily: Mapping[date, float], first: date, last: date) -> tuple[float | None, ...]:
    """Each day's spend from `first` to `last`; None where no source reported the day (not 0)."""
    days = (last - first).days + 1
    return tuple(daily.get(first + timedelta(days=n)) for n in range(max(days, 0)))


# --- stack --------------------------------------------------------------------------------------


def stack_cell(project: str, reads: StackReads, torch: tuple[str | None, str | None]) -> StackCell:
    if project not in reads.reconciled:
        return StackCell(torch[0], torch[1], {}, 0, 0, False, Status.NONE)
    counts: dict[str, int] = {}
    ignored = late = 0
    for severity, is_ignored, count, overdue in reads.findings.get(project, ()):
        if is_ignored:
            ignored += count
            continue
        rating = severity if severity in SEVERITIES else "unknown"
        counts[rating] = counts.get(rating, 0) + count
        late += overdue
    if late or counts.get("critical"):
        status = Status.BAD
    elif counts:
        status = Status.WARN
    else:
        status = Status.OK
    return StackCell(torch[0], torch[1], counts, ignored, late, True, status)


# --- alerts -------------------------------------------------------------------------------------


def alert_cells(engine: Engine) -> dict[str, AlertCell]:
    tally: dict[str, list[int]] = {}
    for project, state, severity, count in AlertStore(engine).counts():
        if project is None:
            continue
        entry = tally.setdefault(project, [0, 0, 0])
        if state == "firing":
            entry[0] += count
            if severity == "critical":
                entry[2] += count
        elif state == "pending":
            entry[1] += count
    out = {}
    for project, (firing, pending, critical) in tally.items():
        status = Status.BAD if critical else Status.WARN if firing else Status.OK
        out[project] = AlertCell(firing, pending, critical, status)
    return out


NO_ALERTS = AlertCell(0, 0, 0, Status.OK)


# --- the scorecard ------------------------------------------------------------------------------


def red_flags(project: ProjectConfig, quality: QualityCell) -> tuple[str, ...]:
    flags = []
    if not project.owners:
        flags.append("no_owner")
    elif len(project.owners) == 1:
        flags.append("single_owner")
    if project.quality.success is None:
        flags.append("no_target")
    if not quality.has_baseline:
        flags.append("no_baseline")
    if project.spend.budget is None:
        flags.append("no_budget")
    return tuple(flags)


def _missing_quality(project: ProjectConfig, cell: QualityCell) -> str | None:
    target = project.quality.success
    if target is None or cell.value is not None:
        return None
    return f"no value of {target.metric} yet (declared target {target.op} {target.target:g})"


def _missing_spend(project: ProjectConfig, cell: SpendCell) -> str | None:
    if project.spend.budget is None or cell.spent is not None:
        return None
    why = "; ".join(cell.problems) or "no spend source has reported for this project"
    return f"no spend data: {why}"


def _missing_stack(cell: StackCell, has_sources: bool) -> str | None:
    return "not scanned yet" if has_sources and not cell.reconciled else None


def _judged(cell: Any, verdict: Verdict) -> Any:
    """The cell with the verdict (the same object when the verdict changes nothing)."""
    if not verdict.reasons and verdict.status is cell.status:
        return cell
    return replace(cell, status=verdict.status, reasons=verdict.reasons)


def judge(
    project: ProjectConfig,
    quality: QualityCell,
    spend: SpendCell,
    stack: StackCell,
    alerts: AlertCell,
    health: FleetSources,
    spend_refs: Sequence[str],
) -> tuple[QualityCell, SpendCell, StackCell, Status, int, int]:
    """The cells with the verdicts their sources allow (verdicts.question_verdict), the project's
    health, and its failing and never-run sources."""
    pid = project.id
    own = health.families.get(pid, {})
    own_spend = own.get("spend", [])
    quality_sources = own.get("quality", [])
    stack_sources = [*own["stack"], health.advisories] if own.get("stack") else []
    # without a budget the question is not asked: a shared bill failing elsewhere says nothing
    # about this project (its own spend sources still count)
    asked = project.spend.budget is not None
    spend_sources = health.for_question(project, "spend", spend_refs) if asked else own_spend
    q = question_verdict(quality.status, quality_sources, pid, _missing_quality(project, quality))
    s = question_verdict(spend.status, spend_sources, pid, _missing_spend(project, spend))
    k = question_verdict(stack.status, stack_sources, pid, _missing_stack(stack, bool(stack_sources)))
    failing = never = 0
    extra = [h for h in own_spend if h not in spend_sources] if own_spend else []
    for group in (quality_sources, spend_sources, stack_sources, extra):
        for h in group:
            if h.state is not State.OK:
                failing += h.troubled
                never += h.state is State.NEVER
    return (
        _judged(quality, q),
        _judged(spend, s),
        _judged(stack, k),
        overall({"quality": q, "spend": s, "stack": k}, alerts.status),
        failing,
        never,
    )


def build_scorecards(
    store: Store, config: MlmonConfig, now: datetime, projects: Sequence[ProjectConfig]
) -> list[Scorecard]:
    """The scorecards of `projects` (in their order), with one bulk read per family."""
    return scorecards_and_reads(store, config, now, projects)[0]


def scorecards_and_reads(
    store: Store, config: MlmonConfig, now: datetime, projects: Sequence[ProjectConfig]
) -> tuple[list[Scorecard], QualityReads]:
    """`build_scorecards`, and the newest quality points it read (the sparklines' cache keys)."""
    ids = [p.id for p in projects]
    everyone = len(ids) == len(config.projects)
    quality = read_quality(store, projects, everyone)
    data = read_spend(store, config, now)
    spend = spend_cells(store, config, projects, now, data)
    scope = None if everyone else ids
    stack = read_stack(store.engine, scope, config.stack.sla, now)
    builds = torch_builds(store.engine, scope)
    alerts = alert_cells(store.engine)
    health = read_fleet_sources(store, config, now, StackStore(store.engine).feeds())
    cards = []
    for project in projects:
        found = data.get(project.id)
        refs = [*found.counted, *found.efficiency] if found is not None else []
        a = alerts.get(project.id, NO_ALERTS)
        q, s, k, worst, failing, never = judge(
            project,
            quality_cell(project, quality),
            spend[project.id],
            stack_cell(project.id, stack, builds.get(project.id, (None, None))),
            a,
            health,
            refs,
        )
        cards.append(
            Scorecard(
                project=project.id,
                name=project.display_name,
                team=project.team,
                owners=tuple(o.name for o in project.owners),
                quality=q,
                spend=s,
                stack=k,
                alerts=a,
                flags=red_flags(project, q),
                worst=worst,
                sources_failing=failing,
                sources_never=never,
            )
        )
    return cards, quality
