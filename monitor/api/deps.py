"""Dependencies shared by the routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from monitor.core.durations import parse_duration
from monitor.core.errors import InvalidInput, Issue
from monitor.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def parse_time(value: str, name: str) -> datetime:
    """RFC 3339 or Unix seconds, as Prometheus accepts."""
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            [Issue(name, f"expected RFC 3339 time or Unix seconds, got {value!r}", field=name)],
            f"invalid {name}",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_step(value: str) -> int:
    """A step as a duration ("1h", "30s") or seconds; returns milliseconds."""
    try:
        number: float | str = float(value)
    except ValueError:
        number = value
    try:
        step = parse_duration(number)
    except ValueError as exc:
        raise InvalidInput([Issue("step", str(exc), field="step")], "invalid step") from None
    ms = int(step.total_seconds() * 1000)
    if ms <= 0:
        raise InvalidInput([Issue("step", "step must be positive", field="step")], "invalid step")
    return ms
