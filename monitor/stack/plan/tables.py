"""Tables of the remediation plan (created by migration `0006_plans`).

- `stack_index_pages`: the last PEP 691 project page read per (index, project), compacted, with
  when it was read and, while the index fails, the error and since when (a plan built from a stale
  page is dated by the page's `fetched_at`).
- `stack_index_metadata`: core metadata of index files by URL (immutable once uploaded), or
  `absent` when the index serves none for the file.
- `stack_plans`: each project's current plan, with the key of what it was computed from
  (advisory revision, inventories, open findings, index pages) so it is recomputed only on change.
"""

from __future__ import annotations

from sqlalchemy import Column, String, Table, Text

from monitor.store.columns import JsonDoc, UtcDateTime
from monitor.store.schema import metadata

stack_index_pages = Table(
    "stack_index_pages",
    metadata,
    Column("index_url", String(512), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("status", String(16), nullable=False, doc="ok, not_listed, not_json, or failing (never read)"),
    Column("fetched_at", UtcDateTime, doc="when the page (or the 404) was last read successfully"),
    Column("document", JsonDoc, doc="the compacted PEP 691 page (status ok)"),
    Column("last_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text),
    Column("failing_since", UtcDateTime, doc="first failed attempt since the last success"),
)

stack_index_metadata = Table(
    "stack_index_metadata",
    metadata,
    Column("url", String(1024), primary_key=True, doc="the file's URL"),
    Column("status", String(16), nullable=False, doc="ok or absent"),
    Column("fetched_at", UtcDateTime, nullable=False),
    Column("requires_dist", JsonDoc, nullable=False, default=list),
    Column("requires_python", Text),
)

stack_plans = Table(
    "stack_plans",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("computed_at", UtcDateTime, nullable=False),
    Column("key", String(64), nullable=False, doc="digest of what the plan was computed from"),
    Column("document", JsonDoc, nullable=False, doc="the plan (monitor.stack.plan.model.Plan.to_doc)"),
)
