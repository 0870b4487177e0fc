"""Rule kinds as pure functions of (params, context)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from alerts.kinds import REGISTRY
from alerts.kinds.base import ProjectView, RuleContext
from alerts.model import Condition
from monitor.core.types import SeriesKey, ms_from_datetime
from monitor.store.interface import Point, SeriesPoints
from monitor.store.sources import SourceStatus

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
PROJECT = ProjectView("churn", "Churn", "growth", {}, ["Ada"], ["eval", "billing"])


def _ctx(
    points: dict[str, list[tuple[float, float]]] | None = None, sources: list[SourceStatus] | None = None
) -> RuleContext:
    series = [
        SeriesPoints(
            SeriesKey("churn", "accuracy", (("model", model),)),
            [Point(ms_from_datetime(NOW) - int(age * 1000), v) for age, v in pts],
        )
        for model, pts in (points or {}).items()
    ]
    return RuleContext(NOW, PROJECT, {"series": series}, sources or [])


def _params(kind: str, **params: object) -> object:
    return REGISTRY[kind].params.model_validate(params)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.85, Condition.FIRE),
        (0.90, Condition.HOLD),
        (0.91, Condition.HOLD),
        (0.92, Condition.CLEAR),
        (0.99, Condition.CLEAR),
    ],
)
def test_threshold_with_hysteresis(value: float, expected: Condition) -> None:
    params = _params("threshold", metric="accuracy", op="<", value=0.90, clear=0.92)
    (verdict,) = REGISTRY["threshold"].evaluate(params, _ctx({"v7": [(10, value)]})).verdicts
    assert verdict.condition is expected and verdict.value == value and verdict.labels == {"model": "v7"}


def test_threshold_without_clear_and_other_operators() -> None:
    params = _params("threshold", metric="gpu_spend_usd", op=">=", value=100)
    verdicts = REGISTRY["threshold"].evaluate(params, _ctx({"a": [(5, 100.0)], "b": [(5, 99.0)]})).verdicts
    assert [v.condition for v in verdicts] == [Condition.FIRE, Condition.CLEAR]


def test_threshold_window_aggregate_and_no_data() -> None:
    params = _params("threshold", metric="accuracy", op="<", value=0.9, over="1h", agg="avg", no_data_after="30m")
    ctx = _ctx({"fresh": [(3000, 0.8), (60, 0.96)], "stale": [(3500, 0.5)]})
    fresh, stale = REGISTRY["threshold"].evaluate(params, ctx).verdicts
    assert fresh.condition is Condition.FIRE and fresh.value == pytest.approx(0.88)
    assert stale.condition is Condition.NODATA


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"metric": "accuracy", "op": "<", "value": 0.9, "clear": 0.85}, "clear (0.85) must be >= value"),
        ({"metric": "accuracy", "op": ">", "value": 0.9, "clear": 0.95}, "clear (0.95) must be <= value"),
        ({"metric": "accuracy", "op": "<", "value": 0.9, "agg": "avg"}, "needs a window"),
        ({"metric": "accuracy", "op": "~", "value": 0.9}, "Input should be"),
        ({"metric": "trainAcc", "op": "<", "value": 0.9}, "snake_case"),
        ({"metric": "accuracy", "op": "<", "value": 0.9, "match": ['model=~"("']}, "invalid regular expression"),
    ],
)
def test_threshold_params_are_checked(params: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        REGISTRY["threshold"].params.model_validate(params)
    assert fragment in str(info.value)


def test_absent() -> None:
    params = _params("absent", metric="accuracy", match=['model="v7"'], after="1h")
    kind = REGISTRY["absent"]
    assert kind.evaluate(params, _ctx({"v7": [(600, 0.9)]})).verdicts[0].condition is Condition.CLEAR
    late = kind.evaluate(params, _ctx({"v7": [(7200, 0.9)]})).verdicts[0]
    assert late.condition is Condition.FIRE and late.value == 7200 and late.labels == {"model": "v7"}
    never = kind.evaluate(params, _ctx({})).verdicts[0]
    assert never.condition is Condition.FIRE and never.value is None and never.details["never"] is True


def _status(
    source: str, failures: int, last_success: datetime | None, first_run: datetime | None = None
) -> SourceStatus:
    return SourceStatus(
        "churn",
        source,
        "http_json",
        first_run or NOW - timedelta(days=1),
        NOW,
        last_success,
        "ok" if failures == 0 else "failed",
        "boom" if failures else None,
        0.1,
        failures,
        10,
        failures,
        1.0,
        None,
    )


def test_source_down() -> None:
    kind = REGISTRY["source_down"]
    params = _params("source_down", failures=3, no_success_for="2h")
    sources = [_status("eval", 3, NOW - timedelta(minutes=30)), _status("billing", 0, NOW - timedelta(minutes=1))]
    eval_v, billing_v = kind.evaluate(params, _ctx(sources=sources)).verdicts
    assert (eval_v.labels, eval_v.condition) == ({"source": "eval"}, Condition.FIRE)
    assert "3 failed runs in a row" in eval_v.details["reason"] and eval_v.details["last_error"] == "boom"
    assert billing_v.condition is Condition.CLEAR
    never_ok = [_status("eval", 1, None, first_run=NOW - timedelta(hours=3))]
    only = kind.evaluate(
        _params("source_down", source="eval", failures=5, no_success_for="2h"), _ctx(sources=never_ok)
    ).verdicts
    assert only[0].condition is Condition.FIRE and "no success since" in only[0].details["reason"]
    not_run = kind.evaluate(_params("source_down"), _ctx(sources=[])).verdicts
    assert {v.condition for v in not_run} == {Condition.NODATA}
