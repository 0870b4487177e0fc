"""One FOCUS file, batch by batch: validate, attribute, classify and sum (pure NumPy / pyarrow work).

Per batch, the meaning of each *distinct* value (a tag set, a charge description, a timestamp)
is worked out once in Python (focus_rows.py) and broadcast to the rows with NumPy; amounts are
summed per (project, GPU or not, day) with `bincount`. Errors name the row: 1 is the first row
after the header.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from collectors.spend.daily import DailyTotals
from collectors.spend.focus_params import ColumnRule, FocusParams, TagRule
from collectors.spend.focus_rows import (
    COST_COLUMNS,
    NULLS,
    TAGS,
    USAGE_PAIRS,
    FocusFileError,
    GpuClass,
    ValueProblem,
    classify_gpu,
    is_hours,
    local_date_of,
    parse_tags,
    tag_value,
)
from monitor.spend.series import UNATTRIBUTED, Basis, Scope

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


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


class Codes:
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


class Sums:
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


class BatchReader:
    """The state of reading one file."""

    def __init__(self, path: Path, params: FocusParams, tz: tzinfo, expected: tuple[str, str] | None) -> None:
        self.path, self.params, self.tz = path, params, tz
        self.name = str(path)
        self.currency: str | None = expected[0] if expected else None
        self.currency_origin = expected[1] if expected else ""
        self.codes = Codes()
        self.sums = Sums()
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
        import pyarrow as pa  # type: ignore[import-untyped]
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
