"""What the audit report is made from: the history as the loader reads it, as plain values.

Tuples (NamedTuple) for the inputs a report has tens of thousands of (packages, findings, events),
frozen dataclasses for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitor.reports.advisories_then import AdvisoryThen, GroupKey
from monitor.stack.evidence import (
    AdvisoryEvidence,
    FeedEvidence,
    FindingRecord,
    InstalledPackage,
    SourceEvidence,
)
from monitor.store.changes import Change

DEFAULT_PERIOD = timedelta(days=90)
"""The period before `as_of` whose fixed findings and changes a report lists."""


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    """A project as the configuration describes it (or only as history knows it)."""

    id: str
    name: str = ""
    team: str | None = None
    owners: tuple[Mapping[str, Any], ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    """Configured stack sources: (name, kind)."""
    configured: bool = True


@dataclass(frozen=True)
class AuditInputs:
    generated_at: datetime
    as_of: datetime
    since: datetime
    current: bool
    """True when the report is of the present moment (no --as-of): feed states are included."""
    history_starts_at: datetime | None
    sla: Mapping[str, timedelta | None]
    projects: Sequence[ProjectInfo]
    packages: Sequence[InstalledPackage] = ()
    sources: Sequence[SourceEvidence] = ()
    findings: Sequence[FindingRecord] = ()
    uploads: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    """(package, version) -> upload time: fix dates of fixes that differ from the stored one."""
    advisories: AdvisoryEvidence | None = None
    feeds: Sequence[FeedEvidence] = ()
    changes: Sequence[Change] = ()
    changes_truncated: bool = False
    advisories_then: Mapping[GroupKey, AdvisoryThen] | None = None
    """Past reports: the names and score the advisory records in force at `as_of` gave each
    (names now, package); None for a report of the present."""
