"""The stack family's evidence for an audit: what was installed, found, read and fetched at a
moment, as records the report builds on (see `evidence_reads` for the queries)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple


class InstalledPackage(NamedTuple):
    """A package version installed at `as_of` (an open interval of `stack_packages`)."""

    project: str
    source: str
    package: str
    version: str
    since: datetime


@dataclass(frozen=True, slots=True)
class SourceEvidence:
    """When a stack source's inventory in force at `as_of` was read, and how its last run went."""

    project: str
    source: str
    kind: str
    location: str | None = None
    collected_at: datetime | None = None
    """When the inventory in force at `as_of` was read (None: unknown, e.g. runs pruned)."""
    collected_from: str = "inventory"
    """`inventory` (the stored inventory's own time) or `runs` (the last successful run then)."""
    torch_version: str | None = None
    torch_variant: str | None = None
    torch_accelerator: str | None = None
    last_run_at: datetime | None = None
    last_outcome: str | None = None
    last_error: str | None = None


class FindingEvent(NamedTuple):
    at: datetime
    kind: str
    detail: Mapping[str, Any]


class FindingRecord(NamedTuple):
    """A row of `stack_findings` (newest values) with all its events, oldest first.

    Tuples, not dataclasses, for the hot inputs: a report builds tens of thousands of them.
    """

    id: int
    project: str
    package: str
    vuln_id: str
    ids: tuple[str, ...]
    versions: tuple[str, ...]
    variant: str | None
    state: str
    severity: str
    score: float | None
    summary: str
    fixed_in: str | None
    fix_available_at: datetime | None
    published: datetime | None
    exposed_since: datetime | None
    first_seen_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    advisory_revision: int | None
    events: tuple[FindingEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class AdvisoryEvidence:
    """The advisory database as it stood at `as_of`."""

    revision: int
    refreshed_at: datetime
    feed: str
    source: str
    records: int
    content_revision: int | None
    content_changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class FeedEvidence:
    """A feed's state when the report was made (current reports only)."""

    name: str
    kind: str
    location: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    records: int
