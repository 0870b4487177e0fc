"""How spend is stored: one sample per (source, attributed project, day), shared by collectors and readers.

A spend source (focus, opencost, dcgm) lives in one project (often a platform or finops project)
but reads cost for many: every reading carries the `attributed_project` label naming the project
the cost belongs to, and the `source` label naming the source, so two sources of one project never
overwrite each other. Rows that no rule attributes are stored under `__unattributed__`; OpenCost's
idle cluster cost under `__idle__`.

Granularity: one sample per day, at the instant the day starts in the source's `timezone`
(midnight local time, as an epoch timestamp). Re-reading a day sends the same (series, ts) again,
which replaces the stored value, so re-ingesting a file never double counts.

Stored metrics (exported as `mlmon_<name>`):

    spend_<currency>      cost, labels basis (billed|effective|allocated|estimated),
                          scope (gpu|other|purchase|credit|adjustment)
    gpu_usage_seconds     GPU-seconds held: billed GPU-hours (FOCUS), allocated (OpenCost, DCGM)
    gpu_busy_seconds      GPU-seconds busy (OpenCost gpuHours x efficiency, DCGM busy time);
                          busy_metric names the metric when it is a fallback (DCGM_FI_DEV_GPU_UTIL)
    spend_rows            billing rows behind the day's figures (FOCUS)
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.core.naming import metric_name_problem
from monitor.core.types import datetime_from_ms, ms_from_datetime

SOURCE = "source"
ATTRIBUTED = "attributed_project"
BASIS = "basis"
SCOPE = "scope"
BUSY_METRIC = "busy_metric"
"""Label of busy readings read from a coarser fallback metric (its name): pages say so."""

UNATTRIBUTED = "__unattributed__"
IDLE = "__idle__"
RESERVED_ATTRIBUTIONS = frozenset({UNATTRIBUTED, IDLE})

GPU_USAGE = "gpu_usage_seconds"
GPU_BUSY = "gpu_busy_seconds"
ROWS = "spend_rows"

SPEND_KINDS = frozenset({"focus", "opencost", "dcgm"})
"""Source kinds whose readings follow this layout."""

_CURRENCY = re.compile(r"[A-Z]{3}")


class Basis(StrEnum):
    """Which cost a spend sample holds."""

    BILLED = "billed"  # FOCUS BilledCost: what the invoice charges (cash basis)
    EFFECTIVE = "effective"  # FOCUS EffectiveCost: amortised, after discounts and commitments
    ALLOCATED = "allocated"  # OpenCost allocation cost
    ESTIMATED = "estimated"  # DCGM GPU time x rate card


class Scope(StrEnum):
    """What a cost is for. Usage (and tax) is GPU or other spend; FOCUS purchases (commitments,
    upfront fees), credits and adjustments are kept apart so pages show them and budgets may
    exclude them."""

    GPU = "gpu"
    OTHER = "other"
    PURCHASE = "purchase"
    CREDIT = "credit"
    ADJUSTMENT = "adjustment"


CHARGE_SCOPES = frozenset({Scope.PURCHASE, Scope.CREDIT, Scope.ADJUSTMENT})


def currency_problem(code: str) -> str | None:
    if not _CURRENCY.fullmatch(code):
        return f"expected an ISO 4217 currency code of three capital letters (USD, EUR), got {code!r}"
    return None


@lru_cache(maxsize=64)
def spend_metric(currency: str) -> str:
    """`spend_usd` for USD. The currency is part of the name, so amounts in two currencies are
    two metrics and can never be summed by accident."""
    problem = currency_problem(currency)
    if problem:
        raise ValueError(problem)
    name = f"spend_{currency.lower()}"
    assert metric_name_problem(name) is None, name
    return name


def currency_of_metric(metric: str) -> str | None:
    """USD for `spend_usd`, None for any other metric."""
    if metric.startswith("spend_") and len(metric) == 9 and metric[6:].isalpha() and metric[6:].islower():
        return metric[6:].upper()
    return None


@lru_cache(maxsize=256)
def zone(name: str) -> tzinfo:
    """The tz database zone `name` (raises ValueError naming it when unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (expected a tz database name like UTC or Europe/Berlin)") from exc


def day_start(day: date, tz: tzinfo) -> datetime:
    """The instant `day` begins in `tz`, in UTC (subtracting two datetimes of one zone would
    ignore a daylight-saving change between them)."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def day_start_ms(day: date, tz: tzinfo) -> int:
    return ms_from_datetime(day_start(day, tz))


def local_day(moment: datetime, tz: tzinfo) -> date:
    """The calendar day of `moment` in `tz`."""
    return moment.astimezone(tz).date()


def day_of_ms(ts_ms: int, tz: tzinfo) -> date:
    """The day a stored daily sample belongs to.

    Samples sit at a day's start; taking the date of the instant half a day later makes the
    answer immune to a sample that was moved to the start of its hour by downsampling.
    """
    return (datetime_from_ms(ts_ms) + timedelta(hours=12)).astimezone(tz).date()


def days_between(first: date, last: date) -> list[date]:
    """Every day from `first` to `last`, both included."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
