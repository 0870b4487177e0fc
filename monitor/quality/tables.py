"""Tables of the quality family (created by migration `0003`).

`quality_references` keeps every reference distribution ever pushed (the profile computed once,
when it arrived; `active` marks the one current batches are compared with), and
`quality_comparisons` one row per column of every current batch: its summary, the statistics and
the reference it was compared with, so an auditor can see what a drift alert was based on.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from monitor.store.columns import JsonDoc, UtcDateTime
from monitor.store.schema import metadata

__all__ = ["metadata", "quality_comparisons", "quality_references"]

quality_references = Table(
    "quality_references",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), nullable=False),
    Column("dataset", String(128), nullable=False),
    Column("labels", Text, nullable=False, doc="canonical JSON of the label set"),
    Column("labels_hash", String(32), nullable=False),
    Column("column_name", String(128), nullable=False),
    Column("kind", String(16), nullable=False, doc="numeric | categorical"),
    Column("n", BigInteger, nullable=False, doc="values in the reference (missing ones excluded)"),
    Column("profile", JsonDoc, nullable=False, doc="the binned reference: quantiles, bins and shares, or counts"),
    Column("note", Text, nullable=False, default=""),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_quality_references_lookup", "project", "dataset", "labels_hash", "column_name", "active"),
)

quality_comparisons = Table(
    "quality_comparisons",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), nullable=False),
    Column("dataset", String(128), nullable=False),
    Column("labels", Text, nullable=False),
    Column("labels_hash", String(32), nullable=False),
    Column("column_name", String(128), nullable=False),
    Column("ts", BigInteger, nullable=False, doc="epoch milliseconds of the batch"),
    Column("reference_id", Integer, ForeignKey("quality_references.id", ondelete="CASCADE"), nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("summary", JsonDoc, nullable=False, doc="the current batch's profile summary"),
    Column("statistics", JsonDoc, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "project", "dataset", "ts"),
    Index(None, "reference_id"),
)
