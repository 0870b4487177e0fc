"""The change detectors' false-alarm budgets on accuracy streams as they really are: 0/1 outcomes,
accuracies over n examples, and rolling-window accuracies polled faster than their window.

Each test measures the false-alarm rate on in-control streams (fixed seeds) and checks it is
within 2x of the stated budget (both ways: a detector far under its budget is slower than it
needs to be)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from alerts.kinds import REGISTRY
from alerts.kinds.base import ProjectView, RuleContext
from alerts.kinds.quality.change import thin_to_windows
from alerts.model import Condition
from monitor.core.types import SeriesKey, ms_from_datetime
from monitor.quality.binomial import BinomialCusum, binomial_threshold
from monitor.quality.detector import CusumDetector
from monitor.store.interface import Point, SeriesPoints

MINUTE_MS = 60_000


def _rate(alarms: int, scored: int, arl: float) -> float:
    """Measured over budgeted alarms (two sides, each with budget `arl`)."""
    return alarms / (2 * scored / arl)


def test_binomial_budget_holds_on_0_1_outcomes() -> None:
    arl, alarms, scored = 2000.0, 0, 0
    for seed in (0, 1):
        outcomes = (np.random.default_rng(seed).random(150_000) < 0.9).astype(float)
        detector = BinomialCusum(drop=0.05, arl=arl, warmup_examples=1000)
        alarms += len(detector.run(outcomes.tolist(), [1.0] * outcomes.size, list(range(outcomes.size))))
        scored += detector.scored
    assert 0.5 <= _rate(alarms, scored, arl) <= 2.0, (alarms, scored)


@pytest.mark.parametrize("window", [4, 12])
def test_rolling_window_budget_holds_once_thinned(window: int) -> None:
    """Accuracy over the last `window` polls of 100 examples each, polled every 5 minutes."""
    arl, alarms, scored = 300.0, 0, 0
    for seed in (0, 1):
        per_poll = np.random.default_rng(100 + seed).binomial(100, 0.9, size=30_000 * window // 4)
        rolling = np.convolve(per_poll, np.ones(window), "valid") / (100 * window)
        points = [Point(i * 5 * MINUTE_MS, float(v)) for i, v in enumerate(rolling)]
        kept, _ = thin_to_windows(points, -1, window * 5 * MINUTE_MS)
        assert len(kept) == -(-len(points) // window)
        detector = BinomialCusum(drop=0.05, arl=arl, warmup_examples=1000)
        alarms += len(detector.run([p.value for p in kept], [100.0 * window] * len(kept), [p.ts_ms for p in kept]))
        scored += detector.scored
    assert 0.5 <= _rate(alarms, scored, arl) <= 2.0, (alarms, scored)


def test_normal_model_on_a_thinned_rolling_mean() -> None:
    """And fed every poll, the same detector overruns its budget many times (the issue's finding)."""
    arl, window, alarms, scored, every_alarms, every_scored = 500.0, 12, 0, 0, 0, 0
    for seed in (0, 1, 2):
        noise = np.random.default_rng(200 + seed).standard_normal(120_000)
        rolling = np.convolve(noise, np.ones(window), "valid") / window
        points = [Point(i * MINUTE_MS, float(v)) for i, v in enumerate(rolling)]
        kept, _ = thin_to_windows(points, -1, window * MINUTE_MS)
        detector = CusumDetector(shift=0.5, arl=arl, warmup=30)
        alarms += len(detector.run([p.value for p in kept], [p.ts_ms for p in kept]))
        scored += len(kept) - 30
        every = CusumDetector(shift=0.5, arl=arl, warmup=30)
        every_alarms += len(every.run([p.value for p in points], [p.ts_ms for p in points]))
        every_scored += len(points) - 30
    assert 0.5 <= _rate(alarms, scored, arl) <= 2.0, (alarms, scored)
    assert _rate(every_alarms, every_scored, arl) > 5.0, (every_alarms, every_scored)


def test_threshold_comes_from_the_run_length_of_the_binomial_chain() -> None:
    # Monotone in the budget, and larger for n = 1 than Siegmund's normal answer would give.
    low, high = binomial_threshold(0.9, 0.85, 1, 1000.0), binomial_threshold(0.9, 0.85, 1, 100_000.0)
    assert 0 < low < high
    assert binomial_threshold(0.9, 0.85, 1200, 1000.0) < binomial_threshold(0.9, 0.85, 1200, 100_000.0)


def _series(metric: str, points: list[tuple[int, float]]) -> SeriesPoints:
    return SeriesPoints(SeriesKey("churn", metric, (("model", "m"),)), [Point(ts, v) for ts, v in points])


def test_rule_defaults_catch_a_five_point_drop_at_0_90_and_name_the_model() -> None:
    """0/1 outcomes, 0.90 then 0.85: the `change` rule with its defaults and `examples_metric`."""
    rule = REGISTRY["change"]
    params = rule.params.model_validate({"metric": "outcome", "examples_metric": "outcome_examples"})
    now = datetime(2026, 12, 1, tzinfo=UTC)
    start = ms_from_datetime(now) - 10_000 * 1000
    caught = 0
    streams = 12
    for seed in range(streams):
        rng = np.random.default_rng(seed)
        outcomes = np.concatenate((rng.random(3000) < 0.90, rng.random(5000) < 0.85)).astype(float)
        stamps = [start + i * 1000 for i in range(outcomes.size)]
        series = {
            "series": [_series("outcome", list(zip(stamps, outcomes.tolist(), strict=True)))],
            "examples": [_series("outcome_examples", [(ts, 1.0) for ts in stamps])],
        }
        ctx = RuleContext(now, ProjectView("churn", "Churn", "growth", {}, [], []), series, memory={})
        (verdict,) = rule.evaluate(params, ctx).verdicts
        assert verdict.details["model"].startswith("binomial CUSUM")
        if verdict.condition is Condition.FIRE:
            caught += 1
            assert verdict.details["direction"] == "down"
            assert (
                verdict.details["change_detected"] > datetime.fromtimestamp((start + 3000_000) / 1000, UTC).isoformat()
            )
    assert caught >= streams - 1, caught
