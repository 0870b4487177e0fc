"""Tables of access control: API tokens (migration 0005)."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table

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

__all__ = ["api_tokens"]
