"""A finding's status and SLA outcome at a moment.

SLA: a fix available since `fix_available_at` is due `sla[severity]` later (affected findings
only; `unknown` severity has no SLA unless configured). Outcomes: `met` (fixed by the due date),
`missed` (fixed later), `within` (open, not yet due), `overdue` (open past due), `excepted` (a
valid ignore covers it: open and ignored, or fixed late while ignores covered the whole time past
due), `none` (no SLA: no fix known, undetermined, or a severity without SLA). Compliance is
(met + within) / (met + missed + within + overdue); excepted and no-SLA findings are counted apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from monitor.reports.advisories_then import AdvisoryThen, GroupKey
from monitor.reports.replay import FindingAt, IgnoreSpan, covered, finding_at
from monitor.stack.evidence import FindingRecord

STATUSES = ("open", "overdue", "fixed", "ignored")
SLA_OUTCOMES = ("met", "missed", "within", "overdue", "excepted", "none")


def _fix_available_at(
    record: FindingRecord, fixed_in: str | None, uploads: Mapping[tuple[str, str], datetime]
) -> datetime | None:
    """As the stack computes it: the later of the advisory's publication and the fix's upload."""
    if fixed_in is None:
        return None
    if fixed_in == record.fixed_in:
        return record.fix_available_at
    moments = [m for m in (record.published, uploads.get((record.package, fixed_in))) if m is not None]
    return max(moments) if moments else None


def _ignore_doc(span: IgnoreSpan, as_of: datetime) -> dict[str, Any]:
    """The newest ignore up to `as_of` and whether it is in force, expired or gone."""
    lapse = datetime.combine(span.expires + timedelta(days=1), time(), UTC) if span.expires else None
    if span.end is None and span.valid_at(as_of):
        state = "active"
    elif span.ended_by == "expired" or (lapse is not None and lapse <= (span.end or as_of)):
        state = "expired"
    elif span.ended_by == "resolved":
        state = "ended with the fix"
    else:
        state = "removed"
    return {"reason": span.reason, "expires": iso(span.expires), "since": iso(span.start), "state": state}


@lru_cache(maxsize=1 << 16)
def iso_text(value: datetime | date) -> str:
    return value.isoformat()


def iso(value: datetime | date | None) -> str | None:
    """ISO text, cached: a report prints the same few moments (sync times, fix dates) many times."""
    return iso_text(value) if value is not None else None


def _days(seconds: float) -> float:
    return round(seconds / 86400, 2)


VulnerabilityPart = tuple[dict[str, Any], "datetime | None"]
"""The fields every exposure to the same vulnerability state shares, and its due date (the `aliases`
list is shared by those documents: a report is read, never edited)."""


def _vulnerability_part(
    record: FindingRecord,
    then: FindingAt,
    sla: Mapping[str, timedelta | None],
    uploads: Mapping[tuple[str, str], datetime],
    named: AdvisoryThen | None,
) -> VulnerabilityPart:
    fix_at = _fix_available_at(record, then.fixed_in, uploads)
    allowed = sla.get(then.severity, sla.get("unknown"))
    due = fix_at + allowed if fix_at is not None and allowed is not None and then.state == "affected" else None
    ids = named.names if named is not None else record.ids or (then.vuln_id,)
    score = None if then.severity_changed_since else record.score
    if named is not None and named.rating == then.severity:
        score = named.score
    part = {
        "id": then.vuln_id,
        "aliases": [i for i in ids if i != then.vuln_id],
        "summary": record.summary,
        "severity": then.severity,
        "score": score,
        "state": then.state,
        "fixed_in": then.fixed_in,
        "fix_available_at": iso(fix_at),
        "sla_seconds": int(allowed.total_seconds()) if allowed is not None and due is not None else None,
        "due_at": iso(due),
    }
    return part, due


def finding_doc(
    record: FindingRecord,
    as_of: datetime,
    sla: Mapping[str, timedelta | None],
    uploads: Mapping[tuple[str, str], datetime],
    shared: dict[tuple[Any, ...], VulnerabilityPart] | None = None,
    advisories_then: Mapping[GroupKey, AdvisoryThen] | None = None,
) -> dict[str, Any]:
    """One finding as it stood at `as_of`, with its SLA outcome.

    `shared` (one per report) keeps the part that depends only on the vulnerability's state: a
    fleet repeats the same few hundred vulnerabilities across thousands of projects.
    """
    then = finding_at(record, as_of)
    key = (record.vuln_id, record.ids, record.summary, record.score, record.fixed_in, record.fix_available_at,
           record.published, record.package, then.vuln_id, then.severity, then.state, then.fixed_in,
           then.severity_changed_since)  # fmt: skip
    found = shared.get(key) if shared is not None else None
    if found is None:
        named = advisories_then.get((record.ids, record.package)) if advisories_then is not None else None
        found = _vulnerability_part(record, then, sla, uploads, named)
        if shared is not None:
            shared[key] = found
    part, due = found
    resolved_at = record.resolved_at
    fixed = resolved_at is not None and resolved_at <= as_of
    ignores = then.ignores
    latest = ignores[-1] if ignores else None
    ignored_now = not fixed and latest is not None and latest.end is None and latest.valid_at(as_of)
    end = resolved_at if fixed and resolved_at is not None else as_of

    if fixed:
        status = "fixed"
    elif ignored_now:
        status = "ignored"
    elif due is not None and as_of > due:
        status = "overdue"
    else:
        status = "open"
    if due is None:
        outcome = "none"
    elif status == "ignored":
        outcome = "excepted"
    elif fixed and end <= due:
        outcome = "met"
    elif fixed:
        outcome = "excepted" if covered(ignores, due, end) else "missed"
    else:
        outcome = "overdue" if status == "overdue" else "within"

    exposed_from = record.exposed_since or record.first_seen_at
    return {
        "finding": record.id,
        "package": record.package,
        "versions": list(then.versions),
        "variant": then.variant,
        **part,
        "first_seen_at": iso(record.first_seen_at),
        "exposed_since": iso(record.exposed_since),
        "fixed_at": iso(resolved_at) if fixed else None,
        "resolution": record.resolution if fixed else None,
        "days_exposed": _days(max(0.0, (end - exposed_from).total_seconds())),
        "days_overdue": _days((end - due).total_seconds()) if due is not None and end > due else None,
        "status": status,
        "sla": outcome,
        "ignore": _ignore_doc(latest, as_of) if latest is not None else None,
        "advisory_revision": then.advisory_revision,
    }


# --- the report -----------------------------------------------------------------------------------


def compliance(outcomes: Sequence[str]) -> dict[str, Any]:
    """Counts per SLA outcome and the share of findings with an SLA that kept it."""
    counts = dict.fromkeys(SLA_OUTCOMES, 0)
    for outcome in outcomes:
        counts[outcome] += 1
    kept = counts["met"] + counts["within"]
    judged = kept + counts["missed"] + counts["overdue"]
    return {**counts, "judged": judged, "rate": round(kept / judged, 4) if judged else None}
