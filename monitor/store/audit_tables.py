"""Tables of the change log and of the owners' project overrides (migration 0005).

They sit in the store, not with access control: the service's reloads, silences and overrides are logged
here too, and runtime's overrides are configuration, whatever the token that made them.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table

from monitor.store.columns import JsonDoc, UtcDateTime
from monitor.store.schema import metadata

change_log = Table(
    "change_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False, doc="e.g. config.reload, silence.create, alert.ack, token.create"),
    Column("project", String(64)),
    Column("target", String(200), nullable=False, default=""),
    Column("details", JsonDoc, nullable=False),
    Index(None, "at"),
    Index(None, "project", "at"),
)

project_overrides = Table(
    "project_overrides",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), nullable=False),
    Column("kind", String(16), nullable=False, doc="budget | rule | ignore"),
    Column("name", String(128), nullable=False),
    Column("body", JsonDoc, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "project", "kind", "name", unique=True),
)

__all__ = ["change_log", "project_overrides"]
