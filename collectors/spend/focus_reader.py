"""Read one FOCUS file (CSV, gzipped CSV or Parquet) into daily totals per attributed project.

DuckDB does the reading and the whole aggregation in one query (focus_sql.py, focus_duck.py),
reading only the columns it needs. Errors name the file, the row (1 = the first row after the
header), the column and what was expected; a file with a duplicate column or no rows is
refused before it is read.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

from collectors.spend.daily import DailyTotals, Key
from collectors.spend.focus_duck import DayRow, connect, csv_source, locate, parquet_source, register_gpus, run_daily
from collectors.spend.focus_format import csv_header, detect_format, is_gzip
from collectors.spend.focus_params import FocusParams
from collectors.spend.focus_rows import FocusFileError
from collectors.spend.focus_sql import quote
from monitor.spend.series import UNATTRIBUTED, Basis, Scope

__all__ = ["FileAggregate", "FocusFileError", "duckdb_missing", "pyarrow_missing", "read_focus_file"]

SCOPES = {"purchase": Scope.PURCHASE, "credit": Scope.CREDIT, "adjustment": Scope.ADJUSTMENT}


@dataclass
class FileAggregate:
    """What one file (or query) adds up to."""

    path: str
    currency: str | None
    totals: DailyTotals
    rows: int = 0
    unattributed_rows: int = 0
    gpu_rows: int = 0
    billed: float = 0.0
    projects: set[str] = field(default_factory=set)
    start_days: set[date] = field(default_factory=set)
    """Days some charge starts on (a spread charge also covers later days)."""

    @property
    def days(self) -> list[date]:
        return sorted(self.totals.days)


def duckdb_missing() -> str | None:
    """Why the focus source cannot run here, or None."""
    # found, not imported: a CSV read needs no Arrow, and importing pyarrow costs ~45 MiB of RSS
    for module in ("duckdb", "pyarrow"):
        if importlib.util.find_spec(module) is None:
            return f"reading FOCUS needs {module}: reinstall mlmon (pip install -e .), which depends on it"
    return None


pyarrow_missing = duckdb_missing


def parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    try:
        return list(pq.read_schema(str(path)).names)
    except Exception as exc:  # pyarrow raises several unrelated types for a broken file
        raise FocusFileError(str(path), f"not a readable Parquet file: {type(exc).__name__}") from None


def check_header(path: str, present: list[str], params: FocusParams) -> None:
    """Duplicate columns (DuckDB would rename one silently; names are case-insensitive in SQL)
    and missing mandatory ones."""
    seen: dict[str, str] = {}
    for name in present:
        before = seen.get(name.lower())
        if before is not None:
            same = "twice" if before == name else f"twice ({before} and {name}; SQL names ignore case)"
            raise FocusFileError(path, f"column {name} appears {same}: expected each FOCUS column once", 1, name)
        seen[name.lower()] = name
    missing = [c for c in params.columns_needed if c not in present]
    if missing:
        shown = ", ".join(missing)
        raise FocusFileError(
            path,
            f"missing mandatory column{'s' if len(missing) > 1 else ''} {shown} (expected a FOCUS 1.0-1.2 "
            f"cost and usage export; the header has {len(present)} columns)",
            None,
            shown,
        )


def aggregate_rows(
    where: str, rows: list[DayRow], params: FocusParams, tz: tzinfo, currency: str | None
) -> FileAggregate:
    totals = DailyTotals(currency or params.currency or "USD", tz)
    aggregate = FileAggregate(where, currency, totals)
    values = totals.values
    # A file's rows name a few hundred (project, scope) pairs: their series are looked up once.
    series: dict[tuple[str, str, bool], tuple[dict[date, float], dict[date, float], Key, Key]] = {}
    for r in rows:
        project = r.project or UNATTRIBUTED
        found = series.get((project, r.category, r.gpu))
        if found is None:
            scope = SCOPES.get(r.category) or (Scope.GPU if r.gpu else Scope.OTHER)
            found = series[project, r.category, r.gpu] = (
                values[totals.spend_key(project, Basis.BILLED, scope)],
                values[totals.spend_key(project, Basis.EFFECTIVE, scope)],
                totals.rows_key(project),
                totals.gpu_key(project),
            )
            if project != UNATTRIBUTED:
                aggregate.projects.add(project)
        billed, effective, rows_key, gpu_key = found
        day, starting = r.day, r.starting
        billed[day] += r.billed
        effective[day] += r.effective
        if starting:  # rows are counted on the day they start, so a day's counts add up to the file
            values[rows_key][day] += starting
            aggregate.start_days.add(day)
            aggregate.rows += starting
            if r.gpu:
                aggregate.gpu_rows += starting
            if project == UNATTRIBUTED:
                aggregate.unattributed_rows += starting
        if r.gpu and r.gpu_seconds:
            values[gpu_key][day] += r.gpu_seconds
        aggregate.billed += r.billed
    return aggregate


def check_currency(
    con: Any,
    rows: list[DayRow],
    params: FocusParams,
    present: list[str],
    source: str,
    where: str,
    expected: tuple[str, str] | None,
) -> str | None:
    """The one currency the rows bill in, or FocusFileError at the first row that differs."""
    found = {r.currency for r in rows}
    if not found:
        return expected[0] if expected else None
    if expected is None:
        if len(found) == 1:
            return found.pop()
        first = locate(con, params, present, source, where, "true", lambda row: ("BillingCurrency", ""))
        established = _currency_of_row(con, params, present, source, first.row or 1)

        def mixed(row: dict[str, Any]) -> tuple[str, str]:
            return "BillingCurrency", (
                f"mixed currencies: {row['currency']} here, {established} in the rows before; amounts in two "
                "currencies are never summed, so a file must bill in one"
            )

        raise locate(con, params, present, source, where, f"currency <> {quote(established)}", mixed)
    code, origin = expected
    if found == {code}:
        return code

    def other(row: dict[str, Any]) -> tuple[str, str]:
        return "BillingCurrency", (
            f"billed in {row['currency']}, but this source reads {code} ({origin}); configure one source per currency"
        )

    raise locate(con, params, present, source, where, f"currency <> {quote(code)}", other)


def _currency_of_row(con: Any, params: FocusParams, present: list[str], source: str, row: int) -> str:
    from collectors.spend.focus_sql import locate_sql

    found = con.execute(locate_sql(params, present, source, f"rn = {row}")).fetchone()
    names = [d[0] for d in con.description]
    return str(dict(zip(names, found, strict=True))["currency"]) if found else ""


def read_source(
    con: Any,
    source: str,
    present: list[str],
    params: FocusParams,
    tz: tzinfo,
    where: str,
    expected_currency: tuple[str, str] | None,
) -> FileAggregate:
    """The aggregate of any DuckDB relation text holding FOCUS columns."""
    register_gpus(con, params.gpu_instances)
    rows = run_daily(con, params, present, source, where)
    if not rows:
        raise FocusFileError(where, "no rows: expected billing rows after the header")
    currency = check_currency(con, rows, params, present, source, where, expected_currency)
    return aggregate_rows(where, rows, params, tz, currency)


def read_focus_file(
    path: Path,
    params: FocusParams,
    tz: tzinfo,
    expected_currency: tuple[str, str] | None = None,
    *,
    header: list[str] | None = None,
) -> FileAggregate:
    """Read and attribute one file; raise FocusFileError naming the file, row and column.

    `expected_currency`: (code, where it comes from) when earlier files or params fixed it.
    `header`: the columns of a CSV whose own first line is not the header (an appended tail).
    """
    if expected_currency is None and params.currency is not None:
        expected_currency = (params.currency, "params.currency")
    where = str(path)
    kind = detect_format(path, params.format)
    if kind == "parquet":
        present = parquet_columns(path)
        source = parquet_source(path)
    else:
        present = header or csv_header(path)
        source = csv_source(path, present, is_gzip(path))
    check_header(where, present, params)
    con = connect()
    try:
        return read_source(con, source, present, params, tz, where, expected_currency)
    finally:
        con.close()
