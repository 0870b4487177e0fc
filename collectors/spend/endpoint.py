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

import httpx
from pydantic import Field, field_validator

from collectors.base import CollectContext, Params, env_value
from collectors.http import headers_from_env
from monitor.config.types import Duration
from monitor.spend.series import currency_problem, day_start, local_day, zone

MAX_DAYS_PER_RUN = 62


class BasicAuthEnv(Params):
    username_env: str
    password_env: str


class EndpointParams(Params):
    """An HTTP endpoint, and the day bookkeeping of a spend source that queries it."""

    url: str = Field(description="base URL, e.g. http://opencost.opencost:9003")
    headers: dict[str, str] = Field(default_factory=dict, description="values may use ${ENV_VAR}")
    basic_auth: BasicAuthEnv | None = None
    verify_tls: bool = True
    ca_file: str | None = None
    currency: str = "USD"
    timezone: str = "UTC"
    backfill: Duration = Field(default=timedelta(days=3), description="days fetched on the first run")
    refresh: Duration = Field(default=timedelta(days=1), description="complete days fetched again each run")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

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

    def client(self, ctx: CollectContext) -> httpx.Client:
        auth = None
        if self.basic_auth:
            auth = (
                env_value(ctx.env, self.basic_auth.username_env, "basic auth user"),
                env_value(ctx.env, self.basic_auth.password_env, "basic auth password"),
            )
        verify: bool | str = self.ca_file if (self.verify_tls and self.ca_file) else self.verify_tls
        return ctx.http.client(verify=verify, headers=headers_from_env(self.headers, ctx.env), auth=auth)


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
