"""The alert lifecycle, table-driven on a frozen clock: (condition at t) -> state at t."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.model import AlertState, Condition
from alerts.state import Timing, new_instance, step, vanished

T0 = datetime(2026, 11, 20, tzinfo=UTC)
F, C, H, N = Condition.FIRE, Condition.CLEAR, Condition.HOLD, Condition.NODATA
IN, P, FI, R = AlertState.INACTIVE, AlertState.PENDING, AlertState.FIRING, AlertState.RESOLVED

CASES = [
    # name, timing, conditions one minute apart, expected states
    ("fires at once without for", Timing(), [F, F, C], [FI, FI, R]),
    ("pending until for has passed", Timing(timedelta(minutes=2)), [F, F, F, F, C], [P, P, FI, FI, R]),
    ("pending dropped when the condition stops", Timing(timedelta(minutes=5)), [F, F, C, F], [P, P, IN, P]),
    ("hysteresis: hold keeps firing", Timing(), [F, H, H, C], [FI, FI, FI, R]),
    ("hysteresis: hold does not start an alert", Timing(), [H, H, F], [IN, IN, FI]),
    ("hold while pending restarts the wait", Timing(timedelta(minutes=2)), [F, H, F, F, F], [P, IN, P, P, FI]),
    ("keep_firing_for delays resolution", Timing(keep_firing_for=timedelta(minutes=2)), [F, C, C, C], [FI, FI, FI, R]),
    (
        "keep_firing_for restarts when it fires again",
        Timing(keep_firing_for=timedelta(minutes=2)),
        [F, C, F, C, C, C],
        [FI, FI, FI, FI, FI, R],
    ),
    ("no data never resolves a firing alert", Timing(), [F, N, N, N, C], [FI, FI, FI, FI, R]),
    ("no data keeps a pending alert pending", Timing(timedelta(minutes=2)), [F, N, F], [P, P, FI]),
    ("no data on nothing stays nothing", Timing(), [N, N], [IN, IN]),
    ("re-fires after resolution", Timing(), [F, C, F], [FI, R, FI]),
]


@pytest.mark.parametrize(("name", "timing", "conditions", "expected"), CASES, ids=[c[0] for c in CASES])
def test_lifecycle(name: str, timing: Timing, conditions: list[Condition], expected: list[AlertState]) -> None:
    alert = new_instance("r", "fp", "p", {"alertname": "r"})
    states = []
    for minute, condition in enumerate(conditions):
        alert = step(alert, condition, float(minute), timing, T0 + timedelta(minutes=minute))
        states.append(alert.state)
    assert states == expected


def test_timestamps_and_values() -> None:
    timing = Timing(timedelta(minutes=1), timedelta(minutes=1))
    a = step(new_instance("r", "fp", "p", {}), F, 0.85, timing, T0)
    assert (a.state, a.active_at, a.value) == (P, T0, 0.85)
    a = step(a, F, 0.84, timing, T0 + timedelta(minutes=1))
    assert (a.state, a.fired_at, a.value) == (FI, T0 + timedelta(minutes=1), 0.84)
    a = step(a, C, 0.95, timing, T0 + timedelta(minutes=2))
    assert a.state is FI and a.value == 0.84, "during keep_firing_for the last firing value stays on show"
    a = step(a, C, 0.96, timing, T0 + timedelta(minutes=3))
    assert (a.state, a.resolved_at, a.value) == (R, T0 + timedelta(minutes=3), 0.96), (
        "resolution carries the value at resolution"
    )


def test_nodata_flag_and_acks() -> None:
    a = step(new_instance("r", "fp", "p", {}), F, 0.8, Timing(), T0)
    a = a.evolve(acked_by="ada", acked_at=T0)
    a = step(a, N, None, Timing(), T0 + timedelta(minutes=1))
    assert a.nodata and a.nodata_since == T0 + timedelta(minutes=1) and a.acked_by == "ada" and a.value == 0.8
    a = vanished(a, T0 + timedelta(minutes=2))
    assert a.state is FI and a.nodata_since == T0 + timedelta(minutes=1)
    a = step(a, F, 0.7, Timing(), T0 + timedelta(minutes=3))
    assert not a.nodata and a.nodata_since is None and a.acked_by == "ada"
    a = step(a, C, 0.95, Timing(), T0 + timedelta(minutes=4))
    assert a.state is R and a.acked_by is None, "an acknowledgement ends with the alert"
