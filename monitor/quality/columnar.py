"""Distribution pushes as Apache Arrow IPC or Parquet: a table's columns straight into profiles.

    POST /api/v1/quality/distributions?project=churn&dataset=features&role=current
         &labels={"model":"churn-classifier"}&timestamp=...&note=...&bins=10&categorical=zip
    content-type: application/vnd.apache.arrow.stream   (Arrow IPC stream; .file for the file format)
                  application/vnd.apache.parquet        (Parquet)

The metadata of the JSON push comes as query parameters; the body is a table whose columns are
the pushed columns: integer, floating and decimal columns are numeric, string, large string,
dictionary and boolean columns categorical (`categorical=` lists numeric columns to read as
categories); nulls are missing values. Record batches are read one at a time and each column's
chunks go to NumPy without passing through Python objects, which is what makes this path fast
(the JSON path decodes every value as a Python object).

Every problem is a 422 naming the column (`columns.age`) and what was expected; a body that is
not Arrow or Parquet at all names `body`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import ValidationError

from monitor.core.errors import InvalidInput, Issue
from monitor.quality.distributions import ColumnData, PushMeta
from monitor.quality.drift import ProfileError, categorical_profile, numeric_profile

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
PARQUET = "application/vnd.apache.parquet"
MEDIA_TYPES = frozenset({ARROW_STREAM, ARROW_FILE, PARQUET, "application/x-parquet"})
META_FIELDS = ("project", "dataset", "role", "timestamp", "note", "bins", "labels")


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def parse_meta(query: Mapping[str, str]) -> tuple[PushMeta, frozenset[str]]:
    """The push's metadata from query parameters, and the columns to read as categories."""
    document: dict[str, Any] = {k: query[k] for k in META_FIELDS if k in query}
    unknown = sorted(set(query) - {*META_FIELDS, "categorical"})
    if unknown:
        raise InvalidInput(
            [Issue(f"query.{unknown[0]}", f"unknown query parameter {unknown[0]!r}", field=f"query.{unknown[0]}")]
        )
    if "labels" in document:
        try:
            document["labels"] = json.loads(document["labels"])
        except ValueError as exc:
            issue = Issue("query.labels", f'labels must be a JSON object such as {{"model": "m"}}: {exc}')
            raise InvalidInput([issue], "invalid labels") from None
    if "timestamp" in document:
        with contextlib.suppress(ValueError):  # RFC 3339 text stays text: the model parses it
            document["timestamp"] = float(document["timestamp"])
    try:
        meta = PushMeta.model_validate(document)
    except ValidationError as exc:
        issues = []
        for err in exc.errors()[:100]:
            where = "query." + (".".join(str(p) for p in err["loc"]) or "body")
            issues.append(Issue(where, str(err["msg"]), field=where))
        raise InvalidInput(issues, "invalid distribution push") from None
    categorical = frozenset(c for c in query.get("categorical", "").split(",") if c)
    return meta, categorical


def _arrow() -> Any:
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.compute  # type: ignore[import-untyped]
        import pyarrow.parquet  # type: ignore[import-untyped]
    except ImportError:
        issue = Issue("body", "Arrow and Parquet bodies need pyarrow (pip install 'mlmon[arrow]'); push JSON instead")
        raise InvalidInput([issue], "pyarrow is not installed") from None
    return pa


def read_table(body: bytes, kind: str) -> Any:
    """The body as an Arrow table (batches of a stream are read one by one, never copied twice)."""
    pa = _arrow()
    pq = pa.parquet
    try:
        if kind == ARROW_STREAM:
            reader = pa.ipc.open_stream(pa.BufferReader(body))
            return pa.Table.from_batches(list(reader), schema=reader.schema)
        if kind == ARROW_FILE:
            return pa.ipc.open_file(pa.BufferReader(body)).read_all()
        return pq.read_table(pa.BufferReader(body))
    except (pa.ArrowException, OSError, ValueError) as exc:
        what = (
            "an Arrow IPC stream" if kind == ARROW_STREAM else "an Arrow IPC file" if kind == ARROW_FILE else "Parquet"
        )
        issue = Issue("body", f"the body is not {what}: {str(exc)[:300]}", field="body")
        raise InvalidInput([issue], "unreadable body") from None


def table_columns(
    table: Any, role: str, bins: int | None, max_values: int, categorical: frozenset[str]
) -> dict[str, ColumnData]:
    """Profile every column of the table; InvalidInput names each unusable one."""
    pa = _arrow()
    issues: list[Issue] = []
    out: dict[str, ColumnData] = {}
    names = table.column_names
    if not names:
        raise InvalidInput([Issue("body", "the table has no columns", field="body")], "empty table")
    if len(set(names)) != len(names):
        raise InvalidInput([Issue("body", "the table has duplicate column names", field="body")], "duplicate columns")
    unknown = sorted(categorical - set(names))
    if unknown:
        issue = Issue("query.categorical", f"categorical names columns {unknown} that the table does not have")
        raise InvalidInput([issue], "unknown columns")
    for name in names:
        where = f"columns.{name}"
        try:
            if not name or len(name) > 128:
                raise ProfileError(f"column name {name[:40]!r} must be 1 to 128 characters")
            out[name] = _column(pa, table.column(name), role, bins, max_values, name in categorical)
        except ProfileError as exc:
            issues.append(Issue(where, str(exc), field=where))
        except (pa.ArrowException, ValueError, TypeError) as exc:
            issues.append(Issue(where, f"cannot read the column: {str(exc)[:300]}", field=where))
    if issues:
        raise InvalidInput(issues, "unusable columns")
    return out


def _column(pa: Any, column: Any, role: str, bins: int | None, max_values: int, as_categories: bool) -> ColumnData:
    pc = pa.compute
    kind = column.type
    if len(column) - column.null_count > max_values:
        raise ProfileError(
            f"{len(column) - column.null_count} values; the limit is {max_values} (push a sample or a histogram)"
        )
    missing = column.null_count
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind)
    if numeric and not as_categories:
        present = pc.drop_null(column)
        if pa.types.is_decimal(kind):
            present = pc.cast(present, pa.float64())
        values = (
            np.concatenate([np.asarray(c.to_numpy(zero_copy_only=False), dtype=np.float64) for c in present.chunks])
            if present.num_chunks
            else np.empty(0)
        )
        if values.size and not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ProfileError(
                f"row {bad} (of the non-null values) is {values[bad]!r}; NaN and infinity are not allowed "
                "(send null for a missing value)"
            )
        return ColumnData(numeric_profile(values, missing, bins if role == "reference" else None))
    if numeric or text or pa.types.is_boolean(kind):
        as_text = column if (text and not pa.types.is_dictionary(kind)) else pc.cast(column, pa.string())
        counts = pc.value_counts(pc.drop_null(as_text))
        table = {
            str(v): int(c)
            for v, c in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
        }
        first = None
        if text and not as_categories:
            present = pc.drop_null(as_text)
            first = f"row 0 (of the non-null values) is {str(present[0].as_py())[:40]!r}" if len(present) else None
        return ColumnData(categorical_profile(table, missing), first)
    raise ProfileError(
        f"Arrow type {kind} is neither numeric nor text (expected integers, floats, decimals or strings)"
    )
