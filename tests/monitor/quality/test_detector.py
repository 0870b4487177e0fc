"""The change detector: calibration of its false-alarm budget, delay on known change points,
direction, and state that survives a round trip through JSON (as rule memory does)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.quality.detector import CusumDetector, expected_delay, threshold_for


def _stream(seed: int, n: int, change_at: int | None = None, shift: float = 0.0) -> list[float]:
    values = np.random.default_rng(seed).standard_normal(n)
    if change_at is not None:
        values[change_at:] += shift
    return values.tolist()


def test_threshold_matches_siegmund_approximation() -> None:
    # Textbook values for k = 0.5: h = 4 gives ARL0 ~ 336 (Siegmund), and a 1-sd shift is caught in ~8.4.
    h = threshold_for(336.0, 0.5)
    assert h == pytest.approx(4.0, abs=0.05)
    assert expected_delay(1.0, 336.0, 0.5) == pytest.approx(8.4, abs=0.3)
    assert threshold_for(1e6, 0.25) > threshold_for(1e4, 0.25)


def test_false_alarm_rate_matches_the_stated_budget() -> None:
    """On in-control N(0, 1) data the two-sided rate is ~2 / arl (one budget per side)."""
    arl = 20_000.0
    alarms = 0
    points = 0
    for seed in range(5):
        detector = CusumDetector(arl=arl)
        values = _stream(100 + seed, 200_000)
        alarms += len(detector.run(values, range(len(values))))
        points += len(values)
    expected = 2 * points / arl  # 100
    assert 0.6 * expected <= alarms <= 1.4 * expected, alarms


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_known_change_point_delay_and_no_false_alarm(seed: int) -> None:
    change_at = 20_000
    values = _stream(seed, 40_000, change_at, -0.5)
    detector = CusumDetector(arl=1e6)
    changes = detector.run(values, range(len(values)))
    before = [c for c in changes if c.detected_ts < change_at]
    after = [c for c in changes if c.detected_ts >= change_at]
    assert before == []
    assert after and after[0].direction == "down"
    delay = after[0].detected_ts - change_at
    assert 0 < delay < 300, delay  # Siegmund's mean delay for 0.5 sd at ARL0 1e6 is ~86 points
    assert after[0].started_ts >= change_at - 50, "the change start is estimated near the true one"
    assert after[0].after_mean < after[0].before_mean - 0.3


def test_state_round_trip_gives_the_same_answers() -> None:
    values = _stream(7, 6_000, 4_000, 0.7)
    whole = CusumDetector(arl=1e5).run(values, range(len(values)))
    split = CusumDetector(arl=1e5)
    found = []
    for start in range(0, len(values), 250):
        found += split.run(values[start : start + 250], range(start, min(start + 250, len(values))))
        split = CusumDetector.from_dict(json.loads(json.dumps(split.to_dict())))
    assert [(c.direction, c.detected_ts) for c in found] == [(c.direction, c.detected_ts) for c in whole]
    assert whole and whole[0].direction == "up"


def test_constant_series_uses_a_spread_floor() -> None:
    """Accuracy on a fixed holdout is constant until the model changes: the change is caught, the
    float noise of a re-run is not."""
    detector = CusumDetector(warmup=10)
    values = [0.9312] * 50 + [0.9312 + 1e-9] * 50 + [0.9105] * 3
    changes = detector.run(values, range(len(values)))
    assert len(changes) == 1 and changes[0].direction == "down"
    assert changes[0].detected_ts in (100, 101), "a 0.02 fall from a constant level is caught at once"
