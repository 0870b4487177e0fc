"""Tables of the quality family (created by migrations `0003` and `0007`).

`quality_references` keeps every reference distribution ever pushed (the profile computed once,
when it arrived; `active` marks the one current batches are compared with), and
`quality_comparisons` one row per column of every current batch: its summary, the statistics and
the reference it was compared with, so an auditor can see what a drift alert was based on.
`quality_reference_values` holds a numeric reference's sorted raw values (little-endian float64),
apart from the profile so that listing references never reads them; the exact Wasserstein
distance and KS statistic need them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text

from monitor.store.columns import JsonDoc, UtcDateTime
from monitor.store.schema import metadata

__all__ = ["metadata", "quality_comparisons", "quality_reference_values", "quality_references"]

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

quality_reference_values = Table(
    "quality_reference_values",
    metadata,
    Column(
        "reference_id",
        Integer,
        ForeignKey("quality_references.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("count", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False, doc="sorted values, little-endian float64"),
)
