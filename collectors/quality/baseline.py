"""`baseline`: keep the baseline of quality series as series of their own, `<metric>_baseline`.

    params:
      baselines:
        - metric: accuracy
          match: ['model="churn-classifier"']
          value: 0.92                                   # a fixed value
        - metric: accuracy
          at: 2026-10-01T00:00:00Z                      # the value at a reference time
        - metric: accuracy
          version: "7"                                  # the mean while model_version was 7
        - metric: accuracy
          window: {start: 2026-09-01T00:00:00Z, end: 2026-10-01T00:00:00Z}   # learnt from a window
          agg: mean                                     # mean | median | last
        - metric: f1_score
          trailing: 28d                                 # a rolling window [now - gap - 28d, now - gap]
          gap: 7d
          examples_metric: f1_score_examples            # pooled by n, and n written as the baseline's n

For every series the selector matches, the source writes `<metric>_baseline` (or `name`) with the
same labels, at the time of the run, and `<name>_examples` when the examples behind it are known;
the `drop` rule reads them. The checkpoint keeps how each baseline was computed (method, period,
points, n), which `GET /api/v1/quality/series` returns beside the series. Baselines of a fixed
past period (`at`, `window`) are computed once and reused until their spec changes.

`version` reads `version_metric` (default `model_version`, written by the `mlflow` source, or
pushed), joined to the series on `join_on` labels, and keeps the points taken while that version
was current. A spec that finds no data for any series fails the source, naming the spec; a series
without data in the reference period just gets no baseline (the `drop` rule says so).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from collectors.base import CollectContext, CollectResult, Params, Reading, SourceError, SourceKind
from monitor.config.types import Duration, MetricName
from monitor.core.durations import format_duration
from monitor.core.matchers import Matcher, Selector, parse_matchers
from monitor.core.types import Labels, datetime_from_ms, labels_text, ms_from_datetime
from monitor.quality.names import BASELINE_SUFFIX, EXAMPLES_SUFFIX, MODEL_VERSION
from monitor.store.interface import Point, SeriesPoints


class Window(Params):
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone (e.g. 2026-10-01T00:00:00Z)")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class BaselineSpec(Params):
    metric: MetricName
    match: list[str] = Field(default_factory=list)
    name: MetricName | None = Field(default=None, description="the baseline series (default <metric>_baseline)")
    value: float | None = None
    at: datetime | None = None
    version: str | None = None
    window: Window | None = None
    trailing: Duration | None = None
    gap: Duration = timedelta(0)
    agg: Literal["mean", "median", "last"] = "mean"
    tolerance: Duration = Field(
        default=timedelta(days=7), description="at: how old the newest point before `at` may be"
    )
    search: Duration = Field(default=timedelta(days=90), description="version: how far back to look")
    version_metric: MetricName = MODEL_VERSION
    join_on: list[str] = Field(default_factory=lambda: ["model"])
    examples_metric: MetricName | None = None

    @field_validator("match")
    @classmethod
    def _match(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_matchers(text)
        return value

    @model_validator(mode="after")
    def _one_method(self) -> BaselineSpec:
        given = [n for n in ("value", "at", "version", "window", "trailing") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of value, at, version, window, trailing (got {', '.join(given) or 'none'})"
            )
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("at needs a time zone (e.g. 2026-10-01T00:00:00Z)")
        return self

    @property
    def method(self) -> str:
        return next(n for n in ("value", "at", "version", "window", "trailing") if getattr(self, n) is not None)

    @property
    def output(self) -> str:
        return self.name or self.metric + BASELINE_SUFFIX

    def selector(self) -> Selector:
        matchers: list[Matcher] = []
        for text in self.match:
            matchers.extend(parse_matchers(text))
        return Selector(self.metric, tuple(matchers))

    def describe(self) -> str:
        inner = ",".join(self.match)
        return f"baseline {self.method} of {self.metric}{{{inner}}}"

    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def fixed_period(self, now: datetime) -> bool:
        """Whether the reference period is entirely in the past (so the result cannot change)."""
        if self.at is not None:
            return self.at <= now
        return self.window is not None and self.window.end <= now


class BaselineParams(Params):
    baselines: list[BaselineSpec] = Field(min_length=1)


class BaselineCollector:
    def __init__(self, params: BaselineParams) -> None:
        self.params = params

    def collect(self, ctx: CollectContext) -> CollectResult:
        now_ms = ms_from_datetime(ctx.now)
        cached: Mapping[str, Any] = ctx.checkpoint.get("baselines") or {}
        kept: dict[str, Any] = {}
        readings: list[Reading] = []
        for spec in self.params.baselines:
            found = 0
            for labels, result in _compute(spec, ctx, cached).items():
                found += 1
                kept[_key(spec, labels)] = result
                readings.append(Reading(spec.output, float(result["value"]), dict(labels)))
                if result.get("n") is not None:
                    readings.append(Reading(spec.output + EXAMPLES_SUFFIX, float(result["n"]), dict(labels)))
            if not found:
                raise SourceError(f"{spec.describe()}: {_nothing(spec, ctx.now)}")
        return CollectResult(readings=readings, checkpoint={"baselines": kept, "computed_ms": now_ms})


def _key(spec: BaselineSpec, labels: Labels) -> str:
    return f"{spec.output}|{labels_text(labels)}"


def _nothing(spec: BaselineSpec, now: datetime) -> str:
    if spec.method == "value":
        return "no series matches yet (a fixed baseline is written beside each matching series)"
    if spec.at is not None:
        return f"no point at or up to {format_duration(spec.tolerance)} before {spec.at.isoformat()}"
    if spec.window is not None:
        return f"no point between {spec.window.start.isoformat()} and {spec.window.end.isoformat()}"
    if spec.trailing is not None:
        end = now - spec.gap
        return f"no point between {(end - spec.trailing).isoformat()} and {end.isoformat()}"
    return (
        f"no point taken while {spec.version_metric} was {spec.version} "
        f"(searched the last {format_duration(spec.search)})"
    )


def _compute(spec: BaselineSpec, ctx: CollectContext, cached: Mapping[str, Any]) -> dict[Labels, dict[str, Any]]:
    selector = spec.selector()
    now = ctx.now
    now_ms = ms_from_datetime(now)
    if spec.value is not None:
        # Written beside every matching series; an empty window lists them without reading points.
        series = ctx.reader.window(selector, now_ms, now_ms)
        return {s.key.labels: {"value": spec.value, "n": None, "method": "value"} for s in series}
    digest = spec.digest()
    if spec.fixed_period(now):
        reuse = {
            tuple(sorted(json.loads(key.split("|", 1)[1]).items())): result
            for key, result in cached.items()
            if key.startswith(spec.output + "|") and result.get("spec") == digest
        }
        if reuse:
            return reuse
    start, end = _period(spec, now)
    series = ctx.reader.window(selector, ms_from_datetime(start), ms_from_datetime(end))
    examples = _examples(spec, ctx, start, end)
    versions = _versions(spec, ctx, start, end) if spec.version is not None else {}
    out: dict[Labels, dict[str, Any]] = {}
    for s in series:
        points = s.points
        if spec.at is not None:
            points = points[-1:]
        elif spec.version is not None:
            history = versions.get(tuple((k, v) for k, v in s.key.labels if k in set(spec.join_on)), [])
            points = [p for p in points if _version_at(history, p.ts_ms) == float(spec.version)]
        if not points:
            continue
        n_by_ts = {p.ts_ms: p.value for p in examples.get(s.key.labels, [])}
        value, n = _aggregate(spec.agg if spec.at is None else "last", points, n_by_ts)
        out[s.key.labels] = {
            "value": value,
            "n": n,
            "method": spec.method,
            "from": datetime_from_ms(points[0].ts_ms).isoformat(),
            "to": datetime_from_ms(points[-1].ts_ms).isoformat(),
            "points": len(points),
            "agg": spec.agg if spec.at is None else "last",
            "spec": digest,
            **({"version": spec.version} if spec.version is not None else {}),
        }
    return out


def _period(spec: BaselineSpec, now: datetime) -> tuple[datetime, datetime]:
    if spec.at is not None:
        return spec.at - spec.tolerance, spec.at
    if spec.window is not None:
        return spec.window.start, spec.window.end
    if spec.trailing is not None:
        end = now - spec.gap
        return end - spec.trailing, end
    return now - spec.search, now


def _examples(spec: BaselineSpec, ctx: CollectContext, start: datetime, end: datetime) -> dict[Labels, list[Point]]:
    if spec.examples_metric is None:
        return {}
    selector = Selector(spec.examples_metric, spec.selector().matchers)
    found = ctx.reader.window(selector, ms_from_datetime(start), ms_from_datetime(end))
    return {s.key.labels: s.points for s in found}


def _versions(spec: BaselineSpec, ctx: CollectContext, start: datetime, end: datetime) -> dict[Labels, list[Point]]:
    # Look further back than the period: the version current at its start was set before it.
    found: list[SeriesPoints] = ctx.reader.window(
        Selector(spec.version_metric), ms_from_datetime(start - spec.search), ms_from_datetime(end)
    )
    wanted = set(spec.join_on)
    return {tuple((k, v) for k, v in s.key.labels if k in wanted): s.points for s in found}


def _version_at(history: Sequence[Point], ts_ms: int) -> float | None:
    """The version current at `ts_ms`: the newest version point at or before it."""
    index = bisect.bisect_right(history, ts_ms, key=lambda p: p.ts_ms)
    return history[index - 1].value if index else None


def _aggregate(agg: str, points: Sequence[Point], n_by_ts: Mapping[int, float]) -> tuple[float, float | None]:
    ns = [n_by_ts.get(p.ts_ms) for p in points]
    known = all(n is not None and n > 0 for n in ns)
    total = float(sum(n for n in ns if n is not None)) if known else None
    if agg == "last":
        return points[-1].value, ns[-1] if known else None
    if agg == "median":
        return statistics.median(p.value for p in points), total
    if known and total:
        # Pooled: a proportion measured on more examples weighs more (sum of successes / sum of n).
        return sum(p.value * float(n or 0) for p, n in zip(points, ns, strict=True)) / total, total
    return statistics.fmean(p.value for p in points), total


KIND = SourceKind(
    "baseline",
    BaselineParams,
    BaselineCollector,
    "baselines of quality series: a fixed value, the value at a time or model version, or a window",
)
