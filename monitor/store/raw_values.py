"""Datetimes and JSON lists read without SQLAlchemy's per-row processing, decoded once per value.

A report reads hundreds of thousands of rows whose values repeat (an inventory's read time is
every package's `first_seen_at`; a vulnerability's IDs repeat across projects). Fetching those
columns as they come from the driver (text on SQLite, datetime / decoded JSON on PostgreSQL) and
decoding each distinct value once is several times faster than the column types' processing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import String, Text, cast, type_coerce
from sqlalchemy.sql.elements import ColumnElement, Label


def raw(column: ColumnElement[Any]) -> Label[Any]:
    """The column as the driver returns it (no result processing), under its own name."""
    return type_coerce(column, String).label(column.key or "value")


def json_text(column: ColumnElement[Any]) -> Label[Any]:
    """A JSON column as its text (PostgreSQL's driver would otherwise decode every JSONB value)."""
    return cast(column, Text).label(column.key or "value")


_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Decoder:
    """Decodes raw values to aware UTC datetimes, tuples of strings and JSON objects, caching each
    distinct value."""

    def __init__(self) -> None:
        self._moments: dict[Any, datetime] = {}
        self._lists: dict[str, tuple[str, ...]] = {}
        self._documents: dict[str, Mapping[str, Any]] = {}

    def moment(self, value: Any) -> datetime | None:
        if value is None:
            return None
        found = self._moments.get(value)
        if found is None:
            parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            found = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
            self._moments[value] = found
        return found

    def required(self, value: Any) -> datetime:
        """A moment from a NOT NULL column."""
        found = self.moment(value)
        if found is None:
            raise ValueError("a NOT NULL time column returned NULL")
        return found

    def strings(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            found = self._lists.get(value)
            if found is None:
                decoded = json.loads(value)
                found = self._lists[value] = tuple(str(v) for v in decoded or ())
            return found
        return tuple(str(v) for v in value)

    def document(self, value: Any) -> Mapping[str, Any]:
        """A JSON object column (NULL: empty). Read-only, because equal texts share one decoded value."""
        if value is None:
            return _EMPTY
        if not isinstance(value, str):
            return MappingProxyType(dict(value))
        found = self._documents.get(value)
        if found is None:
            decoded = json.loads(value)
            found = self._documents[value] = MappingProxyType(decoded if isinstance(decoded, dict) else {})
        return found
