"""Compare two tables of data column by column, with the same profiles, statistics and verdicts as
pushed distributions and the `distribution` rule (for `mlmon quality drift` and the benchmark)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monitor.quality.drift import (
    ColumnDrift,
    Profile,
    ProfileError,
    Thresholds,
    adjust_p_values,
    categorical_profile,
    compare,
    numeric_profile,
)

MISSING = frozenset({"", "na", "nan", "null", "none"})


class TableError(ValueError):
    """A table cannot be read; the message names the file, and the row or column."""


@dataclass(frozen=True)
class Column:
    """A column as numbers (with the count of missing cells) or as category labels."""

    numbers: np.ndarray[Any, np.dtype[np.float64]] | None
    labels: list[str] | None
    missing: int
    first_text: str | None = None
    """Where a column read as text first stopped being a number: `file:line: 'cell'`."""

    def profile(self, bins: int | None) -> Profile:
        if self.numbers is not None:
            return numeric_profile(self.numbers, self.missing, bins)
        counts: dict[str, int] = {}
        for label in self.labels or []:
            counts[label] = counts.get(label, 0) + 1
        return categorical_profile(counts, self.missing)


def read_csv(path: Path) -> dict[str, Column]:
    """Columns of a CSV file with a header row; a column is numeric when every non-empty cell is."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise TableError(f"{path}: cannot read ({exc})") from None
    if not rows:
        raise TableError(f"{path}: empty file, expected a header row")
    header = rows[0]
    if len(set(header)) != len(header):
        raise TableError(f"{path}: duplicate column names in the header")
    cells: list[list[str]] = [[] for _ in header]
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise TableError(f"{path}:{number}: {len(row)} cells, the header has {len(header)}")
        for index, cell in enumerate(row):
            cells[index].append(cell)
    return {name: _column(values, path) for name, values in zip(header, cells, strict=True)}


def _column(values: Sequence[str], path: Path) -> Column:
    present = [v for v in values if v.strip().lower() not in MISSING]
    missing = len(values) - len(present)
    try:
        numbers = np.array([float(v) for v in present], dtype=np.float64)
    except ValueError:
        return Column(None, present, missing, _first_text(values, path))
    if not all(math.isfinite(x) for x in numbers):
        return Column(None, present, missing, _first_text(values, path))
    return Column(numbers, None, missing)


def _first_text(values: Sequence[str], path: Path) -> str | None:
    for line, cell in enumerate(values, start=2):  # line 1 is the header
        if cell.strip().lower() in MISSING:
            continue
        try:
            if math.isfinite(float(cell)):
                continue
        except ValueError:
            pass
        return f"{path}:{line}: {cell[:40]!r}"
    return None


@dataclass(frozen=True)
class Verdict:
    column: str
    drift: ColumnDrift
    exceeded: list[str]
    p_adjusted: float | None
    drifting: bool


def compare_tables(
    reference: Mapping[str, Column],
    current: Mapping[str, Column],
    thresholds: Thresholds,
    correction: str = "holm",
    bins: int = 10,
    columns: Iterable[str] | None = None,
) -> list[Verdict]:
    """Per-column verdicts, as the `distribution` rule would give them for one push."""
    names = list(columns) if columns is not None else [c for c in reference if c in current]
    missing = [n for n in names if n not in reference or n not in current]
    if missing:
        raise TableError(f"columns {missing} are not in both tables")
    if not names:
        raise TableError("the tables have no column in common")
    drifts = []
    for name in names:
        ref_column, cur_column = reference[name], current[name]
        if ref_column.numbers is not None and cur_column.numbers is None and cur_column.first_text:
            where, cell = cur_column.first_text.rsplit(": ", 1)
            raise TableError(f"{where}: column {name!r}: {cell} is not a number; the reference column is numeric")
        try:
            ref_profile = ref_column.profile(bins)
            drifts.append((name, compare(ref_profile, cur_column.profile(None))))
        except ProfileError as exc:
            raise TableError(f"column {name!r}: {exc}") from None
    adjusted = adjust_p_values([d.p_value for _, d in drifts], correction) if thresholds.p_value is not None else []
    out = []
    for index, (name, drift) in enumerate(drifts):
        exceeded = thresholds.exceeded(drift.statistics())
        p_adj = adjusted[index] if adjusted else None
        drifting = bool(exceeded) and (thresholds.p_value is None or (p_adj is not None and p_adj < thresholds.p_value))
        out.append(Verdict(name, drift, exceeded, p_adj, drifting))
    return out
