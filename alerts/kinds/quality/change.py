"""`change`: sequential change detection on a quality series (CUSUM with a stated budget).

    params:
      metric: accuracy
      match: ['model="churn-classifier"']
      worse: down          # alert on falls; "up" for loss; "both" for any change
      shift: 0.5           # the change, in standard deviations of the series, to catch fastest
      arl: 10000000        # false-alarm budget: on stable data, one false alarm per this many points
      warmup: 30           # points learnt before detection starts
      hold: 1d             # a detected change fires this long unless the series recovers first
      examples_metric: accuracy_examples   # n behind each value: a binomial CUSUM on proportions
      drop: 0.05           # ... tuned to a change of the proportion by this much (absolute)
      warmup_examples: 1000   # ... examples its p0 is learnt from before detection starts
      window: 1h           # a rolling-window metric: one point per window is used (independent)

Two models. Without `examples_metric` (or for a value outside [0, 1]), the self-starting normal
CUSUM of monitor.quality.detector on the values. With it, a binomial CUSUM of the successes
(value x n) against a learnt p0 (monitor.quality.binomial), whose threshold is computed for the
binomial data it sees, so the budget holds on 0/1 outcomes (n = 1) and small n where the normal
model's does not. A point whose n is missing is skipped (never scored on a guessed n).

A rolling-window metric polled more often than its window (accuracy over the last hour, polled
every 5 minutes) is serially correlated: neighbouring points share most of their data, and a
detector that takes them as independent raises tens of times its budget. With `window`, the rule
thins the stream to points at least a window apart (independent windows), and `arl` counts those.

Each evaluation feeds the detector only the points newer than the last one it saw (read from a
`lookback` window, 7 days by default), and keeps the detector's state in the rule's memory, so
it survives restarts and never counts a point twice. A detected change in the `worse` direction
fires; a later change back the other way (the series recovered) clears it, as does `hold` running
out. With `worse: both` the budget is split over the two directions. See monitor.quality.detector
for the method and docs/quality.md for the delay it gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from alerts.kinds.base import Evaluation, RuleContext, RuleKind, SeriesNeed, SeriesParams
from alerts.kinds.quality.common import EXAMPLES_TOLERANCE_MS, by_labels, metric_name, n_at
from alerts.model import Condition, Verdict
from monitor.config.types import Duration
from monitor.core.matchers import Selector
from monitor.core.types import datetime_from_ms, labels_text, ms_from_datetime
from monitor.quality.binomial import BinomialCusum
from monitor.quality.detector import Change, CusumDetector
from monitor.store.interface import Point


class ChangeParams(SeriesParams):
    worse: Literal["down", "up", "both"] = "down"
    shift: float = Field(default=0.5, gt=0, le=10)
    arl: float = Field(default=10_000_000, ge=100)
    warmup: int = Field(default=30, ge=5, le=100_000)
    min_sd: float = Field(default=0.0, ge=0, description="floor of the series' spread, in its own units")
    hold: Duration = timedelta(days=1)
    lookback: Duration = timedelta(days=7)
    examples_metric: str | None = None
    drop: float = Field(default=0.05, gt=0, lt=1, description="change of a proportion the binomial model is tuned to")
    warmup_examples: float = Field(default=1000, ge=1)
    window: Duration | None = None

    @field_validator("examples_metric")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return metric_name(value)

    @property
    def window_ms(self) -> int:
        return int(self.window.total_seconds() * 1000) if self.window else 0

    @property
    def side_arl(self) -> float:
        """The budget of each CUSUM side: split in two when both directions alert."""
        return self.arl * 2 if self.worse == "both" else self.arl

    def watches(self, direction: str) -> bool:
        return self.worse == "both" or self.worse == direction


def needs(params: ChangeParams) -> list[SeriesNeed]:
    out = [SeriesNeed("series", params.selector(), params.lookback)]
    if params.examples_metric is not None:
        out.append(
            SeriesNeed("examples", Selector(params.examples_metric, params.selector().matchers), params.lookback)
        )
    return out


Detector = CusumDetector | BinomialCusum


def _new_detector(params: ChangeParams, binomial: bool) -> Detector:
    if binomial:
        return BinomialCusum(params.drop, params.side_arl, params.warmup_examples)
    return CusumDetector(params.shift, params.side_arl, params.warmup, max(params.min_sd, 1e-12), 1e-4)


def _detector(params: ChangeParams, saved: Mapping[str, Any] | None, binomial: bool) -> Detector | None:
    if saved is None:
        return None
    if binomial and saved.get("model") == "binomial":
        restored_b = BinomialCusum.from_dict(saved)
        if restored_b.same_settings(params.drop, params.side_arl, params.warmup_examples):
            return restored_b
    if not binomial and saved.get("model", "normal") == "normal":
        restored = CusumDetector.from_dict(saved)
        if restored.same_settings(params.shift, params.side_arl, params.warmup, max(params.min_sd, 1e-12), 1e-4):
            return restored
    return None


def thin_to_windows(points: list[Point], kept_ts: int, window_ms: int) -> tuple[list[Point], int]:
    """The points at least a window after the last one kept (consecutive windows do not overlap)."""
    if window_ms <= 0:
        return points, points[-1].ts_ms if points else kept_ts
    out = []
    for point in points:
        if kept_ts < 0 or point.ts_ms - kept_ts >= window_ms:
            out.append(point)
            kept_ts = point.ts_ms
    return out, kept_ts


def describe(detector: Detector) -> str:
    if isinstance(detector, BinomialCusum):
        return detector.describe()
    return (
        f"normal self-starting CUSUM: level {detector.level():.4g}, spread {detector.spread():.3g}, "
        f"tuned to a change of {detector.shift:g} sd"
    )


def evaluate(params: ChangeParams, ctx: RuleContext) -> Evaluation:
    now_ms = ms_from_datetime(ctx.now)
    hold_ms = int(params.hold.total_seconds() * 1000)
    remembered: Mapping[str, Any] = ctx.memory.get("series", {})
    memory: dict[str, Any] = {}
    verdicts: list[Verdict] = []
    examples = by_labels(ctx.series.get("examples", ()))
    binomial = params.examples_metric is not None
    for series in ctx.series["series"]:
        key = labels_text(series.key.labels)
        labels = series.key.label_dict()
        saved = remembered.get(key) or {}
        detector = _detector(params, saved.get("detector"), binomial)
        last_ts = int(saved.get("last_ts", -1)) if detector is not None else -1
        kept_ts = int(saved.get("kept_ts", -1)) if detector is not None else -1
        skipped = int(saved.get("skipped", 0)) if detector is not None else 0
        alarm: dict[str, Any] | None = saved.get("alarm") if detector is not None else None
        if detector is None:
            detector = _new_detector(params, binomial)
        fresh = [p for p in series.points if p.ts_ms > last_ts]
        used, kept_ts = thin_to_windows(fresh, kept_ts, params.window_ms)
        if isinstance(detector, BinomialCusum):
            found = examples.get(series.key.labels)
            joined = [(p, n_at(found, p.ts_ms, EXAMPLES_TOLERANCE_MS)) for p in used]
            usable = [(p, n) for p, n in joined if n is not None and 0.0 <= p.value <= 1.0]
            skipped += len(joined) - len(usable)
            changes = detector.run([p.value for p, _ in usable], [n for _, n in usable], [p.ts_ms for p, _ in usable])
        else:
            changes = detector.run([p.value for p in used], [p.ts_ms for p in used])
        for change in changes:
            if params.watches(change.direction):
                alarm = _alarm(change)
            elif alarm is not None:
                alarm = None  # the series came back: a change the other way
        if fresh:
            last_ts = fresh[-1].ts_ms
        if alarm is not None and now_ms - int(alarm["detected_ts"]) >= hold_ms:
            alarm = None
        if last_ts >= 0:
            memory[key] = {
                "last_ts": last_ts,
                "kept_ts": kept_ts,
                "skipped": skipped,
                "detector": detector.to_dict(),
                "alarm": alarm,
            }
        value = series.points[-1].value if series.points else None
        verdicts.append(_verdict(params, labels, value, detector, alarm, last_ts, skipped))
    return Evaluation(verdicts, {"series": memory})


def _alarm(change: Change) -> dict[str, Any]:
    return {
        "direction": change.direction,
        "started_ts": change.started_ts,
        "detected_ts": change.detected_ts,
        "before_mean": change.before_mean,
        "before_sd": change.before_sd,
        "after_mean": change.after_mean,
        "after_points": change.after_points,
    }


def _verdict(
    params: ChangeParams,
    labels: dict[str, str],
    value: float | None,
    detector: Detector,
    alarm: Mapping[str, Any] | None,
    last_ts: int,
    skipped: int = 0,
) -> Verdict:
    if isinstance(detector, BinomialCusum):
        threshold = max(detector.threshold("down"), detector.threshold("up")) if detector.ready else 0.0
    else:
        threshold = detector.threshold
    details: dict[str, Any] = {
        "metric": params.metric,
        "worse": params.worse,
        "model": describe(detector),
        "threshold": round(float(threshold), 4),
        "arl": params.arl,
        "points": detector.points,
    }
    if skipped:
        details["points_without_n"] = skipped
    if params.window is not None:
        details["window"] = f"thinned to one point per {params.window} (arl counts windows)"
    if last_ts < 0:
        return Verdict(labels, Condition.NODATA, None, {**details, "reason": "no points yet"})
    if alarm is None:
        if not detector.ready:
            if isinstance(detector, BinomialCusum):
                learnt = f"{detector.examples:.0f} of {params.warmup_examples:g} warm-up examples"
            else:
                learnt = f"{detector.reference.n} of {params.warmup} warm-up points"
            details["reason"] = f"learning: {learnt}"
        return Verdict(labels, Condition.CLEAR, value, details)
    before_sd = float(alarm["before_sd"])
    details.update(
        direction=alarm["direction"],
        direction_word="fell" if alarm["direction"] == "down" else "rose",
        before_mean=alarm["before_mean"],
        after_mean=alarm["after_mean"],
        shift_sd=(float(alarm["after_mean"]) - float(alarm["before_mean"])) / before_sd if before_sd > 0 else 0.0,
        change_started=datetime_from_ms(int(alarm["started_ts"])).isoformat(),
        change_detected=datetime_from_ms(int(alarm["detected_ts"])).isoformat(),
    )
    return Verdict(labels, Condition.FIRE, value, details)


KIND = RuleKind(
    name="change",
    params=ChangeParams,
    needs=needs,
    evaluate=evaluate,
    summary=(
        "{% if details.before_mean is defined %}{{ details.metric }} {{ details.direction_word }} from"
        " {{ details.before_mean | round(4) }} to {{ details.after_mean | round(4) }}"
        " ({{ details.shift_sd | round(1) }} sd) since {{ details.change_started }}"
        "{% else %}{{ details.metric }}: no change in force{% endif %}"
    ),
    uses_memory=True,
    template_vars=(
        "metric",
        "worse",
        "model",
        "window",
        "points_without_n",
        "threshold",
        "arl",
        "points",
        "reason",
        "direction",
        "direction_word",
        "before_mean",
        "after_mean",
        "shift_sd",
        "change_started",
        "change_detected",
    ),
)
