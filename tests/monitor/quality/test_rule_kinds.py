"""The quality rule kinds as pure functions of (params, context): drop and change."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from alerts.kinds import REGISTRY
from alerts.kinds.base import Evaluation, ProjectView, RuleContext
from alerts.model import Condition
from monitor.core.types import SeriesKey, ms_from_datetime
from monitor.store.interface import Point, SeriesPoints

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
NOW_MS = ms_from_datetime(NOW)
PROJECT = ProjectView("churn", "Churn", "growth", {}, ["Ada"], ["eval"])
MODEL = (("model", "churn-classifier"),)


def _series(
    metric: str, points: Sequence[tuple[int, float]], labels: tuple[tuple[str, str], ...] = MODEL
) -> SeriesPoints:
    return SeriesPoints(SeriesKey("churn", metric, labels), [Point(ts, v) for ts, v in points])


def _run(kind: str, params: Mapping[str, Any], series: Mapping[str, list[SeriesPoints]], memory: Mapping[str, Any] | None = None,
         now: datetime = NOW) -> Evaluation:  # fmt: skip
    rule = REGISTRY[kind]
    parsed = rule.params.model_validate(dict(params))
    needs = {n.name for n in rule.needs(parsed)}
    ctx = RuleContext(now, PROJECT, {name: series.get(name, []) for name in needs}, memory=memory or {})
    return rule.evaluate(parsed, ctx)


# --- drop ------------------------------------------------------------------------------------------


def _drop(value: float, n: float | None = None, **params: Any) -> tuple[Condition, Mapping[str, Any]]:
    series = {"series": [_series("accuracy", [(NOW_MS, value)])]}
    if n is not None:
        series["examples"] = [_series("accuracy_examples", [(NOW_MS, n)])]
        params.setdefault("examples_metric", "accuracy_examples")
    params.setdefault("baseline", 0.92)
    (verdict,) = _run("drop", {"metric": "accuracy", "min_drop": 0.02, **params}, series).verdicts
    return verdict.condition, verdict.details


def test_drop_is_direction_aware() -> None:
    assert _drop(0.99)[0] is Condition.CLEAR, "a rise never alerts a drop"
    assert _drop(0.91)[0] is Condition.CLEAR, "inside the margin"
    condition, details = _drop(0.89)
    assert condition is Condition.FIRE and details["drop"] == pytest.approx(0.03) and details["test"] == "none"
    assert _drop(0.89, worse="up")[0] is Condition.CLEAR, "for a loss a fall is good news"
    assert _drop(0.95, worse="up")[0] is Condition.FIRE


def test_drop_relative_margin() -> None:
    assert _drop(0.89, min_drop=None, min_drop_relative=0.05)[0] is Condition.CLEAR  # 3.3% < 5%
    assert _drop(0.86, min_drop=None, min_drop_relative=0.05)[0] is Condition.FIRE  # 6.5%


def test_drop_needs_significance_when_n_is_known() -> None:
    condition, details = _drop(0.89, n=100)
    assert condition is Condition.HOLD and details["test"] == "wilson", "0.89 on 100 examples proves nothing"
    condition, details = _drop(0.89, n=20_000)
    assert condition is Condition.FIRE and details["bound"] < 0.92


def test_drop_two_proportion_test_against_a_baseline_series() -> None:
    series = {
        "series": [_series("accuracy", [(NOW_MS, 0.89)])],
        "examples": [_series("accuracy_examples", [(NOW_MS, 5000)])],
        "baseline": [_series("accuracy_baseline", [(NOW_MS - 1000, 0.90)])],
        "baseline_examples": [_series("accuracy_baseline_examples", [(NOW_MS - 1000, 5000)])],
    }
    params = {"metric": "accuracy", "min_drop": 0.005, "examples_metric": "accuracy_examples"}
    (verdict,) = _run("drop", params, series).verdicts
    assert verdict.details["test"] == "two_proportion" and verdict.condition is Condition.HOLD  # p ~ 0.05
    series["examples"] = [_series("accuracy_examples", [(NOW_MS, 60_000)])]
    series["baseline_examples"] = [_series("accuracy_baseline_examples", [(NOW_MS - 1000, 60_000)])]
    (verdict,) = _run("drop", params, series).verdicts
    assert verdict.condition is Condition.FIRE and verdict.details["p_value"] < 0.01


def test_drop_examples_of_another_time_are_not_paired_and_the_rule_fails_closed() -> None:
    series = {
        "series": [_series("accuracy", [(NOW_MS, 0.89)])],
        "examples": [_series("accuracy_examples", [(NOW_MS - 60_000, 100)])],
    }
    params = {"metric": "accuracy", "min_drop": 0.02, "baseline": 0.92, "examples_metric": "accuracy_examples"}
    (verdict,) = _run("drop", params, series).verdicts
    assert verdict.condition is Condition.HOLD and "n" not in verdict.details
    assert "no accuracy_examples point within 1s of the value" in verdict.details["reason"]
    (verdict,) = _run("drop", params, {"series": series["series"], "examples": []}).verdicts
    assert verdict.condition is Condition.HOLD, "no n at all: HOLD, never FIRE on the margin alone"


def test_drop_examples_a_few_milliseconds_off_are_joined() -> None:
    params = {"metric": "accuracy", "min_drop": 0.02, "baseline": 0.92, "examples_metric": "accuracy_examples"}
    for offset, condition in ((1, Condition.FIRE), (-999, Condition.FIRE), (1001, Condition.HOLD)):
        series = {
            "series": [_series("accuracy", [(NOW_MS, 0.89)])],
            "examples": [_series("accuracy_examples", [(NOW_MS + offset, 20_000)])],
        }
        (verdict,) = _run("drop", params, series).verdicts
        assert verdict.condition is condition, offset
        assert (verdict.details.get("n") == 20_000) is (condition is Condition.FIRE)
    params["examples_tolerance"] = "2s"
    (verdict,) = _run("drop", params, series).verdicts
    assert verdict.condition is Condition.FIRE and verdict.details["test"] == "wilson"


def test_drop_without_baseline_or_data_is_no_data() -> None:
    params = {"metric": "accuracy", "min_drop": 0.02}
    (verdict,) = _run("drop", params, {"series": [_series("accuracy", [(NOW_MS, 0.8)])]}).verdicts
    assert verdict.condition is Condition.NODATA and "no baseline" in verdict.details["reason"]
    (verdict,) = _run("drop", params, {"series": [_series("accuracy", [])]}).verdicts
    assert verdict.condition is Condition.NODATA


def test_drop_while_the_model_is_unchanged() -> None:
    """ "production model unchanged for 90 days while accuracy drops"."""

    def run(age_days: float) -> Condition:
        series = {
            "series": [_series("accuracy", [(NOW_MS, 0.85)], (("alias", "production"), *MODEL))],
            "age": [
                _series("model_promotion_age_seconds", [(NOW_MS, age_days * 86400)], (("alias", "production"), *MODEL))
            ],
        }
        params = {"metric": "accuracy", "min_drop": 0.02, "baseline": 0.92, "unchanged_for": "90d"}
        (verdict,) = _run("drop", params, series).verdicts
        return verdict.condition

    assert run(120) is Condition.FIRE
    assert run(10) is Condition.CLEAR


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"metric": "accuracy"}, "min_drop"),
        ({"metric": "accuracy", "min_drop": 0.1, "baseline": 0.9, "baseline_metric": "x"}, "not both"),
        ({"metric": "accuracy_days", "min_drop": 0.1}, "base unit"),
        ({"metric": "accuracy", "min_drop": -1}, "greater than or equal"),
    ],
)
def test_drop_params_are_checked(params: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        REGISTRY["drop"].params.model_validate(params)


# --- change ----------------------------------------------------------------------------------------

STEP_MS = 60_000


def _points(values: Sequence[float], start_ms: int) -> list[tuple[int, float]]:
    return [(start_ms + i * STEP_MS, v) for i, v in enumerate(values)]


def test_change_fires_on_a_drop_and_keeps_state_across_evaluations() -> None:
    rng = np.random.default_rng(3)
    values = (0.9 + 0.01 * rng.standard_normal(600)).tolist()
    values[400:] = [v - 0.006 for v in values[400:]]  # a 0.6 sd fall at point 400
    start = NOW_MS - 600 * STEP_MS
    params = {"metric": "accuracy", "arl": 100_000, "lookback": "7d"}
    memory: Mapping[str, Any] = {}
    fired_at = None
    # The engine evaluates as points arrive: 20 at a time, the window growing, memory carried along.
    for upto in range(20, 601, 20):
        now = datetime.fromtimestamp((start + (upto - 1) * STEP_MS) / 1000, UTC)
        evaluation = _run(
            "change", params, {"series": [_series("accuracy", _points(values[:upto], start))]}, memory, now
        )
        memory = json.loads(json.dumps(evaluation.memory))  # what the store keeps
        (verdict,) = evaluation.verdicts
        if verdict.condition is Condition.FIRE and fired_at is None:
            fired_at = upto
            assert (
                verdict.details["direction"] == "down"
                and verdict.details["after_mean"] < verdict.details["before_mean"]
            )
        if upto <= 400:
            assert verdict.condition is not Condition.FIRE, f"false alarm at {upto}"
    assert fired_at is not None and fired_at - 400 <= 100
    (state,) = memory["series"].values()
    assert state["last_ts"] == start + 599 * STEP_MS and state["detector"]["points"] == 600, "each point seen once"


def test_change_is_direction_aware_and_a_recovery_clears() -> None:
    rng = np.random.default_rng(5)
    base = (0.9 + 0.01 * rng.standard_normal(700)).tolist()
    rise = base[:300] + [v + 0.01 for v in base[300:]]
    params = {"metric": "accuracy", "arl": 100_000}
    evaluation = _run("change", params, {"series": [_series("accuracy", _points(rise, NOW_MS - 700 * STEP_MS))]})
    assert evaluation.verdicts[0].condition is Condition.CLEAR, "a rise never alerts worse: down"
    up = _run(
        "change", {**params, "worse": "up"}, {"series": [_series("accuracy", _points(rise, NOW_MS - 700 * STEP_MS))]}
    )
    assert up.verdicts[0].condition is Condition.FIRE
    fall_and_back = base[:300] + [v - 0.01 for v in base[300:450]] + base[450:]
    back = _run(
        "change",
        {**params, "hold": "30d"},
        {"series": [_series("accuracy", _points(fall_and_back, NOW_MS - 700 * STEP_MS))]},
    )
    assert back.verdicts[0].condition is Condition.CLEAR, "the series came back up: the change is over"


def test_change_hold_expires() -> None:
    values = [0.9] * 40 + [0.8] * 5
    start = NOW_MS - 45 * STEP_MS
    series = {"series": [_series("accuracy", _points(values, start))]}
    first = _run("change", {"metric": "accuracy", "hold": "1h"}, series)
    assert first.verdicts[0].condition is Condition.FIRE
    later = _run("change", {"metric": "accuracy", "hold": "1h"}, series, first.memory, NOW + timedelta(hours=2))
    assert later.verdicts[0].condition is Condition.CLEAR


def test_change_settings_change_restarts_the_detector() -> None:
    series = {"series": [_series("accuracy", _points([0.9] * 40, NOW_MS - 40 * STEP_MS))]}
    first = _run("change", {"metric": "accuracy"}, series)
    assert first.memory is not None
    second = _run("change", {"metric": "accuracy", "shift": 1.0}, series, first.memory)
    assert second.memory is not None
    (state,) = second.memory["series"].values()
    assert state["detector"]["shift"] == 1.0 and state["detector"]["points"] == 40
