"""FOCUS rows from a SQL query over the user's own tables (a warehouse the bill already lives in).

    kind: focus
    params:
      query: SELECT * FROM billing.focus WHERE "ChargePeriodStart" >= now() - interval '40 days'
      database_url_env: BILLING_DB_URL       # a SQLAlchemy URL: postgresql+psycopg://..., duckdb:///...
      attribution: [{tag: ml-project}]

The query runs read-only through SQLAlchemy (any database it speaks; `duckdb:///` needs the
duckdb-engine package), its rows stream into Arrow batches, and the same DuckDB query as for
files validates, attributes, spreads and sums them. Errors name the query's row (1 = its first)
and column. Select only the FOCUS columns needed, and bound the time range in the WHERE clause:
each run reads the query whole and replaces the days it covers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import tzinfo
from typing import Any

from collectors.base import SourceError
from collectors.spend.focus_duck import connect
from collectors.spend.focus_params import FocusParams
from collectors.spend.focus_reader import FileAggregate, check_header, read_source
from collectors.spend.focus_rows import FocusFileError

BATCH_ROWS = 50_000
WHERE = "the query"


def _cell(value: Any) -> Any:
    """A value Arrow holds as the column's type: JSON documents as text, numbers as numbers."""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _column(values: list[Any]) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    cells = [_cell(v) for v in values]
    try:
        array = pa.array(cells)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # mixed types (a number in a text column): as text, validated like a CSV value
        array = pa.array([None if c is None else str(c) for c in cells], pa.string())
    if pa.types.is_null(array.type):
        array = array.cast(pa.string())
    if pa.types.is_decimal(array.type):
        array = array.cast(pa.float64())
    return array


def _batches(url: str, query: str, timeout: float) -> tuple[list[str], Iterator[list[tuple[Any, ...]]], Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_engine(url, pool_pre_ping=False)
        conn = engine.connect()
        if engine.dialect.name == "postgresql":  # before streaming: a server-side cursor wraps each statement
            conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(text(f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}"))
        result = conn.execution_options(stream_results=True).execute(text(query))
    except SQLAlchemyError as exc:
        raise SourceError(f"{WHERE} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from None
    except Exception as exc:  # a dialect that is not installed, a malformed URL
        raise SourceError(f"cannot connect for {WHERE}: {type(exc).__name__}: {str(exc)[:300]}") from None
    names = list(result.keys())

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        try:
            while rows := result.fetchmany(BATCH_ROWS):
                yield [tuple(r) for r in rows]
        finally:
            conn.close()
            engine.dispose()

    return names, chunks(), conn


def read_focus_query(
    url: str, params: FocusParams, tz: tzinfo, timeout: float, expected: tuple[str, str] | None
) -> FileAggregate:
    """The aggregate of the query's rows, or FocusFileError / SourceError naming row and column."""
    import pyarrow as pa

    assert params.query is not None
    names, chunks, _ = _batches(url, params.query, timeout)
    check_header(WHERE, names, params)
    batches = []
    for rows in chunks:
        columns: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)]
        batches.append(pa.record_batch([_column(c) for c in columns], names=names))
    if not batches:
        raise FocusFileError(WHERE, "no rows: the query returned nothing")
    try:
        table = pa.Table.from_batches(batches)
    except pa.ArrowInvalid:  # a column typed differently in two batches: all as text
        table = pa.Table.from_batches(
            [pa.record_batch([b.column(i).cast(pa.string()) for i in range(len(names))], names=names) for b in batches]
        )
    con = connect()
    try:
        con.register("focus_query_rows", table)
        return read_source(con, "focus_query_rows", names, params, tz, WHERE, expected)
    finally:
        con.close()
