"""The overview's fleet header and per-row sparklines: small server-rendered SVG (charts.py).

- open critical and high findings across the fleet, per day over FINDINGS_DAYS days: one query
  over the findings open at some point of the window, swept day by day (a finding counts from its
  first sighting to its fix; findings ignored now are left out, as on the scorecards);
- spend against budget this period, per currency (amounts in different currencies are never
  added): the budgets with spend data, and how many budgets have none (not counted as zero);
- projects by their success target: below it, met, declared but no value, none declared;
- per row: the success metric's worst series per day over SPARK_DAYS days (its target as a
  reference line), and the spend per day of the budget period (days without data are gaps).

Each part is reused while what it depends on is unchanged: the findings chart while the findings
and the day are the same (stack_version), a row's quality sparkline while the newest points of its
series are the same, its spend sparkline while its spend cell is the same object (the scorecard
caches those until new spend data, a reload or the next minute).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy import Engine

from monitor.config.models import ProjectConfig
from monitor.core.matchers import Selector
from monitor.core.types import ms_from_datetime
from monitor.stack.fleet_counts import FINDINGS_DAYS, open_by_day, stack_version
from monitor.store.store import Store
from monitor.views import charts
from monitor.views.scorecard import QualityReads, Scorecard

SPARK_DAYS = 30
HEADER_WIDTH, HEADER_HEIGHT = 380, 170
_LOCK = threading.Lock()
_FINDINGS: weakref.WeakKeyDictionary[Engine, tuple[tuple[Any, ...], Markup, tuple[int, int]]] = (
    weakref.WeakKeyDictionary()
)
_QUALITY_SPARKS: dict[str, tuple[Any, Markup]] = {}
_SPEND_SPARKS: dict[str, tuple[tuple[float | None, ...], str | None, Markup]] = {}


@dataclass(frozen=True)
class FleetHeader:
    findings: Markup
    findings_now: tuple[int, int]
    """(critical, high) open today."""
    spend: Markup
    spend_lines: list[str]
    """Per currency: `12,340 of 20,000 USD (62%) in 14 budgets`; and the budgets without data."""
    targets: Markup
    target_counts: dict[str, int]
    scanned: int
    """Projects whose stack was ever scanned (the findings chart says nothing of the others)."""
    not_scanned: int


def findings_chart(engine: Engine, now: datetime) -> tuple[Markup, tuple[int, int]]:
    key = (stack_version(engine), now.date())
    with _LOCK:
        cached = _FINDINGS.get(engine)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    days = open_by_day(engine, now)
    start = charts.day_ms(now.date() - timedelta(days=FINDINGS_DAYS - 1))
    end = ms_from_datetime(now)
    if not days:
        return Markup(""), (0, 0)
    points_c = [(charts.day_ms(d) + charts.DAY_MS - 1, float(c)) for d, c, _ in days]
    points_h = [(charts.day_ms(d) + charts.DAY_MS - 1, float(h)) for d, _, h in days]
    points_c[-1] = (end, points_c[-1][1])
    points_h[-1] = (end, points_h[-1][1])
    svg = charts.time_chart(
        f"Open critical and high findings across the fleet, last {FINDINGS_DAYS} days",
        [charts.Line("critical", points_c, "critical", step=True), charts.Line("high", points_h, "high", step=True)],
        start_ms=start,
        end_ms=end,
        y_floor=0.0,
        kind="fleet-findings",
        width=HEADER_WIDTH,
        height=HEADER_HEIGHT,
    )
    now_counts = (days[-1][1], days[-1][2])
    with _LOCK:
        _FINDINGS[engine] = (key, svg, now_counts)
    return svg, now_counts


def spend_summary(cards: Sequence[Scorecard]) -> tuple[Markup, list[str]]:
    """Spend against budget per currency, over the budgets that have spend data this period."""
    spent: dict[str, float] = {}
    budget: dict[str, float] = {}
    forecast: dict[str, float] = {}
    counted: dict[str, int] = {}
    no_data = 0
    for card in cards:
        cell = card.spend
        if cell.budget is None:
            continue
        if cell.spent is None:
            no_data += 1
            continue
        code = cell.currency
        spent[code] = spent.get(code, 0.0) + cell.spent
        budget[code] = budget.get(code, 0.0) + cell.budget
        forecast[code] = forecast.get(code, 0.0) + (cell.forecast if cell.forecast is not None else cell.spent)
        counted[code] = counted.get(code, 0) + 1
    lines = []
    bars: list[tuple[str, float | None]] = []
    for code in sorted(budget):
        share = spent[code] / budget[code] if budget[code] else None
        lines.append(
            f"{spent[code]:,.0f} of {budget[code]:,.0f} {code}"
            + (f" ({share * 100:.0f}%)" if share is not None else "")
            + f" in {counted[code]} budget{'s' if counted[code] != 1 else ''}; forecast {forecast[code]:,.0f} {code}"
        )
        bars += [
            (f"spent {code}", share),
            (f"forecast {code}", forecast[code] / budget[code] if budget[code] else None),
        ]
    if no_data:
        lines.append(f"{no_data} budget{'s' if no_data != 1 else ''} without spend data this period (not counted)")
    svg = charts.bar_chart(
        "Spend and forecast against the budgets this period (share of the budgets, per currency)",
        bars,
        y_max=1.0,
        y_format=charts.percent,
        kind="fleet-spend",
        reference=charts.HLine(1.0, "budget", "budget"),
        width=HEADER_WIDTH,
        height=HEADER_HEIGHT,
    )
    return svg, lines


def target_summary(cards: Sequence[Scorecard]) -> tuple[Markup, dict[str, int]]:
    counts = {"below target": 0, "met": 0, "no value": 0, "no target": 0}
    for card in cards:
        q = card.quality
        if q.target is None:
            counts["no target"] += 1
        elif q.met is None:
            counts["no value"] += 1
        elif q.met:
            counts["met"] += 1
        else:
            counts["below target"] += 1
    svg = charts.bar_chart(
        "Projects by their success target: below it, met, declared without a value, none declared",
        [(k, float(v)) for k, v in counts.items()],
        kind="fleet-targets",
        width=HEADER_WIDTH,
        height=HEADER_HEIGHT,
    )
    return svg, counts


def fleet_header(store: Store, cards: Sequence[Scorecard], now: datetime) -> FleetHeader:
    findings, now_counts = findings_chart(store.engine, now)
    spend, lines = spend_summary(cards)
    targets, counts = target_summary(cards)
    scanned = sum(c.stack.reconciled for c in cards)
    return FleetHeader(findings, now_counts, spend, lines, targets, counts, scanned, len(cards) - scanned)


# --- sparklines ---------------------------------------------------------------------------------


def _days(now: datetime, count: int) -> list[date]:
    return [now.date() - timedelta(days=n) for n in range(count - 1, -1, -1)]


def quality_sparklines(
    store: Store, projects: Sequence[ProjectConfig], reads: QualityReads, now: datetime
) -> dict[str, Markup]:
    """project -> the worst series of its success metric per day over SPARK_DAYS days."""
    out: dict[str, Markup] = {}
    wanted: dict[str, list[ProjectConfig]] = {}
    for project in projects:
        target = project.quality.success
        if target is None:
            continue
        latest = tuple(
            sorted((labels, point) for (m, labels), point in reads.of(project.id).items() if m == target.metric)
        )
        key = (target, now.date(), latest)
        with _LOCK:
            cached = _QUALITY_SPARKS.get(project.id)
        if cached is not None and cached[0] == key:
            out[project.id] = cached[1]
        else:
            wanted.setdefault(target.metric, []).append(project)
    days = _days(now, SPARK_DAYS)
    first = ms_from_datetime(datetime.combine(days[0], datetime.min.time(), tzinfo=now.tzinfo))
    index = {d: n for n, d in enumerate(days)}
    fresh: dict[str, tuple[Any, Markup]] = {}
    for metric, group in wanted.items():
        by_project = {p.id: p for p in group}
        per_day: dict[str, list[list[float]]] = {p.id: [[] for _ in days] for p in group}
        for series in store.samples.window(Selector(metric), first, ms_from_datetime(now), projects=list(by_project)):
            owner = by_project.get(series.key.project)
            if owner is None or owner.quality.success is None:
                continue
            if not owner.quality.success.selects(dict(series.key.labels)):
                continue
            buckets = per_day[owner.id]
            for point in series.points:
                n = index.get(datetime.fromtimestamp(point.ts_ms / 1000, tz=now.tzinfo).date())
                if n is not None:
                    buckets[n].append(point.value)
        for pid, buckets in per_day.items():
            target = by_project[pid].quality.success
            assert target is not None
            worst = min if target.higher_is_better else max
            # the worst series decides each day, as it does the verdict (mean of that day's values)
            values: list[float | None] = [worst(b) if b else None for b in buckets]
            svg = charts.sparkline(
                f"{metric}, worst series per day, last {SPARK_DAYS} days (target {target.op} {target.target:g})",
                values,
                kind="quality",
                reference=target.target,
            )
            latest = tuple(
                sorted((labels, point) for (m, labels), point in reads.of(pid).items() if m == target.metric)
            )
            fresh[pid] = ((target, now.date(), latest), svg)
            out[pid] = svg
    if fresh:
        with _LOCK:
            _QUALITY_SPARKS.update(fresh)
    return out


def spend_sparklines(cards: Sequence[Scorecard]) -> dict[str, Markup]:
    """project -> its spend per day of the budget period (or calendar month) so far."""
    out: dict[str, Markup] = {}
    fresh: dict[str, tuple[tuple[float | None, ...], str | None, Markup]] = {}
    with _LOCK:
        known = dict(_SPEND_SPARKS)
    for card in cards:
        cell = card.spend
        cached = known.get(card.project)
        # the cell's days are the same tuple while the scorecard's spend cache holds (a verdict
        # changed by a source makes a new cell around the same days)
        if cached is not None and cached[0] is cell.daily and cached[1] == cell.period:
            out[card.project] = cached[2]
            continue
        values: list[float | None] = list(cell.daily)
        svg = charts.sparkline(
            f"spend per day in {cell.period or 'this period'} ({cell.currency}; gaps: no data)",
            values,
            kind="spend",
            bars=True,
        )
        fresh[card.project] = (cell.daily, cell.period, svg)
        out[card.project] = svg
    if fresh:
        with _LOCK:
            _SPEND_SPARKS.update(fresh)
    return out


def sparklines(
    store: Store, projects: Mapping[str, ProjectConfig], cards: Sequence[Scorecard], reads: QualityReads, now: datetime
) -> dict[str, tuple[Markup | None, Markup]]:
    """project -> (quality sparkline or None without a target, spend sparkline) of the rows shown."""
    quality = quality_sparklines(store, [projects[c.project] for c in cards], reads, now)
    spend = spend_sparklines(cards)
    return {c.project: (quality.get(c.project), spend[c.project]) for c in cards}
