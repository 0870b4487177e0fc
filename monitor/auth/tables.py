"""Tables of access control and the change log (migration 0005)."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table

from monitor.store.columns import JsonDoc, UtcDateTime
from monitor.store.schema import metadata

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("projects", JsonDoc, nullable=False, doc="project ids the token is limited to; empty = all"),
    Column("token_hash", String(64), nullable=False, unique=True, doc="sha256 of the token; the token is never stored"),
    Column("prefix", String(16), nullable=False, doc="the token's first characters, to recognise it in lists"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("expires_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
)

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

APPEND_ONLY_TABLES = ("change_log",)
__all__ = ["APPEND_ONLY_TABLES", "api_tokens", "change_log", "project_overrides"]
