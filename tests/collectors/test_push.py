"""The push source: expected series must have a fresh sample, else the source fails naming them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from collectors.push import KIND
from monitor.config.models import SourceConfig
from monitor.core.clock import FrozenClock
from monitor.core.types import Sample, SeriesKey, ms_from_datetime
from monitor.plans import SourcePlan
from monitor.runner import SourceRunner
from monitor.store.store import Store

ACCURACY = SeriesKey("churn", "accuracy", (("model", "churn-v7"),))
EXPECT_ACCURACY = {"metric": "accuracy", "labels": {"model": "churn-v7"}, "max_age": "1h"}


def push_plan(*expect: dict[str, Any]) -> SourcePlan:
    params = {"expect": list(expect)}
    return SourcePlan("churn", SourceConfig(name="nightly", kind="push", params=params), KIND.create(params))


def push(store: Store, clock: FrozenClock, key: SeriesKey, age: timedelta, value: float = 0.9) -> None:
    store.samples.append([Sample(key, ms_from_datetime(clock.now() - age), value)])


CASES = [
    # (age of the newest sample or None, outcome, fragments of the error)
    ("fresh", timedelta(minutes=5), "ok", []),
    ("exactly-max-age", timedelta(hours=1), "ok", []),
    ("missing", None, "failed", ['no sample of accuracy{project="churn",model="churn-v7"} has been pushed yet']),
    (
        "stale",
        timedelta(hours=2, minutes=30),
        "failed",
        [
            'newest sample of accuracy{project="churn",model="churn-v7"} is 2h30m old',
            "max_age 1h",
            "at 2026-11-20T09:30:00+00:00",
        ],
    ),
]


@pytest.mark.parametrize(("age", "outcome", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_freshness(store: Store, clock: FrozenClock, age: timedelta | None, outcome: str, fragments: list[str]) -> None:
    if age is not None:
        push(store, clock, ACCURACY, age + timedelta(days=1), value=0.5)  # an older sample too
        push(store, clock, ACCURACY, age)
    runner = SourceRunner(store, clock)

    record = runner.run(push_plan(EXPECT_ACCURACY))

    assert record.outcome == outcome
    for fragment in fragments:
        assert record.error is not None and fragment in record.error
    if outcome == "ok":
        assert record.error is None and record.samples == 0
    status = store.sources.status("churn", "nightly")
    assert status is not None and status.last_outcome == outcome


def test_only_the_problem_series_are_named(store: Store, clock: FrozenClock) -> None:
    push(store, clock, ACCURACY, timedelta(minutes=1))
    push(store, clock, SeriesKey("churn", "recall"), timedelta(days=3))
    # A sample with other labels does not stand in for the expected series.
    push(store, clock, SeriesKey("churn", "precision", (("model", "churn-v6"),)), timedelta(minutes=1))
    runner = SourceRunner(store, clock)
    plan = push_plan(
        EXPECT_ACCURACY,
        {"metric": "recall", "max_age": "1d"},
        {"metric": "precision", "labels": {"model": "churn-v7"}},
    )

    record = runner.run(plan)

    assert record.outcome == "failed"
    assert record.error == (
        'newest sample of recall{project="churn"} is 3d old (at 2026-11-17T12:00:00+00:00; max_age 1d); '
        'no sample of precision{project="churn",model="churn-v7"} has been pushed yet'
    )


def test_a_stale_series_recovers_when_a_sample_arrives(store: Store, clock: FrozenClock) -> None:
    runner = SourceRunner(store, clock)
    plan = push_plan(EXPECT_ACCURACY)
    push(store, clock, ACCURACY, timedelta(minutes=10))
    assert runner.run(plan).ok

    clock.advance(timedelta(hours=2))
    stale = runner.run(plan)
    assert stale.outcome == "failed" and stale.error is not None and "2h10m old" in stale.error

    push(store, clock, ACCURACY, timedelta(0))
    assert runner.run(plan).ok
    status = store.sources.status("churn", "nightly")
    assert status is not None and (status.runs_total, status.failures_total, status.consecutive_failures) == (
        3,
        1,
        0,
    )


def test_no_expectations_is_always_ok(store: Store, clock: FrozenClock) -> None:
    assert SourceRunner(store, clock).run(push_plan()).ok
