"""Run focus_sql's query in DuckDB over one FOCUS file (CSV, gzipped CSV, Parquet) or a SQL table.

Everything per row happens inside DuckDB; Python sees the few thousand (project, category, GPU,
day) totals. GPU rows are told by a vectorised Python function over DuckDB's Arrow chunks that
classifies each distinct (SkuPriceDetails, ChargeDescription) pair once (focus_rows.classify_gpu,
the maintained instance table). A file DuckDB cannot parse (ragged record, bad UTF-8) fails
with DuckDB's line; a value that breaks a FOCUS rule is found by re-running the row query
single-threaded up to the first offending row, so the error names row, column and value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from collectors.spend.focus_params import FocusParams
from collectors.spend.focus_rows import NULLS, FocusFileError, ValueProblem, classify_gpu
from collectors.spend.focus_sql import (
    GPU_GROUP_UDF,
    GPU_KNOWN_UDF,
    GPU_UDF,
    PROBLEMS,
    columns_read,
    daily_sql,
    ident,
    locate_sql,
    quote,
)

MEMORY_LIMIT = "128MB"
"""DuckDB's own cap: the aggregation state is small; the CSV reader's buffers are what grows. On a
2M-row export, 128 MB took no longer than 256 MB and kept the process's peak under 300 MiB."""
RETRY_MEMORY_LIMIT = "2GB"
"""A query that still runs out (an export with millions of distinct project-days) runs once more
under this cap rather than failing the source."""
CSV_BUFFER = 4 << 20
"""Bytes per CSV read buffer: twice the longest record DuckDB takes (2 MB; a longer one is
refused either way) instead of its default 16 times. On a 2M-row export the read was as fast and
its peak RSS ~40 MiB lower."""
VALUE_SHOWN = 80
"""Characters of an offending value an error shows (never a whole record: it may hold secrets)."""

_LINE = re.compile(r"CSV Error on Line: (\d+)")
_ORIGINAL = re.compile(r"\nOriginal Line:[^\n]*", re.S)


class DayRow(NamedTuple):
    """One output row of the daily query (a tuple: tens of thousands are made per read)."""

    project: str | None
    category: str
    gpu: bool
    currency: str | None
    day: Any
    billed: float
    effective: float
    gpu_seconds: float
    rows: int
    starting: int


def connect(threads: int | None = None) -> Any:
    """A fresh in-memory DuckDB with UTC as the session zone (timestamps without offset are
    FOCUS UTC) and the GPU classifier registered."""
    import duckdb

    # Insertion order is kept only where it is asked for (locate, which names rows by position):
    # the daily totals have no order, and keeping it holds ~30 MiB more of the reader's chunks.
    config: dict[str, Any] = {"memory_limit": MEMORY_LIMIT, "preserve_insertion_order": False}
    con = duckdb.connect(config={**config, **({"threads": threads} if threads else {})})
    con.execute("SET TimeZone = 'UTC'")
    return con


class GpuCache:
    """GPUs per unit by a 64-bit hash of (SkuPriceDetails, ChargeDescription), shared by the two
    functions the query calls: `mlmon_gpus_known(hash)` answers from the cache with integer work
    only (-3 when the pair is new), and only for new pairs does the query call `mlmon_gpus(hash,
    details, description)`, whose strings cost a copy into Arrow. So each distinct pair is
    classified once and the strings of a 2M-row export cross into Python a few hundred times."""

    UNKNOWN = -3.0

    def __init__(self, overrides: Mapping[str, float]) -> None:
        self.overrides = dict(overrides)
        self.values: dict[int, float] = {}
        self._keys = np.zeros(0, dtype=np.uint64)
        self._found = np.zeros(0, dtype=np.float64)

    def classify(self, details: str | None, description: str | None) -> float:
        """GPUs per unit, or a code of focus_sql.GPU_UDF."""
        try:
            found = classify_gpu(details, description, self.overrides)
        except ValueProblem:
            return -2.0
        if not found.gpu:
            return -4.0
        return -1.0 if found.gpus is None else float(found.gpus)

    def one(self, key: int, details: str | None, description: str | None) -> float:
        """`new` for one row, with Python values: the daily query asks once per group of candidate
        rows, a few thousand calls, and Arrow's first conversion alone took 0.2-0.3 s (it imports
        pandas when pandas is installed)."""
        value = self.values.get(key)
        if value is None:
            value = self.values[key] = self.classify(details, description)
        return value

    def known(self, hashes: Any) -> Any:
        import pyarrow as pa  # type: ignore[import-untyped]

        if len(self._keys) != len(self.values):
            ordered = sorted(self.values.items())
            self._keys = np.array([k for k, _ in ordered], dtype=np.uint64)
            self._found = np.array([v for _, v in ordered], dtype=np.float64)
        keys = _numpy(hashes).astype(np.uint64)
        at = np.searchsorted(self._keys, keys)
        at[at == len(self._keys)] = 0
        hit = (self._keys[at] == keys) if len(self._keys) else np.zeros(len(keys), dtype=bool)
        out = np.where(hit, self._found[at] if len(self._keys) else 0.0, self.UNKNOWN)
        return pa.array(out, pa.float64())

    def new(self, hashes: Any, details: Any, descriptions: Any) -> Any:
        import pyarrow as pa

        keys = _numpy(hashes).astype(np.uint64).tolist()
        d_list, c_list = _strings(details), _strings(descriptions)
        out = []
        for key, d, c in zip(keys, d_list, c_list, strict=True):
            value = self.values.get(key)
            if value is None:
                value = self.values[key] = self.classify(d, c)
            out.append(value)
        return pa.array(out, pa.float64())


def _numpy(array: Any) -> Any:
    if hasattr(array, "combine_chunks"):
        array = array.combine_chunks()
    return array.to_numpy(zero_copy_only=False)


def _strings(array: Any) -> list[str | None]:
    if hasattr(array, "combine_chunks"):
        array = array.combine_chunks()
    return list(array.to_pylist())


def register_gpus(con: Any, overrides: Mapping[str, float]) -> GpuCache:
    from duckdb import sqltypes

    cache = GpuCache(overrides)
    con.create_function(
        GPU_KNOWN_UDF, cache.known, [sqltypes.UBIGINT], sqltypes.DOUBLE, type="arrow", side_effects=False
    )
    pair = [sqltypes.UBIGINT, sqltypes.VARCHAR, sqltypes.VARCHAR]
    for name, function, kind in ((GPU_UDF, cache.new, "arrow"), (GPU_GROUP_UDF, cache.one, "native")):
        con.create_function(
            name, function, pair, sqltypes.DOUBLE, type=kind, null_handling="special", side_effects=True
        )
    return cache


def csv_source(path: Path, header: Sequence[str], gzip: bool) -> str:
    """read_csv over every column as text, by the header's positions (the sniffer is skipped:
    the header is known and a guessed type must never decide what a cost is)."""
    columns = "{" + ", ".join(f"{quote(name)}: 'VARCHAR'" for name in header) + "}"
    nulls = "[" + ", ".join(quote(n) for n in NULLS) + "]"
    return (
        f"read_csv({quote(str(path))}, header = true, auto_detect = false, columns = {columns}, "
        f"delim = ',', quote = '\"', escape = '\"', nullstr = {nulls}, "
        f"compression = {quote('gzip' if gzip else 'none')}, buffer_size = {CSV_BUFFER})"
    )


def parquet_source(path: Path) -> str:
    return f"read_parquet({quote(str(path))})"


def _clean(message: str) -> str:
    """DuckDB's error without the record it quotes (a row may hold secrets) and its hints."""
    message = _ORIGINAL.sub("", message)
    head = message.split("\n\n", 1)[0]
    return " ".join(head.split())[:400]


def run_daily(con: Any, params: FocusParams, present: Sequence[str], source: str, where: str) -> list[DayRow]:
    """The daily totals, or FocusFileError naming the file (`where`), row, column and value."""
    import duckdb

    try:
        result = _fetch_all(con, daily_sql(params, present, source))
    except duckdb.Error as exc:
        if "Malformed JSON" in str(exc) and "Tags" in present:
            raise locate(con, params, present, source, where, "false", malformed_tags=True) from None
        raise _parse_error(where, exc) from None
    rows: list[DayRow] = []
    problems = False
    for project, category, gpu, currency, bad, day, b, e, gs, n, n0 in result:
        if bad:
            problems = True
            continue
        rows.append(
            DayRow(project or None, category, bool(gpu), currency, day, float(b), float(e), float(gs), int(n), int(n0))
        )
    if problems:
        raise locate(con, params, present, source, where, "problem IS NOT NULL")
    return rows


def _fetch_all(con: Any, sql: str) -> list[Any]:
    """`sql`'s rows, run once more under RETRY_MEMORY_LIMIT when DuckDB runs out of memory."""
    import duckdb

    try:
        return list(con.execute(sql).fetchall())
    except duckdb.OutOfMemoryException:
        con.execute(f"SET memory_limit = {quote(RETRY_MEMORY_LIMIT)}")
        return list(con.execute(sql).fetchall())


def _parse_error(where: str, exc: Exception) -> FocusFileError:
    text = str(exc)
    found = _LINE.search(text)
    row = int(found.group(1)) - 1 if found else None
    column = re.search(r'converting column "([^"]+)"', text)
    counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if counts:
        message = f"expected {counts.group(1)} fields as in the header, got {counts.group(2)} (an unquoted comma?)"
    elif "unicode" in text.lower():
        message = "expected UTF-8 text"
    else:
        message = f"cannot read the file: {_clean(text)}"
    return FocusFileError(where, message, row if row and row > 0 else None, column.group(1) if column else None)


def locate(
    con: Any,
    params: FocusParams,
    present: Sequence[str],
    source: str,
    where: str,
    condition: str,
    describe: Callable[[dict[str, Any]], tuple[str, str]] | None = None,
    *,
    malformed_tags: bool = False,
) -> FocusFileError:
    """The error for the first row matching `condition` (single-threaded, so in file order);
    `malformed_tags`: the first row whose Tags is not JSON (the row query itself fails on it)."""
    con.execute("SET threads = 1")
    con.execute("SET preserve_insertion_order = true")
    if malformed_tags:
        found = con.execute(
            f'SELECT rn, t FROM (SELECT row_number() OVER () AS rn, "Tags" AS t FROM {source}) '
            "WHERE t IS NOT NULL AND NOT json_valid(t) ORDER BY rn LIMIT 1"
        ).fetchone()
        if found is None:
            return FocusFileError(where, "a Tags value is not valid JSON", None, "Tags")
        return FocusFileError(where, f"expected a JSON object of tags, got {_shown(found[1])}", int(found[0]), "Tags")
    cursor = con.execute(locate_sql(params, present, source, condition))
    names = [d[0] for d in cursor.description]
    found = cursor.fetchone()
    if found is None:
        return FocusFileError(where, "a row breaks a FOCUS rule (it could not be located again)")
    row = dict(zip(names, found, strict=True))
    if describe is not None:
        column, message = describe(row)
        return FocusFileError(where, message, int(row["rn"]), column)
    column, expected = PROBLEMS[row["problem"]]
    if row["problem"] == "quantity":
        pair = columns_read(params, present).quantity
        column = pair[0] if pair else "ConsumedQuantity"
    value = row.get(column)
    shown = value is not None and not expected.endswith("NULL")
    message = f"{expected}, got {_shown(value)}" if shown else expected
    if row["problem"] == "end_before_start":
        start, end = (f"{row[c]:%Y-%m-%dT%H:%M:%SZ}" for c in ("cps", "cpe"))
        message = f"{expected}: ChargePeriodStart {start}, ChargePeriodEnd {end}"
    return FocusFileError(where, message, int(row["rn"]), column)


def _shown(value: Any) -> str:
    """An offending value as the error shows it: text quoted and cut short, never a repr of a
    library type (an error once printed `np.float64(inf)`)."""
    text = value if isinstance(value, str) else str(value)
    text = text if len(text) <= VALUE_SHOWN else text[:VALUE_SHOWN] + "..."
    return repr(text)


def identifier_list(names: Sequence[str]) -> str:
    return ", ".join(ident(n) for n in names)
