"""FOCUS files for tests, made from the real sample rows in ../shared/data/billing/focus.

`sample_csv()` is the 1,000-row upstream file as it is. `write_focus()` writes new rows in the
same 44-column layout and quoting (bare NULL tokens, JSON Tags, space-separated timestamps),
each one a copy of a real row with only the dates, amounts and tags changed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tests.support.peers import missing, shared_data


def require_pyarrow() -> None:
    """The focus source's dependency: skip loudly locally, fail under CI (which installs the extra)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        missing("pyarrow", "install the `focus` extra: pip install -e '.[focus]'")


def sample_csv() -> Path:
    return shared_data("billing", "focus", "focus_sample.csv")


def gpu_rows_csv() -> Path:
    return shared_data("billing", "focus", "focus_sample_gpu_rows.csv")


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _cell(value: str, column: str) -> str:
    """The sample's quoting: NULL and plain numbers bare, everything else quoted."""
    if value == "NULL":
        return value
    if column in (
        "BilledCost",
        "ConsumedQuantity",
        "ContractedCost",
        "ContractedUnitPrice",
        "EffectiveCost",
        "ListCost",
        "PricingQuantity",
        "Id",
    ):
        return value
    return '"' + value.replace('"', '""') + '"'


def write_rows(path: Path, header: Sequence[str], rows: Iterable[dict[str, str]]) -> Path:
    lines = [",".join(f'"{h}"' for h in header)]
    lines.extend(",".join(_cell(row[h], h) for h in header) for row in rows)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class Charge:
    """One hourly charge: when, how much, for which project tag (None: no Tags)."""

    start: datetime
    billed: float
    project: str | None
    gpu: bool = True
    effective: float | None = None
    currency: str = "USD"


def focus_rows(charges: Iterable[Charge], tag: str = "ml-project") -> tuple[list[str], list[dict[str, str]]]:
    """Rows copied from the real GPU row (g5.4xlarge) or a real non-GPU row, re-dated and re-priced."""
    header, gpu_rows = read_rows(gpu_rows_csv())
    _, all_rows = read_rows(sample_csv())
    other = next(r for r in all_rows if r["ServiceName"] == "Amazon Simple Storage Service")
    gpu = next(r for r in gpu_rows if "g5.4xlarge" in r["ChargeDescription"])
    out = []
    for charge in charges:
        row = dict(gpu if charge.gpu else other)
        row["ChargePeriodStart"] = f"{charge.start:%Y-%m-%d %H:%M:%S}"
        row["ChargePeriodEnd"] = f"{charge.start + timedelta(hours=1):%Y-%m-%d %H:%M:%S}"
        row["BilledCost"] = f"{charge.billed:.11f}"
        row["ListCost"] = row["BilledCost"]
        row["EffectiveCost"] = f"{charge.effective if charge.effective is not None else charge.billed:.11f}"
        row["BillingCurrency"] = charge.currency
        row["Tags"] = "NULL" if charge.project is None else json.dumps({tag: charge.project, "environment": "prod"})
        out.append(row)
    return header, out


def write_focus(path: Path, charges: Iterable[Charge], tag: str = "ml-project") -> Path:
    header, rows = focus_rows(charges, tag)
    return write_rows(path, header, rows)


def write_parquet(csv_path: Path, out: Path, *, typed: bool = False) -> Path:
    """The same rows as Parquet (pyarrow); `typed` stores amounts as decimals and periods as timestamps,
    as exporters that write Parquet natively do."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = pcsv.read_csv(
        csv_path,
        convert_options=pcsv.ConvertOptions(
            null_values=["NULL", ""],
            strings_can_be_null=True,
            column_types={c: pa.string() for c in read_rows(csv_path)[0]},
        ),
    )
    if typed:
        for name in ("BilledCost", "EffectiveCost"):
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, pc.cast(pc.cast(table[name], pa.float64()), pa.decimal128(24, 11)))
        for name in ("ChargePeriodStart", "ChargePeriodEnd"):
            index = table.schema.get_field_index(name)
            parsed = pc.strptime(table[name], format="%Y-%m-%d %H:%M:%S", unit="s")
            table = table.set_column(index, name, pc.assume_timezone(parsed, "UTC"))
    pq.write_table(table, out)
    return out
