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
