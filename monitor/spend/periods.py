"""Budget periods: monthly, quarterly or annual, starting on a reset day, in a time zone. Pure.

A monthly budget with `reset_day: 15` runs from the 15th of one month (00:00 local time) to the
15th of the next; a quarterly one with `start_month: 2` runs Feb-Apr, May-Jul, Aug-Oct, Nov-Jan.
Period boundaries are local midnights, so a budget in America/Los_Angeles still counts
2026-11-30 20:00 PST (2026-12-01 04:00 UTC) towards November.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum

from monitor.spend.series import day_start, days_between, local_day


class PeriodKind(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"

    @property
    def months(self) -> int:
        return {"monthly": 1, "quarterly": 3, "annual": 12}[self.value]


@dataclass(frozen=True, slots=True)
class Period:
    """[first, end) in local days; `start`/`stop` are the instants those days begin."""

    kind: PeriodKind
    first: date
    end: date
    """The first day of the next period (exclusive)."""
    tz: tzinfo

    @property
    def start(self) -> datetime:
        """In UTC: arithmetic on two datetimes of one zone would ignore a DST change between them."""
        return day_start(self.first, self.tz).astimezone(UTC)

    @property
    def stop(self) -> datetime:
        return day_start(self.end, self.tz).astimezone(UTC)

    @property
    def last(self) -> date:
        return date.fromordinal(self.end.toordinal() - 1)

    @property
    def days(self) -> list[date]:
        return days_between(self.first, self.last)

    @property
    def length(self) -> int:
        return (self.end - self.first).days

    @property
    def label(self) -> str:
        """2026-11 for a calendar month, 2026-Q4, 2026; otherwise the first day."""
        if self.first.day == 1:
            if self.kind is PeriodKind.MONTHLY:
                return f"{self.first:%Y-%m}"
            if self.kind is PeriodKind.QUARTERLY and self.first.month in (1, 4, 7, 10):
                return f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"
            if self.kind is PeriodKind.ANNUAL and self.first.month == 1:
                return f"{self.first.year}"
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def contains(self, day: date) -> bool:
        return self.first <= day < self.end

    def previous(self) -> Period:
        first = _add_months(self.first, -self.kind.months)
        return Period(self.kind, first, self.first, self.tz)

    def next(self) -> Period:
        return Period(self.kind, self.end, _add_months(self.end, self.kind.months), self.tz)

    def elapsed_fraction(self, now: datetime) -> float:
        """How much of the period has passed at `now`, between 0 and 1."""
        total = (self.stop - self.start).total_seconds()
        done = (now - self.start).total_seconds()
        return min(1.0, max(0.0, done / total))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, day.day)


def period_at(moment: datetime, tz: tzinfo, kind: PeriodKind, reset_day: int = 1, start_month: int = 1) -> Period:
    """The period containing `moment` (reset_day 1-28, start_month 1-12 for quarters and years)."""
    if not 1 <= reset_day <= 28:
        raise ValueError(f"reset_day must be between 1 and 28, got {reset_day}")
    if not 1 <= start_month <= 12:
        raise ValueError(f"start_month must be between 1 and 12, got {start_month}")
    today = local_day(moment, tz)
    step = kind.months
    anchor = start_month if kind is not PeriodKind.MONTHLY else 1
    # The latest period start on or before today: candidate months are anchor + k * step.
    index = today.year * 12 + (today.month - 1)
    offset = (index - (anchor - 1)) % step
    first_index = index - offset
    first = date(first_index // 12, first_index % 12 + 1, reset_day)
    if first > today:
        first = _add_months(first, -step)
    return Period(kind, first, _add_months(first, step), tz)
