"""Daily totals of one spend source, turned into readings (layout: monitor/spend/series.py).

Every spend source recomputes whole days: the totals of a day replace what was stored for it.
A (project, day) that had a value before but has none in the recomputation (a row moved to
another project, a file that disappeared) is written as 0, so nothing stale lingers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from collectors.base import Reading
from monitor.core.matchers import Matcher, Selector
from monitor.spend.series import (
    ATTRIBUTED,
    BASIS,
    GPU_BUSY,
    GPU_USAGE,
    ROWS,
    SCOPE,
    SOURCE,
    Basis,
    Scope,
    day_of_ms,
    day_start,
    local_day,
    spend_metric,
)
from monitor.store.interface import SeriesReader

Key = tuple[str, tuple[tuple[str, str], ...]]
"""(metric, sorted labels) of one daily series."""


@dataclass
class DailyTotals:
    """Amounts per (series, day) for one source in one currency."""

    currency: str
    tz: tzinfo
    values: dict[Key, dict[date, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    _keys: dict[tuple[str, ...], Key] = field(default_factory=dict, repr=False)

    def _key(self, metric: str, project: str, **labels: str) -> Key:
        lookup = (metric, project, *labels.values())
        key = self._keys.get(lookup)
        if key is None:
            key = self._keys[lookup] = (metric, tuple(sorted({ATTRIBUTED: project, **labels}.items())))
        return key

    def spend_key(self, project: str, basis: Basis, scope: Scope) -> Key:
        return self._key(spend_metric(self.currency), project, **{BASIS: basis.value, SCOPE: scope.value})

    def gpu_key(self, project: str, busy: bool = False) -> Key:
        return self._key(GPU_BUSY if busy else GPU_USAGE, project)

    def rows_key(self, project: str) -> Key:
        return self._key(ROWS, project)

    def add_spend(self, project: str, basis: Basis, scope: Scope, day: date, amount: float) -> None:
        self.values[self.spend_key(project, basis, scope)][day] += amount

    def add_gpu(self, project: str, day: date, usage_seconds: float, busy_seconds: float | None = None) -> None:
        self.values[self.gpu_key(project)][day] += usage_seconds
        if busy_seconds is not None:
            self.values[self.gpu_key(project, busy=True)][day] += busy_seconds

    def add_labelled(self, metric: str, project: str, day: date, value: float, labels: dict[str, str]) -> None:
        """A value of a series with labels of its own (a busy time read from a fallback metric)."""
        self.values[self._key(metric, project, **labels)][day] += value

    def add_rows(self, project: str, day: date, rows: float) -> None:
        self.values[self.rows_key(project)][day] += rows

    def merge(self, other: DailyTotals, days: set[date] | None = None) -> None:
        for key, per_day in other.values.items():
            for day, value in per_day.items():
                if days is None or day in days:
                    self.values[key][day] += value

    @property
    def days(self) -> set[date]:
        return {day for per_day in self.values.values() for day in per_day}

    @property
    def metrics(self) -> set[str]:
        return {spend_metric(self.currency), GPU_USAGE, GPU_BUSY, ROWS}

    def readings(self, source: str, days: set[date] | None = None) -> list[Reading]:
        out: list[Reading] = []
        # a read makes ~100,000 readings over a few dozen days: each day's start is computed once
        starts: dict[date, datetime] = {d: day_start(d, self.tz) for d in (self.days if days is None else days)}
        for (metric, labels), per_day in self.values.items():
            tagged = {**dict(labels), SOURCE: source}
            out.extend(
                Reading(metric, value, tagged, starts[day]) for day, value in sorted(per_day.items()) if day in starts
            )
        return out


def withdrawn(
    reader: SeriesReader,
    project: str,
    source: str,
    metrics: Iterable[str],
    days: set[date],
    tz: tzinfo,
    produced: list[Reading],
) -> list[Reading]:
    """Zero readings for stored daily samples of `source` on `days` that `produced` no longer has."""
    if not days:
        return []
    start = int(day_start(min(days), tz).timestamp() * 1000)
    end = int(day_start(max(days), tz).timestamp() * 1000)
    stored: list[tuple[str, dict[str, str], date]] = []
    for metric in sorted(metrics):
        selector = Selector(metric, (Matcher.of("project", "=", project), Matcher.of(SOURCE, "=", source)))
        for series in reader.window(selector, start, end):
            labels = dict(series.key.labels)
            stored.extend(
                (metric, labels, day)
                for point in series.points
                if point.value != 0 and (day := day_of_ms(point.ts_ms, tz)) in days
            )
    if not stored:  # a first read: nothing to withdraw, and no need to index what was produced
        return []
    have = {(r.metric, tuple(sorted(r.labels.items())), local_day(r.ts, tz)) for r in produced if r.ts is not None}
    return [
        Reading(metric, 0.0, labels, day_start(day, tz))
        for metric, labels, day in stored
        if (metric, tuple(sorted(labels.items())), day) not in have
    ]
