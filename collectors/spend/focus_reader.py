"""Stream one FOCUS file (CSV, gzipped CSV or Parquet) into daily totals per attributed project.

The file is read in record batches with pyarrow (a CSV block or a Parquet batch at a time), so
memory stays flat however large the export. Per batch, the meaning of each *distinct* value
(a tag set, a charge description, a timestamp) is worked out once in Python (focus_rows.py) and
broadcast to the rows with NumPy, then amounts are summed per (project, GPU or not, day) with
`bincount`. That keeps the per-row work in C.

Errors name the file, the row (1 = the first row after the header) and the column.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from collectors.base import SourceError
from collectors.spend.daily import DailyTotals
from collectors.spend.focus_params import ColumnRule, FocusParams, TagRule
from collectors.spend.focus_rows import (
    COST_COLUMNS,
    NULLS,
    QUANTITY_COLUMNS,
    USAGE_PAIRS,
    TAGS,
    GpuClass,
    ValueProblem,
    classify_gpu,
    is_hours,
    local_date_of,
    parse_tags,
    parse_timestamp,
    tag_value,
)
from monitor.spend.series import UNATTRIBUTED, Basis, Scope

BLOCK_SIZE = 8 << 20
"""Bytes of CSV parsed per batch: big enough to amortise the per-batch work, small for memory."""
PARQUET_BATCH_ROWS = 65_536
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_ARROW_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\w+): invalid value '(.*)'", re.S
)

_ARROW_COLUMNS = re.compile(r"Expected \d+ columns, got \d+")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class FocusFileError(SourceError):
    """A FOCUS file that cannot be read as such; the message names file, row and column."""

    def __init__(self, path: str, message: str, row: int | None = None, column: str | None = None) -> None:
        self.path, self.row, self.column = path, row, column
        where = ", ".join(p for p in (f"row {row}" if row else "", f"column {column}" if column else "") if p)
        super().__init__(f"{path}: {where + ': ' if where else ''}{message}")


def pyarrow_missing() -> str | None:
    """Why the focus source cannot run here, or None."""
    try:
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return "reading FOCUS files needs pyarrow: install mlmon with the `focus` extra (pip install 'mlmon[focus]')"
    return None


@dataclass
class FileAggregate:
    """What one file adds up to."""

    path: str
    currency: str | None
    totals: DailyTotals
    rows: int = 0
    unattributed_rows: int = 0
    gpu_rows: int = 0
    billed: float = 0.0
    projects: set[str] = field(default_factory=set)

    @property
    def days(self) -> list[date]:
        return sorted(self.totals.days)


def detect_format(path: Path, configured: str) -> str:
    if configured != "auto":
        return configured
    with path.open("rb") as handle:
        head = handle.read(4)
    if head == _PARQUET_MAGIC or path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    return "csv"


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def csv_header(path: Path) -> list[str]:
    """Column names of a CSV file (gzipped or not), without a UTF-8 byte-order mark."""
    try:
        with gzip.open(path, "rb") if _is_gzip(path) else path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            header = next(csv.reader(text), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FocusFileError(str(path), f"cannot read the CSV header: {exc}") from None
    if not header:
        raise FocusFileError(str(path), "the file is empty: expected a CSV header of FOCUS columns")
    return [name.strip() for name in header]


class _Codes:
    """Small integer codes for projects and days, shared by every batch of a file."""

    def __init__(self) -> None:
        self.projects: list[str] = [UNATTRIBUTED]
        self.project_index: dict[str, int] = {UNATTRIBUTED: 0}
        self.days: list[date] = []
        self.day_index: dict[date, int] = {}

    def project(self, name: str) -> int:
        code = self.project_index.get(name)
        if code is None:
            code = self.project_index[name] = len(self.projects)
            self.projects.append(name)
        return code

    def day(self, day: date) -> int:
        code = self.day_index.get(day)
        if code is None:
            code = self.day_index[day] = len(self.days)
            self.days.append(day)
        return code


class _Sums:
    """Billed, effective, GPU-seconds and row counts per (project, gpu flag, day), grown on demand."""

    MEASURES = 4

    def __init__(self) -> None:
        self.projects = 8
        self.days = 32
        self.data: FloatArray = np.zeros((self.MEASURES, self.projects * 2 * self.days))

    def fit(self, projects: int, days: int) -> None:
        if projects <= self.projects and days <= self.days:
            return
        grown_p, grown_d = max(self.projects, projects * 2), max(self.days, days * 2)
        shaped = self.data.reshape(self.MEASURES, self.projects * 2, self.days)
        data = np.zeros((self.MEASURES, grown_p * 2, grown_d))
        data[:, : self.projects * 2, : self.days] = shaped
        self.projects, self.days, self.data = grown_p, grown_d, data.reshape(self.MEASURES, -1)

    def add(self, keys: IntArray, measures: list[FloatArray]) -> None:
        size = self.data.shape[1]
        for index, weights in enumerate(measures):
            self.data[index] += np.bincount(keys, weights=weights, minlength=size)

    def key(self, project: IntArray, gpu: npt.NDArray[np.bool_], day: IntArray) -> IntArray:
        out: IntArray = (project * 2 + gpu.astype(np.int64)) * self.days + day
        return out

    def cells(self) -> Iterator[tuple[int, bool, int, FloatArray]]:
        shaped = self.data.reshape(self.MEASURES, self.projects * 2, self.days)
        for row, day in zip(*np.nonzero(shaped[3]), strict=True):
            yield int(row) // 2, bool(row % 2), int(day), shaped[:, row, day]


class _Reader:
    """The state of reading one file."""

    def __init__(self, path: Path, params: FocusParams, tz: tzinfo, expected: tuple[str, str] | None) -> None:
        self.path, self.params, self.tz = path, params, tz
        self.name = str(path)
        self.currency: str | None = expected[0] if expected else None
        self.currency_origin = expected[1] if expected else ""
        self.codes = _Codes()
        self.sums = _Sums()
        self.offset = 0
        self.gpu_rows = 0
        self._dates: dict[Any, date] = {}
        self._rule_cache: list[dict[Any, int]] = [{} for _ in params.attribution]
        self._tags: dict[str, dict[str, str]] = {}
        self._gpu: dict[tuple[Any, Any], GpuClass] = {}
        self._hours: dict[Any, bool] = {}

    def fail(self, message: str, row_in_batch: int | None = None, column: str | None = None) -> FocusFileError:
        row = None if row_in_batch is None else self.offset + row_in_batch + 1
        return FocusFileError(self.name, message, row, column)

    # --- per batch ---------------------------------------------------------------------------

    def batch(self, columns: dict[str, Any]) -> None:
        n = len(columns["BilledCost"])
        costs = [self._numbers(columns[c], c, required=True) for c in COST_COLUMNS]
        self._check_currency(columns["BillingCurrency"])
        day_codes = self._days(columns["ChargePeriodStart"], "ChargePeriodStart")
        project = np.zeros(n, dtype=np.int64)
        for index, rule in enumerate(self.params.attribution):
            found = self._attribute(index, rule, columns[rule.column])
            project = np.where(project == 0, found, project)
        gpu, gpus = self._gpu_rows(columns.get("SkuPriceDetails"), columns.get("ChargeDescription"), n)
        quantity, hours = self._usage(columns, n)
        usable = gpu & hours & np.isfinite(gpus) & np.isfinite(quantity)
        gpu_seconds = np.where(usable, np.nan_to_num(quantity) * np.nan_to_num(gpus) * 3600.0, 0.0)
        self.gpu_rows += int(gpu.sum())
        self.sums.fit(len(self.codes.projects), len(self.codes.days))
        keys = self.sums.key(project, gpu, day_codes)
        self.sums.add(keys, [costs[0], costs[1], gpu_seconds, np.ones(n)])
        self.offset += n

    def _dictionary(self, array: Any) -> tuple[list[Any], IntArray, IntArray | None]:
        """(distinct values, code per row, rows that are null); a null's code is len(values) - 1."""
        import pyarrow as pa
        import pyarrow.compute as pc  # type: ignore[import-untyped]

        if not pa.types.is_dictionary(array.type):
            array = pc.dictionary_encode(array)
        values = array.dictionary.to_pylist()
        nulls = None
        if array.null_count:
            nulls = np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))
            codes = pc.fill_null(array.indices, len(values)).to_numpy(zero_copy_only=False).astype(np.int64)
            values.append(None)
        else:
            codes = array.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        return values, codes, nulls

    @staticmethod
    def _first_row(codes: IntArray, code: int) -> int:
        return int(np.flatnonzero(codes == code)[0])

    def _numbers(self, array: Any, column: str, *, required: bool) -> FloatArray:
        import pyarrow as pa
        import pyarrow.compute as pc

        if array.null_count and required:
            row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
            raise self.fail("expected a number, got NULL (FOCUS requires a value)", row, column)
        if not pa.types.is_floating(array.type):
            try:
                array = pc.cast(array, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                for row, value in enumerate(array.to_pylist()):
                    try:
                        float(value) if value is not None else None
                    except (TypeError, ValueError):
                        raise self.fail(f"expected a number, got {value!r}", row, column) from None
                raise self.fail(f"expected numbers, got values of type {array.type}", None, column) from None
        out: FloatArray = array.to_numpy(zero_copy_only=False).astype(np.float64)
        if required and not np.isfinite(out).all():
            row = int(np.flatnonzero(~np.isfinite(out))[0])
            raise self.fail(f"expected a finite number, got {out[row]!r}", row, column)
        return out

    def _check_currency(self, array: Any) -> None:
        values, codes, nulls = self._dictionary(array)
        if nulls is not None:
            raise self.fail("expected an ISO 4217 currency code, got NULL", int(nulls[0]), "BillingCurrency")
        if self.currency is None:
            self.currency, self.currency_origin = str(values[codes[0]]).strip(), "file"
        bad = [c for c in np.unique(codes).tolist() if str(values[c]).strip() != self.currency]
        if not bad:
            return
        row = min(self._first_row(codes, c) for c in bad)
        value = str(values[codes[row]]).strip()
        if self.currency_origin == "file":
            message = (
                f"mixed currencies: {value} here, {self.currency} in the rows before; amounts in two "
                "currencies are never summed, so a file must bill in one"
            )
        else:
            message = (
                f"billed in {value}, but this source reads {self.currency} ({self.currency_origin}); "
                "configure one source per currency"
            )
        raise self.fail(message, row, "BillingCurrency")

    def _days(self, array: Any, column: str) -> IntArray:
        values, codes, nulls = self._dictionary(array)
        if nulls is not None:
            raise self.fail("expected a date-time, got NULL", int(nulls[0]), column)
        mapping = np.empty(len(values), dtype=np.int64)
        for code, value in enumerate(values):
            day = self._dates.get(value)
            if day is None:
                try:
                    day = self._dates[value] = local_date_of(value, self.tz)
                except ValueProblem as exc:
                    raise self.fail(str(exc), self._first_row(codes, code), column) from None
            mapping[code] = self.codes.day(day)
        out: IntArray = mapping[codes]
        return out

    def _attribute(self, index: int, rule: TagRule | ColumnRule, array: Any) -> IntArray:
        values, codes, _nulls = self._dictionary(array)
        cache = self._rule_cache[index]
        mapping = np.zeros(len(values), dtype=np.int64)
        for code, value in enumerate(values):
            found = cache.get(value)
            if found is None:
                text = _text(value)
                if isinstance(rule, TagRule):
                    project = None
                    if text is not None:
                        tags = self._tags.get(text)
                        if tags is None:
                            try:
                                tags = self._tags[text] = parse_tags(text)
                            except ValueProblem as exc:
                                raise self.fail(str(exc), self._first_row(codes, code), TAGS) from None
                        project = rule.project_for_tag(tag_value(tags, rule.key))
                else:
                    project = rule.project_for_value(text)
                found = cache[value] = 0 if project is None else self.codes.project(project)
            mapping[code] = found
        out: IntArray = mapping[codes]
        return out

    def _gpu_rows(self, details: Any, descriptions: Any, n: int) -> tuple[npt.NDArray[np.bool_], FloatArray]:
        if details is None and descriptions is None:
            return np.zeros(n, dtype=bool), np.full(n, np.nan)
        none: tuple[list[Any], IntArray, None] = ([None], np.zeros(n, np.int64), None)
        d_values, d_codes, _ = self._dictionary(details) if details is not None else none
        c_values, c_codes, _ = self._dictionary(descriptions) if descriptions is not None else none
        width = len(c_values)
        if len(d_values) == 1:  # FOCUS 1.0: no SkuPriceDetails, the descriptions alone decide
            pairs, unique, inverse = c_codes, np.arange(width), c_codes
        else:
            pairs = d_codes * width + c_codes
            unique, inverse = np.unique(pairs, return_inverse=True)
        flags = np.zeros(len(unique), dtype=bool)
        counts = np.full(len(unique), np.nan)
        for i, pair in enumerate(unique.tolist()):
            key = (d_values[pair // width], c_values[pair % width])
            found = self._gpu.get(key)
            if found is None:
                try:
                    found = self._gpu[key] = classify_gpu(_text(key[0]), _text(key[1]), self.params.gpu_instances)
                except ValueProblem as exc:
                    raise self.fail(str(exc), int(np.flatnonzero(pairs == pair)[0]), "SkuPriceDetails") from None
            flags[i] = found.gpu
            counts[i] = np.nan if found.gpus is None else found.gpus
        return flags[inverse].reshape(n), counts[inverse].reshape(n)

    def _usage(self, columns: dict[str, Any], n: int) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Quantity per row and whether it is in hours: ConsumedQuantity/Unit, else PricingQuantity/Unit."""
        for quantity, unit in USAGE_PAIRS:
            if columns.get(quantity) is not None and columns.get(unit) is not None:
                values, codes, _ = self._dictionary(columns[unit])
                flags = np.array([self._hours.setdefault(v, is_hours(_text(v))) for v in values], dtype=bool)
                hours: npt.NDArray[np.bool_] = flags[codes]
                return self._numbers(columns[quantity], quantity, required=False), hours
        return np.full(n, np.nan), np.zeros(n, dtype=bool)

    # --- result ------------------------------------------------------------------------------

    def result(self) -> FileAggregate:
        totals = DailyTotals(self.currency or self.params.currency or "USD", self.tz)
        aggregate = FileAggregate(self.name, self.currency, totals, rows=self.offset, gpu_rows=self.gpu_rows)
        values = totals.values
        for project_code, gpu, day_code, (billed, effective, seconds, rows) in self.sums.cells():
            project, day = self.codes.projects[project_code], self.codes.days[day_code]
            scope = Scope.GPU if gpu else Scope.OTHER
            values[totals.spend_key(project, Basis.BILLED, scope)][day] += float(billed)
            values[totals.spend_key(project, Basis.EFFECTIVE, scope)][day] += float(effective)
            values[totals.rows_key(project)][day] += float(rows)
            if gpu and seconds:
                values[totals.gpu_key(project)][day] += float(seconds)
            aggregate.billed += float(billed)
            if project == UNATTRIBUTED:
                aggregate.unattributed_rows += int(rows)
            else:
                aggregate.projects.add(project)
        return aggregate


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return None if text in NULLS else text


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
    source: Any = pa.OSFile(str(path))
    if _is_gzip(path):
        source = pa.CompressedInputStream(source, "gzip")
    reader = pcsv.open_csv(
        source,
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
    reader = _Reader(path, params, tz, expected_currency)
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
        raise _located(path, params, header, exc, block_size) from None
    except (OSError, EOFError, pa.ArrowException) as exc:
        raise FocusFileError(str(path), f"cannot read the file: {exc}") from None
    return reader.result()


def _located(path: Path, params: FocusParams, header: list[str], exc: Exception, block_size: int) -> FocusFileError:
    """Turn pyarrow's parse and conversion errors into ones naming the row (and column)."""
    if _ARROW_COLUMNS.search(str(exc)):
        return _ragged_row(path, len(header))
    found = _ARROW_CONVERSION.search(str(exc))
    if not found:
        return FocusFileError(str(path), f"cannot parse the file: {exc}")
    index, value = int(found.group(1)), found.group(3)
    column = header[index] if index < len(header) else f"#{index}"
    import pyarrow as pa
    import pyarrow.csv as pcsv

    source: Any = pa.OSFile(str(path))
    if _is_gzip(path):
        source = pa.CompressedInputStream(source, "gzip")
    reader = pcsv.open_csv(
        source,
        read_options=pcsv.ReadOptions(block_size=block_size, use_threads=False, column_names=header, skip_rows=1),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            include_columns=[column],
            column_types={column: pa.string()},
            null_values=list(NULLS),
            strings_can_be_null=True,
        ),
    )
    offset = 0
    for batch in reader:
        for row, text in enumerate(batch.column(0).to_pylist()):
            if text is None:
                continue
            try:
                float(text)
            except ValueError:
                return FocusFileError(str(path), f"expected a number, got {text!r}", offset + row + 1, column)
        offset += batch.num_rows
    return FocusFileError(str(path), f"expected a number, got {value!r}", None, column)


def _ragged_row(path: Path, width: int) -> FocusFileError:
    """The first record with more or fewer fields than the header (read again with the csv module)."""
    with gzip.open(path, "rb") if _is_gzip(path) else path.open("rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        next(reader, None)
        for row, record in enumerate(reader, start=1):
            if len(record) != width:
                return FocusFileError(
                    str(path), f"expected {width} fields as in the header, got {len(record)} (an unquoted comma?)", row
                )
    return FocusFileError(str(path), f"a record does not have the header's {width} fields")
