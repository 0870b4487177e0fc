"""The alert lifecycle as a pure function: (previous instance, verdict, rule timing, now) -> next.

    inactive --FIRE--> pending --(held for `for`)--> firing --CLEAR (after keep_firing_for)--> resolved
                  \\_________ for: 0 ___________/        |
    HOLD (hysteresis band) keeps the current state; NODATA never resolves: a firing alert stays
    firing, flagged no-data, until data says otherwise. A pending alert with NODATA is dropped
    (back to inactive), as Prometheus drops a pending alert whose series is absent.

A pending alert whose condition stops holding (CLEAR or HOLD) goes back to inactive: `for` asks
for the firing condition to hold the whole time. An acknowledgement ends when the alert resolves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.model import AlertInstance, AlertState, Condition


@dataclass(frozen=True, slots=True)
class Timing:
    for_: timedelta = timedelta(0)
    keep_firing_for: timedelta = timedelta(0)


def new_instance(rule: str, fingerprint: str, project: str | None, labels: Mapping[str, str]) -> AlertInstance:
    return AlertInstance(rule, fingerprint, project, dict(labels), {}, AlertState.INACTIVE)


def step(
    prev: AlertInstance, condition: Condition, value: float | None, timing: Timing, now: datetime
) -> AlertInstance:
    """The next state of one alert instance."""
    state = prev.state
    if condition is Condition.NODATA:
        if state is AlertState.PENDING:
            # as in Prometheus: a pending alert whose series is absent is dropped, and `for` starts
            # again when data returns (a stale point must not carry it to firing)
            return prev.evolve(state=AlertState.INACTIVE, active_at=None, last_eval_at=now)
        if state is AlertState.FIRING:
            return prev.evolve(nodata=True, nodata_since=prev.nodata_since or now, last_eval_at=now)
        return prev.evolve(last_eval_at=now)
    seen = prev.evolve(nodata=False, nodata_since=None, last_eval_at=now, value=value)
    if state in (AlertState.INACTIVE, AlertState.RESOLVED):
        if condition is not Condition.FIRE:
            return prev.evolve(last_eval_at=now)
        if timing.for_ <= timedelta(0):
            return _fire(seen.evolve(active_at=now, resolved_at=None), now)
        return seen.evolve(
            state=AlertState.PENDING, active_at=now, fired_at=None, resolved_at=None, keep_firing_since=None
        )
    if state is AlertState.PENDING:
        if condition is not Condition.FIRE:
            return seen.evolve(state=AlertState.INACTIVE, active_at=None)
        if prev.active_at is not None and now - prev.active_at >= timing.for_:
            return _fire(seen, now)
        return seen
    # firing
    if condition is Condition.FIRE or condition is Condition.HOLD:
        return seen.evolve(keep_firing_since=None)
    since = prev.keep_firing_since or now
    if now - since < timing.keep_firing_for:
        # keep the last firing value on show while the clear condition waits out keep_firing_for
        return seen.evolve(keep_firing_since=since, value=prev.value)
    return seen.evolve(
        state=AlertState.RESOLVED,
        resolved_at=now,
        keep_firing_since=None,
        acked_by=None,
        acked_at=None,
        ack_comment=None,
    )


def _fire(instance: AlertInstance, now: datetime) -> AlertInstance:
    return instance.evolve(
        state=AlertState.FIRING, fired_at=now, keep_firing_since=None, acked_by=None, acked_at=None, ack_comment=None
    )


def vanished(prev: AlertInstance, now: datetime) -> AlertInstance:
    """An alert whose series no longer appears at all: no data, never a silent resolution."""
    return step(prev, Condition.NODATA, None, Timing(), now)
