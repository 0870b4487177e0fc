"""`change`: sequential change detection on a quality series (self-starting CUSUM, stated budget).

    params:
      metric: accuracy
      match: ['model="churn-classifier"']
      worse: down          # alert on falls; "up" for loss; "both" for any change
      shift: 0.5           # the change, in standard deviations of the series, to catch fastest
      arl: 10000000        # false-alarm budget: on stable data, one false alarm per this many points
      warmup: 30           # points learnt before detection starts
      hold: 1d             # a detected change fires this long unless the series recovers first

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

from pydantic import Field

from alerts.kinds.base import Evaluation, RuleContext, RuleKind, SeriesNeed, SeriesParams
from alerts.model import Condition, Verdict
from monitor.config.types import Duration
from monitor.core.types import datetime_from_ms, labels_text, ms_from_datetime
from monitor.quality.detector import Change, CusumDetector


class ChangeParams(SeriesParams):
    worse: Literal["down", "up", "both"] = "down"
    shift: float = Field(default=0.5, gt=0, le=10)
    arl: float = Field(default=10_000_000, ge=100)
    warmup: int = Field(default=30, ge=5, le=100_000)
    min_sd: float = Field(default=0.0, ge=0, description="floor of the series' spread, in its own units")
    hold: Duration = timedelta(days=1)
    lookback: Duration = timedelta(days=7)

    @property
    def side_arl(self) -> float:
        """The budget of each CUSUM side: split in two when both directions alert."""
        return self.arl * 2 if self.worse == "both" else self.arl

    def watches(self, direction: str) -> bool:
        return self.worse == "both" or self.worse == direction


def needs(params: ChangeParams) -> list[SeriesNeed]:
    return [SeriesNeed("series", params.selector(), params.lookback)]


def _detector(params: ChangeParams, saved: Mapping[str, Any] | None) -> CusumDetector | None:
    if saved is not None:
        restored = CusumDetector.from_dict(saved)
        if restored.same_settings(params.shift, params.side_arl, params.warmup, max(params.min_sd, 1e-12), 1e-4):
            return restored
    return None


def evaluate(params: ChangeParams, ctx: RuleContext) -> Evaluation:
    now_ms = ms_from_datetime(ctx.now)
    hold_ms = int(params.hold.total_seconds() * 1000)
    remembered: Mapping[str, Any] = ctx.memory.get("series", {})
    memory: dict[str, Any] = {}
    verdicts: list[Verdict] = []
    for series in ctx.series["series"]:
        key = labels_text(series.key.labels)
        labels = series.key.label_dict()
        saved = remembered.get(key) or {}
        detector = _detector(params, saved.get("detector"))
        last_ts = int(saved.get("last_ts", -1)) if detector is not None else -1
        alarm: dict[str, Any] | None = saved.get("alarm") if detector is not None else None
        if detector is None:
            detector = CusumDetector(params.shift, params.side_arl, params.warmup, max(params.min_sd, 1e-12), 1e-4)
        fresh = [p for p in series.points if p.ts_ms > last_ts]
        for change in detector.run([p.value for p in fresh], [p.ts_ms for p in fresh]):
            if params.watches(change.direction):
                alarm = _alarm(change)
            elif alarm is not None:
                alarm = None  # the series came back: a change the other way
        if fresh:
            last_ts = fresh[-1].ts_ms
        if alarm is not None and now_ms - int(alarm["detected_ts"]) >= hold_ms:
            alarm = None
        if last_ts >= 0:
            memory[key] = {"last_ts": last_ts, "detector": detector.to_dict(), "alarm": alarm}
        verdicts.append(
            _verdict(params, labels, series.points[-1].value if series.points else None, detector, alarm, last_ts)
        )
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
    detector: CusumDetector,
    alarm: Mapping[str, Any] | None,
    last_ts: int,
) -> Verdict:
    details: dict[str, Any] = {
        "metric": params.metric,
        "worse": params.worse,
        "threshold": round(detector.threshold, 4),
        "arl": params.arl,
        "points": detector.points,
    }
    if last_ts < 0:
        return Verdict(labels, Condition.NODATA, None, {**details, "reason": "no points yet"})
    if alarm is None:
        if not detector.ready:
            details["reason"] = f"learning: {detector.reference.n} of {params.warmup} warm-up points"
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
