"""The patch SLA: how long a fix may stay unapplied per severity once it is available, and what
that makes a finding's due date. One model for the configuration's `stack.sla`, the `patch_sla`
rule kind's params, the API, the pages, `/metrics` and the audit report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from monitor.config.base import StrictModel
from monitor.config.types import Duration

RATED = ("critical", "high", "medium", "low")


class Sla(StrictModel):
    critical: Duration = timedelta(days=7)
    high: Duration = timedelta(days=30)
    medium: Duration = timedelta(days=90)
    low: Duration = timedelta(days=180)
    unknown: Duration | None = Field(default=None, description="findings without a severity (default: no SLA)")

    def for_rating(self, rating: str) -> timedelta | None:
        """The time allowed for a finding of this CVSS rating; None when it has no SLA (rating `none`)."""
        if rating in RATED:
            value: timedelta = getattr(self, rating)
            return value
        if rating == "none":
            return None
        return self.unknown

    def due_at(self, rating: str, state: str, fix_available_at: datetime | None) -> datetime | None:
        """When an affected finding's fix must be applied; None when no SLA runs for it."""
        allowed = self.for_rating(rating)
        if fix_available_at is None or allowed is None or state != "affected":
            return None
        return fix_available_at + allowed

    def due_fields(self, doc: dict[str, Any], now: datetime) -> dict[str, Any]:
        """`due_at` and `overdue` of a finding document (ISO times, `status` open or fixed)."""
        fix_at = doc.get("fix_available_at")
        due = self.due_at(doc["severity"], doc["state"], datetime.fromisoformat(fix_at) if fix_at else None)
        if due is None:
            return {"due_at": None, "overdue": False}
        return {"due_at": due.isoformat(), "overdue": doc["status"] == "open" and now > due}
