"""Helpers shared by the quality rule kinds: metric direction and joining series by their labels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from monitor.core.naming import EXPORT_PREFIX, metric_name_problem
from monitor.core.types import Labels
from monitor.store.interface import Point, SeriesPoints

Worse = Literal["down", "up"]
"""Which way is bad for a metric: "down" for accuracy (higher is better), "up" for loss."""


def by_labels(series: Iterable[SeriesPoints]) -> dict[Labels, SeriesPoints]:
    return {s.key.labels: s for s in series}


def newest(series: SeriesPoints | None) -> Point | None:
    return series.points[-1] if series is not None and series.points else None


def subset(labels: Labels, names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    wanted = set(names)
    return tuple((k, v) for k, v in labels if k in wanted)


def index_by(series: Iterable[SeriesPoints], names: Sequence[str]) -> dict[tuple[tuple[str, str], ...], SeriesPoints]:
    """Series keyed by a subset of their labels (the last one wins when several share it)."""
    return {subset(s.key.labels, names): s for s in series}


def metric_name(value: str | None) -> str | None:
    if value is not None:
        problem = metric_name_problem(value)
        if problem:
            raise ValueError(problem)
    return value


def label_dict(labels: Labels, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**dict(labels), **(extra or {})}


def promql_series(metric: str, *matchers: str) -> str:
    """`mlmon_<metric>{...}` as exported on /metrics, skipping empty matcher texts (an unscoped rule)."""
    inner = ",".join(m for m in matchers if m)
    return f"{EXPORT_PREFIX}{metric}{{{inner}}}" if inner else f"{EXPORT_PREFIX}{metric}"


def promql_number(value: float) -> str:
    """A float as PromQL reads it back exactly (shortest round-trip form, unlike `:g`)."""
    return repr(float(value))


EXAMPLES_TOLERANCE_MS = 1000
"""How far an `<metric>_examples` point may lie from its value's timestamp and still be its n.

Sources write the two at the same timestamp; a job pushing them in two requests, each stamped
with its own clock, lands them milliseconds apart. One second joins those and never the n of the
previous or next value of a series polled at most once a second."""


def n_at(series: SeriesPoints | None, ts_ms: int, tolerance_ms: int = EXAMPLES_TOLERANCE_MS) -> float | None:
    """The number of examples behind the value at `ts_ms`: the examples point nearest to it within
    the tolerance (None when there is none, or its n is not positive)."""
    if series is None or not series.points:
        return None
    points = series.points
    low, high = 0, len(points)
    while low < high:  # first point at or after ts - tolerance
        mid = (low + high) // 2
        if points[mid].ts_ms < ts_ms - tolerance_ms:
            low = mid + 1
        else:
            high = mid
    best: Point | None = None
    for point in points[low:]:
        if point.ts_ms > ts_ms + tolerance_ms:
            break
        if best is None or abs(point.ts_ms - ts_ms) < abs(best.ts_ms - ts_ms):
            best = point
    return best.value if best is not None and best.value > 0 else None
