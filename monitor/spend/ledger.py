"""Read the daily spend of projects back from the store, per spend source.

Daily samples younger than `retention.raw` are raw; older days survive as hourly aggregates
(`last` of the hour). Raw points are read first and win; aggregates only fill days that have no
raw point left, so re-reading an old file (a new raw sample beside an old aggregate) takes the
new value.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from monitor.core.matchers import Matcher, Selector
from monitor.core.types import ms_from_datetime
from monitor.spend.series import (
    ATTRIBUTED,
    BASIS,
    BUSY_METRIC,
    GPU_BUSY,
    GPU_USAGE,
    ROWS,
    SCOPE,
    SOURCE,
    day_of_ms,
    day_start,
    spend_metric,
    zone,
)
from monitor.spend.sources import SpendSource
from monitor.store.interface import SeriesPoints
from monitor.store.store import Store

HOUR_MS = 3_600_000
Daily = dict[date, float]


@dataclass
class SourceDays:
    """One source's daily figures for one project."""

    source: SpendSource
    currency: str | None
    horizon: date | None
    """The last day the source has data for (that day is usually still being billed)."""
    spend: dict[tuple[str, str], Daily] = field(default_factory=lambda: defaultdict(dict))
    """(basis, scope) -> day -> amount."""
    gpu_usage: Daily = field(default_factory=dict)
    gpu_busy: Daily = field(default_factory=dict)
    busy_from: dict[str, set[date]] = field(default_factory=dict)
    """Fallback busy metric (DCGM_FI_DEV_GPU_UTIL) -> the days some busy time was read from it."""
    rows: Daily = field(default_factory=dict)

    def basis_for(self, basis: str | None) -> str | None:
        """The basis `amounts` reads for `basis`: itself, or the source's only one (OpenCost's
        allocated, DCGM's estimated) when it has not that one."""
        bases = {b for b, _ in self.spend}
        return basis if basis in bases else (sorted(bases)[0] if len(bases) == 1 else basis)

    def amounts(self, basis: str | None, scope: str, exclude: Collection[str] = ()) -> Daily:
        """Daily spend of one basis (None: the source's own) and scope (`all` or `gpu`), leaving
        out the charge scopes in `exclude` (purchase, credit, adjustment)."""
        out: Daily = defaultdict(float)
        chosen = self.basis_for(basis)
        for (b, s), per_day in self.spend.items():
            if b == chosen and (scope == "all" or s == scope) and s not in exclude:
                for day, value in per_day.items():
                    out[day] += value
        return dict(out)


@dataclass(frozen=True, slots=True)
class SourceState:
    currency: str | None
    horizon: date | None
    version: str | None


def source_states(store: Store, sources: Iterable[SpendSource]) -> dict[str, SourceState]:
    """Currency, data horizon and data version of each source, from its checkpoint."""
    wanted = {s.ref: s for s in sources}
    out: dict[str, SourceState] = {}
    for status in store.sources.statuses(refs={(s.project, s.name) for s in wanted.values()}):
        ref = f"{status.project}/{status.source}"
        checkpoint: Mapping[str, Any] = status.checkpoint or {}
        horizon = checkpoint.get("horizon")
        currency = checkpoint.get("currency")
        version = checkpoint.get("data_version")
        out[ref] = SourceState(
            currency if isinstance(currency, str) else wanted[ref].currency,
            date.fromisoformat(horizon) if isinstance(horizon, str) else None,
            str(version)
            if version is not None
            else (status.last_success_at.isoformat() if status.last_success_at else None),
        )
    for ref, source in wanted.items():
        out.setdefault(ref, SourceState(source.currency, None, None))
    return out


FEW_PROJECTS = 20
"""Up to this many projects asked for, the store filters on the attribution label."""


def _points(
    store: Store, selector: Selector, start_ms: int, end_ms: int, raw_from_ms: int
) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
    """label set -> ts -> value, raw first, hourly aggregates where raw is gone."""
    out: dict[tuple[tuple[str, str], ...], dict[int, float]] = defaultdict(dict)
    for series in store.samples.window(selector, start_ms, end_ms):
        target = out[series.key.labels]
        for point in series.points:
            target[point.ts_ms] = point.value
    if start_ms < raw_from_ms:
        hourly: list[SeriesPoints] = store.samples.query_range(
            selector, start_ms - HOUR_MS, min(end_ms, raw_from_ms) + HOUR_MS, HOUR_MS, "last"
        )
        for series in hourly:
            target = out[series.key.labels]
            for point in series.points:
                target.setdefault(-point.ts_ms - 1, point.value)  # marked as an aggregate
    return out


def read_days(
    store: Store,
    sources: Sequence[SpendSource],
    projects: Iterable[str],
    first: date,
    last: date,
    *,
    raw_retention: timedelta,
    now: datetime,
    states: Mapping[str, SourceState] | None = None,
) -> dict[str, dict[str, SourceDays]]:
    """project -> source ref -> that source's days in [first, last] for the project."""
    wanted = set(projects)
    states = states or source_states(store, sources)
    out: dict[str, dict[str, SourceDays]] = {p: {} for p in wanted}
    raw_from_ms = ms_from_datetime(now - raw_retention) + HOUR_MS
    for source in sources:
        state = states.get(source.ref, SourceState(source.currency, None, None))
        tz = zone(source.timezone)
        start_ms, end_ms = ms_from_datetime(day_start(first, tz)), ms_from_datetime(day_start(last, tz))
        for project in wanted:
            out[project][source.ref] = SourceDays(source, state.currency, state.horizon)
        metrics = [GPU_USAGE, GPU_BUSY, ROWS]
        if state.currency is not None:
            metrics.append(spend_metric(state.currency))
        base: tuple[Matcher, ...] = (Matcher.of("project", "=", source.project), Matcher.of(SOURCE, "=", source.name))
        if len(wanted) <= FEW_PROJECTS:
            # One project's page must not read the whole fleet's attributed series of a shared bill.
            names = "|".join(re.escape(p) for p in sorted(wanted))
            base = (*base, Matcher.of(ATTRIBUTED, "=~", names))
        for metric in metrics:
            found = _points(store, Selector(metric, base), start_ms, end_ms, raw_from_ms)
            for labels, points in found.items():
                label_map = dict(labels)
                project = label_map.get(ATTRIBUTED, "")
                if project not in wanted:
                    continue
                days = _by_day(points, tz, first, last)
                target = out[project][source.ref]
                if metric == GPU_USAGE:
                    _add(target.gpu_usage, days)
                elif metric == GPU_BUSY:
                    _add(target.gpu_busy, days)
                    if fallback := label_map.get(BUSY_METRIC):
                        target.busy_from.setdefault(fallback, set()).update(days)
                elif metric == ROWS:
                    _add(target.rows, days)
                else:
                    _add(target.spend[(label_map.get(BASIS, ""), label_map.get(SCOPE, ""))], days)
    return out


def _by_day(points: Mapping[int, float], tz: tzinfo, first: date, last: date) -> Daily:
    raw: Daily = {}
    aggregated: Daily = {}
    for ts, value in points.items():
        if ts >= 0:
            day = day_of_ms(ts, tz)
            if first <= day <= last:
                raw[day] = value
        else:
            day = day_of_ms(-ts - 1, tz)  # an hour bucket's start lies in the sample's day
            if first <= day <= last:
                aggregated[day] = value
    return {**aggregated, **raw}


def _add(target: Daily, days: Mapping[date, float]) -> None:
    for day, value in days.items():
        target[day] = target.get(day, 0.0) + value


def totals_by_attribution(
    store: Store,
    source: SpendSource,
    currency: str | None,
    first: date,
    last: date,
    *,
    raw_retention: timedelta,
    now: datetime,
) -> dict[str, tuple[float, float | None]]:
    """attributed project -> (spend, rows) of a source over [first, last], unattributed included.

    Spend is the source's own basis (FOCUS: billed), both scopes."""
    tz = zone(source.timezone)
    start_ms, end_ms = ms_from_datetime(day_start(first, tz)), ms_from_datetime(day_start(last, tz))
    raw_from_ms = ms_from_datetime(now - raw_retention) + HOUR_MS
    base = (Matcher.of("project", "=", source.project), Matcher.of(SOURCE, "=", source.name))
    amounts: dict[str, float] = defaultdict(float)
    rows: dict[str, float] = defaultdict(float)
    if currency is not None:
        for labels, points in _points(
            store, Selector(spend_metric(currency), base), start_ms, end_ms, raw_from_ms
        ).items():
            label_map = dict(labels)
            if source.kind == "focus" and label_map.get(BASIS) != "billed":
                continue
            amounts[label_map.get(ATTRIBUTED, "")] += sum(_by_day(points, tz, first, last).values())
    for labels, points in _points(store, Selector(ROWS, base), start_ms, end_ms, raw_from_ms).items():
        rows[dict(labels).get(ATTRIBUTED, "")] += sum(_by_day(points, tz, first, last).values())
    keys = set(amounts) | set(rows)
    return {k: (amounts.get(k, 0.0), rows.get(k) if source.kind == "focus" else None) for k in keys}
