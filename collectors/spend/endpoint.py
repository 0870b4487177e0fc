"""What the HTTP spend sources share: the endpoint params, and which days a run (re)computes.

OpenCost and Prometheus answer for any time range, so these sources recompute whole days: on
the first run the last `backfill` days, afterwards every day since the last complete one, plus
the last `refresh` complete days again (late data and revisions), plus today so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from pydantic import Field, field_validator

from collectors.access import HttpAccess
from monitor.config.types import Duration
from monitor.spend.series import currency_problem, day_start, local_day, zone

MAX_DAYS_PER_RUN = 62


class EndpointParams(HttpAccess):
    """An HTTP endpoint, and the day bookkeeping of a spend source that queries it."""

    currency: str = "USD"

    @field_validator("url")
    @classmethod
    def _base(cls, value: str) -> str:
        return value.rstrip("/")  # paths are appended to it

    timezone: str = "UTC"
    backfill: Duration = Field(default=timedelta(days=3), description="days fetched on the first run")
    refresh: Duration = Field(default=timedelta(days=1), description="complete days fetched again each run")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        problem = currency_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("backfill", "refresh")
    @classmethod
    def _days(cls, value: timedelta) -> timedelta:
        if value % timedelta(days=1) or value > timedelta(days=MAX_DAYS_PER_RUN):
            raise ValueError(f"expected whole days up to {MAX_DAYS_PER_RUN}d, got {value}")
        return value


@dataclass(frozen=True, slots=True)
class DayWindow:
    """One local day to compute: [start, end) clipped to now."""

    day: date
    start: datetime
    end: datetime
    complete: bool


def days_to_fetch(
    now: datetime, tz: tzinfo, checkpoint: Mapping[str, Any], backfill: timedelta, refresh: timedelta
) -> list[DayWindow]:
    """The days this run computes, oldest first (at most MAX_DAYS_PER_RUN)."""
    today = local_day(now, tz)
    done = checkpoint.get("complete_through")
    if isinstance(done, str):
        first = min(date.fromisoformat(done) + timedelta(days=1), today - refresh)
    else:
        first = today - backfill
    first = max(first, today - timedelta(days=MAX_DAYS_PER_RUN - 1))
    out = []
    day = first
    while day <= today:
        start, stop = day_start(day, tz), day_start(day + timedelta(days=1), tz)
        out.append(DayWindow(day, start, min(stop, now), stop <= now))
        day += timedelta(days=1)
    return out


def day_checkpoint(
    windows: list[DayWindow], previous: Mapping[str, Any], now: datetime, **extra: Any
) -> dict[str, Any]:
    complete = [w.day for w in windows if w.complete]
    done = previous.get("complete_through")
    through = max([*complete, *([date.fromisoformat(done)] if isinstance(done, str) else [])], default=None)
    return {
        "version": 1,
        "complete_through": through.isoformat() if through else None,
        "horizon": windows[-1].day.isoformat() if windows else previous.get("horizon"),
        "data_version": now.isoformat(),
        **extra,
    }
