"""What reconciling one project changes in its findings history, worked out without touching the store.

`diff_findings` compares the project's open finding rows with the findings matched now and says
which findings open, which rows change (and the events that say how), and which resolve. The sync's
writer applies the result in one transaction; every rule about *what* changed lives here, where a
test can call it with plain values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.stack.findings import Finding, IgnoreRule, expired, variant
from monitor.stack.inventory.model import Inventory

TRACKED_FIELDS = ("vuln_id", "versions", "state", "severity", "fixed_in", "variant")
"""Columns whose change is an event of the finding's history (the rest are refreshed silently)."""


@dataclass(frozen=True, slots=True)
class EventDraft:
    at: datetime
    kind: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Opened:
    finding: Finding
    values: Mapping[str, Any]
    """Columns of the new row, but for `exposed_since`, which the writer reads from the intervals."""
    events: Sequence[EventDraft]


@dataclass(frozen=True, slots=True)
class Updated:
    row_id: int
    values: Mapping[str, Any]
    events: Sequence[EventDraft]
    changed: bool


@dataclass(frozen=True, slots=True)
class Resolved:
    row_id: int
    resolution: str
    event: EventDraft


@dataclass(slots=True)
class FindingsDiff:
    matched: list[Opened | Updated] = field(default_factory=list)
    """In the order of the findings, so the history's events keep that order."""
    resolved: list[Resolved] = field(default_factory=list)

    @property
    def opened(self) -> list[Opened]:
        return [m for m in self.matched if isinstance(m, Opened)]

    @property
    def changed(self) -> int:
        return sum(1 for m in self.matched if isinstance(m, Updated) and m.changed)


def finding_values(f: Finding, inventory: Inventory) -> dict[str, Any]:
    return {
        "package": f.package,
        "vuln_id": f.key,
        "ids": list(f.ids),
        "versions": list(f.versions),
        "variant": variant(inventory, f.package),
        "state": f.state,
        "severity": f.rating,
        "score": f.score,
        "summary": f.summary[:4000],
        "fixed_in": f.fixed_in,
        "fix_available_at": f.fix_available_at,
        "published": f.published,
        "detail": f.to_doc(inventory),
    }


def diff_findings(
    open_rows: Sequence[Any],
    findings: Sequence[Finding],
    merged: Inventory | None,
    *,
    project: str,
    revision: int | None,
    at: datetime,
    now: datetime,
) -> FindingsDiff:
    """The changes that bring `open_rows` (the project's open findings) in line with `findings`.

    `at` dates what a new inventory caused (when it was read); ignore changes date from `now`."""
    diff = FindingsDiff()
    unmatched = {r.id: r for r in open_rows}
    for finding in findings:
        assert merged is not None  # findings come from an inventory
        row = matching_row(unmatched.values(), finding)
        values = finding_values(finding, merged)
        if row is None:
            diff.matched.append(_opened(finding, values, project, revision, at, now))
            continue
        del unmatched[row.id]
        diff.matched.append(_updated(row, finding, values, revision, at, now))
    for row in unmatched.values():
        resolution = resolution_of(row, merged)
        installed = list(merged.versions(row.package)) if merged is not None else []
        detail = {"resolution": resolution, "installed": installed}
        diff.resolved.append(Resolved(row.id, resolution, EventDraft(at, "resolved", detail)))
    return diff


def _opened(
    finding: Finding, values: dict[str, Any], project: str, revision: int | None, at: datetime, now: datetime
) -> Opened:
    ignore = finding.ignore
    row = {
        **values,
        "project": project,
        "first_seen_at": at,
        "last_seen_at": now,
        "ignored": ignore is not None,
        "ignore_reason": ignore.reason if ignore else None,
        "ignore_expires": ignore.expires if ignore else None,
        "ignored_at": at if ignore else None,
        "advisory_revision": revision,
    }
    opened = {
        "versions": list(finding.versions),
        "severity": finding.rating,
        "state": finding.state,
        "fixed_in": finding.fixed_in,
        "ids": list(finding.ids),
        "advisory_revision": revision,
    }
    events = [EventDraft(at, "opened", opened)]
    if ignore is not None:
        events.append(EventDraft(at, "ignored", ignore.to_doc()))
    return Opened(finding, row, events)


def _updated(
    row: Any, finding: Finding, values: dict[str, Any], revision: int | None, at: datetime, now: datetime
) -> Updated:
    update: dict[str, Any] = {"last_seen_at": now}
    events: list[EventDraft] = []
    changes = {k: [getattr(row, k), values[k]] for k in TRACKED_FIELDS if getattr(row, k) != values[k]}
    if changes or row.detail != values["detail"]:
        update.update(values)
    if changes:
        events.append(EventDraft(at, "changed", {**changes, "advisory_revision": revision}))
    ignore = finding.ignore
    if ignore is not None and (
        not row.ignored or row.ignore_reason != ignore.reason or row.ignore_expires != ignore.expires
    ):
        update.update(ignored=True, ignore_reason=ignore.reason, ignore_expires=ignore.expires, ignored_at=now)
        events.append(EventDraft(now, "ignored", ignore.to_doc()))
    elif ignore is None and row.ignored:
        lapsed = row.ignore_expires is not None and row.ignore_expires < now.date()
        update.update(ignored=False, ignored_at=None)
        was = {"reason": row.ignore_reason, "expires": str(row.ignore_expires)}
        reason = "expired" if lapsed else "removed from the configuration"
        events.append(EventDraft(now, "unignored", {"reason": reason, "was": was}))
    return Updated(row.id, update, events, bool(changes))


def matching_row(rows: Iterable[Any], finding: Finding) -> Any | None:
    """The open row of this vulnerability: same package and main ID, or any shared ID (merged aliases)."""
    candidates = [r for r in rows if r.package == finding.package]
    for row in candidates:
        if row.vuln_id == finding.key:
            return row
    ids = set(finding.ids)
    for row in candidates:
        if ids & set(row.ids or []):
            return row
    return None


def resolution_of(row: Any, merged: Inventory | None) -> str:
    if merged is None:
        return "source_removed"
    versions = merged.versions(row.package)
    if not versions:
        return "removed"
    if set(versions) != set(row.versions or []):
        return "upgraded"
    return "advisory_changed"


def event_row(finding_id: int, project: str, event: EventDraft) -> dict[str, Any]:
    return {
        "finding_id": finding_id,
        "project": project,
        "at": event.at,
        "kind": event.kind,
        "detail": json.loads(json.dumps(event.detail, default=str)),
    }


def summary(findings: Sequence[Finding], ignores: Sequence[IgnoreRule], now: datetime) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    for f in findings:
        bucket = "ignored" if f.ignored else f.state
        counts.setdefault(bucket, {}).setdefault(f.rating, 0)
        counts[bucket][f.rating] += 1
    return {
        "findings": counts,
        "expired_ignores": [r.to_doc() for r in expired(ignores, now)],
    }
