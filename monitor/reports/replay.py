"""A finding as it stood at a past moment, replayed from its append-only event log.

The stored row holds the newest values; every `changed` event after `as_of` is undone (newest
first), so the severity, state, fix, versions and build are those of that moment. Ignores are
intervals between `ignored` and `unignored` events (a newer `ignored` replaces, the fix ends one),
valid through their expiry date (UTC): an ignore whose date has passed is expired even before a
sync wrote the `unignored` event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from monitor.stack.evidence import FindingEvent, FindingRecord

_REPLAYED = ("vuln_id", "versions", "state", "severity", "fixed_in", "variant")


@dataclass(frozen=True, slots=True)
class IgnoreSpan:
    """An ignore in force from `start` until `end` (an `unignored`/newer `ignored`/`resolved` event)."""

    start: datetime
    end: datetime | None
    reason: str
    expires: date | None
    ended_by: str | None
    """`expired`, `removed from the configuration`, `replaced`, `resolved`; None while in force."""

    @property
    def valid_until(self) -> datetime | None:
        """The end of its validity: its expiry date ends at midnight UTC, or its end event."""
        lapse = datetime.combine(self.expires + timedelta(days=1), time(), UTC) if self.expires else None
        ends = [t for t in (lapse, self.end) if t is not None]
        return min(ends) if ends else None

    def valid_at(self, moment: datetime) -> bool:
        until = self.valid_until
        return self.start <= moment and (until is None or moment < until)


class FindingAt(NamedTuple):
    """A finding's values at a moment."""

    vuln_id: str
    versions: tuple[str, ...]
    state: str
    severity: str
    fixed_in: str | None
    variant: str | None
    severity_changed_since: bool
    ignores: tuple[IgnoreSpan, ...]
    advisory_revision: int | None


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value and value != "None":
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def ignore_spans(
    events: Sequence[FindingEvent], as_of: datetime, resolved_at: datetime | None = None
) -> tuple[IgnoreSpan, ...]:
    """The ignores of a finding up to `as_of`, as intervals (the fix ends the last one)."""
    if not events:
        return ()
    spans: list[IgnoreSpan] = []
    current: dict[str, Any] | None = None

    def close(at: datetime, why: str) -> None:
        nonlocal current
        if current is not None:
            spans.append(IgnoreSpan(current["start"], at, current["reason"], current["expires"], why))
            current = None

    for event in events:
        if event.at > as_of:
            break
        if event.kind == "ignored":
            close(event.at, "replaced")
            current = {
                "start": event.at,
                "reason": str(event.detail.get("reason") or ""),
                "expires": _date(event.detail.get("expires")),
            }
        elif event.kind == "unignored":
            close(event.at, str(event.detail.get("reason") or "removed from the configuration"))
        elif event.kind == "resolved":
            close(event.at, "resolved")
    if resolved_at is not None and resolved_at <= as_of:
        close(resolved_at, "resolved")
    if current is not None:
        spans.append(IgnoreSpan(current["start"], None, current["reason"], current["expires"], None))
    return tuple(spans)


def finding_at(record: FindingRecord, as_of: datetime) -> FindingAt:
    """Undo every change recorded after `as_of`, newest first."""
    if not record.events:  # most findings: nothing but `opened` (and `resolved`), which the row holds
        return FindingAt(
            record.vuln_id, tuple(record.versions), record.state, record.severity, record.fixed_in,
            record.variant, False, (), record.advisory_revision,
        )  # fmt: skip
    values: dict[str, Any] = {
        "vuln_id": record.vuln_id,
        "versions": tuple(record.versions),
        "state": record.state,
        "severity": record.severity,
        "fixed_in": record.fixed_in,
        "variant": record.variant,
    }
    severity_changed = False
    revision = record.advisory_revision
    for event in record.events:
        if event.at > as_of:
            break
        if isinstance(event.detail.get("advisory_revision"), int):
            revision = event.detail["advisory_revision"]
    for event in reversed(record.events):
        if event.at <= as_of:
            break
        if event.kind != "changed":
            continue
        for key in _REPLAYED:
            change = event.detail.get(key)
            if isinstance(change, list | tuple) and len(change) == 2:
                values[key] = tuple(change[0] or ()) if key == "versions" else change[0]
                severity_changed = severity_changed or key == "severity"
    return FindingAt(
        vuln_id=str(values["vuln_id"]),
        versions=tuple(values["versions"]),
        state=str(values["state"]),
        severity=str(values["severity"]),
        fixed_in=values["fixed_in"],
        variant=values["variant"],
        severity_changed_since=severity_changed,
        ignores=ignore_spans(record.events, as_of, record.resolved_at),
        advisory_revision=revision,
    )


def changed_fix(record: FindingRecord, as_of: datetime) -> str | None:
    """The fix version at `as_of` when it differs from the stored one (its date must be recomputed)."""
    fixed_in = finding_at(record, as_of).fixed_in
    return fixed_in if fixed_in is not None and fixed_in != record.fixed_in else None


def covered(spans: Sequence[IgnoreSpan], start: datetime, end: datetime) -> bool:
    """Whether valid ignores cover [start, end) without a gap."""
    moment = start
    for span in sorted(spans, key=lambda s: s.start):
        if span.start > moment:
            return False
        until = span.valid_until
        if until is None:
            return True
        moment = max(moment, until)
        if moment >= end:
            return True
    return moment >= end
