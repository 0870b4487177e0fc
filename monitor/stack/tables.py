"""Tables of the stack family (created by migration `0002_stack`).

History is kept so that the status of any project can be reproduced for a past date:
  - `stack_advisories`: every revision of every OSV record (a row per (id, modified)), with the
    database revision that added it and the one that replaced it; `stack_advisory_revisions`
    records each import or refresh (what changed, which records were rejected).
  - `stack_packages`: per project and source, each package version with the interval it was
    installed ([first_seen_at, removed_at)).
  - `stack_findings`: one row per exposure of a project to a vulnerability: first seen, last seen,
    fixed (`resolved_at` + why), current ignore; `stack_finding_events` is the append-only log of
    every change (opened, changed, ignored, unignored, resolved), from which the state at any
    moment follows.
Current state (`stack_inventories`, `stack_projects`, `stack_feeds`, `stack_releases`) is what
the API, /metrics and the rule providers read.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from monitor.store.columns import JsonDoc, UtcDateTime
from monitor.store.schema import metadata

__all__ = [
    "metadata",
    "stack_advisories",
    "stack_advisory_revisions",
    "stack_feeds",
    "stack_finding_events",
    "stack_findings",
    "stack_inventories",
    "stack_packages",
    "stack_projects",
    "stack_releases",
]

stack_advisory_revisions = Table(
    "stack_advisory_revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, doc="the advisory database revision"),
    Column("at", UtcDateTime, nullable=False),
    Column("feed", String(64), nullable=False, doc="advisories (scheduled refresh) or import"),
    Column("source", Text, nullable=False, doc="path or OSV API URL"),
    Column("added", Integer, nullable=False),
    Column("changed", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("errors", JsonDoc, nullable=False, doc="[{where, reason}] of rejected records (first 1000)"),
)

stack_advisories = Table(
    "stack_advisories",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("modified", UtcDateTime, primary_key=True),
    Column("published", UtcDateTime),
    Column("withdrawn", UtcDateTime),
    Column("packages", JsonDoc, nullable=False, doc="normalised PyPI package names the record names"),
    Column("document", JsonDoc, nullable=False, doc="the OSV record as received"),
    Column("added_revision", Integer, ForeignKey("stack_advisory_revisions.id"), nullable=False),
    Column(
        "replaced_revision",
        Integer,
        ForeignKey("stack_advisory_revisions.id"),
        doc="the revision that brought a newer `modified`; NULL while current",
    ),
    Column("imported_at", UtcDateTime, nullable=False),
    Index(None, "replaced_revision"),
)

stack_feeds = Table(
    "stack_feeds",
    metadata,
    Column("name", String(128), primary_key=True, doc="advisories, or index:<package>"),
    Column("kind", String(32), nullable=False, doc="osv-api, offline, pep691, json-api"),
    Column("location", Text, nullable=False),
    Column("last_attempt_at", UtcDateTime),
    Column("last_success_at", UtcDateTime),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("records", Integer, nullable=False, default=0),
    Column("detail", JsonDoc, nullable=False, default=dict),
)

stack_releases = Table(
    "stack_releases",
    metadata,
    Column("package", String(128), primary_key=True),
    Column("source", Text, nullable=False, doc="the index URL the history was read from"),
    Column("fetched_at", UtcDateTime, nullable=False),
    Column("releases", JsonDoc, nullable=False, doc="{version: {upload_time, yanked, yanked_reason, requires_python}}"),
)

stack_inventories = Table(
    "stack_inventories",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("source", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("collected_at", UtcDateTime, nullable=False),
    Column("location", Text, nullable=False),
    Column("python_version", String(32)),
    Column("torch_version", String(64)),
    Column("torch_variant", String(16)),
    Column("torch_accelerator", String(32)),
    Column("packages", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("document", JsonDoc, nullable=False, doc="the inventory: packages, files, notes"),
)

stack_packages = Table(
    "stack_packages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), nullable=False),
    Column("source", String(64), nullable=False),
    Column("package", String(128), nullable=False),
    Column("version", String(128), nullable=False),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("removed_at", UtcDateTime, doc="NULL while installed"),
    Index(None, "project", "package", "first_seen_at"),
    Index(None, "project", "source", "removed_at"),
)

stack_projects = Table(
    "stack_projects",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("reconciled_at", UtcDateTime, nullable=False),
    Column("digest", String(64), nullable=False, doc="hash of the inputs of the last reconciliation"),
    Column("advisory_revision", Integer),
    Column("staleness", JsonDoc, nullable=False, doc="[Staleness] of the tracked packages"),
    Column("summary", JsonDoc, nullable=False, doc="counts by state and severity; expired ignores"),
)

stack_findings = Table(
    "stack_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), nullable=False),
    Column("package", String(128), nullable=False),
    Column("vuln_id", String(128), nullable=False, doc="the vulnerability's main ID (CVE when it has one)"),
    Column("ids", JsonDoc, nullable=False, doc="every ID of the vulnerability (aliases merged)"),
    Column("versions", JsonDoc, nullable=False, doc="installed versions affected"),
    Column("variant", String(64)),
    Column("state", String(16), nullable=False, doc="affected | undetermined"),
    Column("severity", String(16), nullable=False),
    Column("score", Double),
    Column("summary", Text, nullable=False),
    Column("fixed_in", String(128)),
    Column("fix_available_at", UtcDateTime),
    Column("published", UtcDateTime),
    Column("exposed_since", UtcDateTime, doc="when an affected version was first seen installed"),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, doc="when it stopped matching: the fix time; NULL while open"),
    Column("resolution", String(32), doc="upgraded, removed, advisory_changed, source_removed"),
    Column("ignored", Boolean, nullable=False, default=False),
    Column("ignore_reason", Text),
    Column("ignore_expires", Date),
    Column("ignored_at", UtcDateTime),
    Column("advisory_revision", Integer),
    Column("detail", JsonDoc, nullable=False, doc="the finding as reported (records, scores, notes, locations)"),
    Index(None, "project", "resolved_at"),
    Index(None, "resolved_at"),
    Index(None, "vuln_id"),
    UniqueConstraint("project", "package", "vuln_id", "first_seen_at"),
)

stack_finding_events = Table(
    "stack_finding_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("finding_id", Integer, ForeignKey("stack_findings.id", ondelete="CASCADE"), nullable=False),
    Column("project", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(16), nullable=False, doc="opened, changed, ignored, unignored, resolved"),
    Column("detail", JsonDoc, nullable=False),
    Index(None, "finding_id"),
    Index(None, "project", "at"),
)

# The remediation plan's tables live beside its code; importing them registers them with `metadata`.
import monitor.stack.plan.tables  # noqa: E402, F401
