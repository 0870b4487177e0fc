"""Stream one FOCUS file (CSV, gzipped CSV or Parquet) into daily totals per attributed project.

The file is read in record batches with pyarrow (a CSV block or a Parquet batch at a time), so
memory stays flat however large the export; focus_batch.py does the work per batch. Errors name
the file, the row (1 = the first row after the header) and the column.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import tzinfo
from pathlib import Path
from typing import Any

from collectors.spend.focus_batch import BatchReader, FileAggregate
from collectors.spend.focus_format import byte_source, csv_header, detect_format
from collectors.spend.focus_locate import located
from collectors.spend.focus_params import FocusParams
from collectors.spend.focus_rows import COST_COLUMNS, NULLS, QUANTITY_COLUMNS, USAGE_PAIRS, FocusFileError

__all__ = ["FileAggregate", "FocusFileError", "pyarrow_missing", "read_focus_file"]

BLOCK_SIZE = 8 << 20
"""Bytes of CSV parsed per batch: big enough to amortise the per-batch work, small for memory."""
PARQUET_BATCH_ROWS = 65_536


def pyarrow_missing() -> str | None:
    """Why the focus source cannot run here, or None."""
    try:
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return "reading FOCUS files needs pyarrow: install mlmon with the `focus` extra (pip install 'mlmon[focus]')"
    return None


def _wanted(present: list[str], params: FocusParams, path: str) -> list[str]:
    """The columns to read, after checking the mandatory ones are there.

    ChargePeriodEnd must be present (FOCUS) but is not read: a charge counts on the day its
    period starts. Of the usage columns, one quantity/unit pair is read."""
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
    read = [c for c in params.columns_needed if c != "ChargePeriodEnd"]
    read += [c for c in ("SkuPriceDetails", "ChargeDescription") if c in present and c not in read]
    for pair in USAGE_PAIRS:
        if all(c in present for c in pair):
            read += [c for c in pair if c not in read]
            break
    return read


def _csv_batches(path: Path, header: list[str], params: FocusParams, block_size: int) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.csv as pcsv  # type: ignore[import-untyped]

    wanted = _wanted(header, params, str(path))
    numeric = {*COST_COLUMNS, *QUANTITY_COLUMNS}
    text = pa.dictionary(pa.int32(), pa.string())
    types = {c: (pa.float64() if c in numeric else text) for c in wanted}
    reader = pcsv.open_csv(
        byte_source(path),
        read_options=pcsv.ReadOptions(block_size=block_size, use_threads=True, column_names=header, skip_rows=1),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            include_columns=wanted,
            column_types=types,
            null_values=list(NULLS),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    return iter(reader)


def _parquet_batches(path: Path, params: FocusParams) -> tuple[list[str], Iterator[Any]]:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    try:
        handle = pq.ParquetFile(str(path))
    except Exception as exc:
        raise FocusFileError(str(path), f"not a readable Parquet file: {exc}") from None
    present = list(handle.schema_arrow.names)
    wanted = _wanted(present, params, str(path))
    return present, handle.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted)


def read_focus_file(
    path: Path,
    params: FocusParams,
    tz: tzinfo,
    expected_currency: tuple[str, str] | None = None,
    *,
    block_size: int = BLOCK_SIZE,
) -> FileAggregate:
    """Read and attribute one file; raise FocusFileError naming the file, row and column.

    `expected_currency`: (code, where it comes from) when earlier files or params fixed it.
    """
    import pyarrow as pa

    if expected_currency is None and params.currency is not None:
        expected_currency = (params.currency, "params.currency")
    reader = BatchReader(path, params, tz, expected_currency)
    kind = detect_format(path, params.format)
    header = csv_header(path) if kind == "csv" else []
    try:
        if kind == "parquet":
            header, batches = _parquet_batches(path, params)
        else:
            batches = _csv_batches(path, header, params, block_size)
        for batch in batches:
            columns = {name: batch.column(name) for name in batch.schema.names}
            reader.batch(columns)
    except pa.ArrowInvalid as exc:
        raise located(path, header, exc, block_size) from None
    except (OSError, EOFError, pa.ArrowException) as exc:
        raise FocusFileError(str(path), f"cannot read the file: {exc}") from None
    return reader.result()
