"""Findings as they stood at a moment: replaying a finding's event log up to `as_of`.

A finding row says when it was first seen and when it was fixed; its events say how its
severity, state, fix, versions and ignore changed in between. The status at time t is:
not yet seen (t < first_seen_at), resolved (t >= resolved_at), ignored (the last ignore event
before t was `ignored`), or open.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

_REPLAYED = ("versions", "severity", "state", "fixed_in", "vuln_id", "variant")


def parse_moment(text: str) -> datetime:
    """RFC 3339 (or a date, meaning its start in UTC)."""
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an RFC 3339 time such as 2026-11-01T00:00:00Z, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else None


def finding_doc(row: Any, events: Sequence[Any], as_of: datetime | None = None) -> dict[str, Any]:
    """A finding (optionally as it was at `as_of`) with its history."""
    fields: dict[str, Any] = {k: getattr(row, k) for k in _REPLAYED}
    ignored = bool(row.ignored)
    ignore: dict[str, Any] | None = (
        {"reason": row.ignore_reason, "expires": _iso(row.ignore_expires)} if row.ignored else None
    )
    if as_of is not None:
        ignored, ignore = False, None
        for event in events:
            if event.at > as_of:
                break
            detail = event.detail or {}
            if event.kind == "opened":
                for key in ("versions", "severity", "state", "fixed_in"):
                    if key in detail:
                        fields[key] = detail[key]
            elif event.kind == "changed":
                for key, change in detail.items():
                    if key in _REPLAYED and isinstance(change, list) and len(change) == 2:
                        fields[key] = change[1]
            elif event.kind == "ignored":
                ignored, ignore = True, {"reason": detail.get("reason"), "expires": detail.get("expires")}
            elif event.kind == "unignored":
                ignored, ignore = False, None
    resolved = row.resolved_at is not None and (as_of is None or row.resolved_at <= as_of)
    status = "resolved" if resolved else ("ignored" if ignored else "open")
    return {
        "finding": row.id,
        "project": row.project,
        "package": row.package,
        "id": fields["vuln_id"],
        "ids": list(row.ids or []),
        "versions": list(fields["versions"] or []),
        "variant": fields["variant"],
        "state": fields["state"],
        "severity": fields["severity"],
        "score": row.score,
        "summary": row.summary,
        "fixed_in": fields["fixed_in"],
        "fix_available_at": _iso(row.fix_available_at),
        "published": _iso(row.published),
        "status": status,
        "ignored": ignore,
        "exposed_since": _iso(row.exposed_since),
        "first_seen_at": _iso(row.first_seen_at),
        "last_seen_at": _iso(row.last_seen_at),
        "resolved_at": _iso(row.resolved_at) if resolved else None,
        "resolution": row.resolution if resolved else None,
        "advisory_revision": row.advisory_revision,
        "as_of": _iso(as_of),
        "events": [
            {"at": _iso(e.at), "kind": e.kind, "detail": e.detail} for e in events if as_of is None or e.at <= as_of
        ],
    }
