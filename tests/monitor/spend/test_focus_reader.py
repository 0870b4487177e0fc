"""Reading FOCUS files: the real sample rows and their quirks, gzip, Parquet, and bad input."""

from __future__ import annotations

import csv
import gzip
import json
import math
import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import monitor.config.models  # noqa: F401  (loads the config package before the spend modules)
from collectors.spend.focus_params import FocusParams
from collectors.spend.focus_reader import FileAggregate, FocusFileError, read_focus_file
from monitor.spend.series import ATTRIBUTED, BASIS, GPU_USAGE, ROWS, SCOPE, UNATTRIBUTED, currency_of_metric, zone
from tests.monitor.spend.focus_data import (
    Charge,
    gpu_rows_csv,
    read_rows,
    require_pyarrow,
    sample_csv,
    write_focus,
    write_parquet,
    write_rows,
)


def params(**extra: object) -> FocusParams:
    return FocusParams.model_validate({"path": "unused", "attribution": [{"tag": "application"}], **extra})


def read(path: Path, **extra: object) -> FileAggregate:
    p = params(**extra)
    return read_focus_file(path, p, zone(p.timezone))


def sums(aggregate: FileAggregate) -> dict[tuple[str, str, str], float]:
    """(project, basis, scope) -> amount over all days."""
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for (metric, labels), per_day in aggregate.totals.values.items():
        label = dict(labels)
        if currency_of_metric(metric) is not None:
            out[(label[ATTRIBUTED], label[BASIS], label[SCOPE])] += sum(per_day.values())
    return out


def reference(path: Path, tag: str) -> dict[str, tuple[float, float, int]]:
    """An independent reading with the csv module: tag value -> (billed, effective, rows)."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    _, rows = read_rows(path)
    for row in rows:
        tags = {} if row["Tags"] in ("NULL", "") else json.loads(row["Tags"])
        value = next((v for k, v in tags.items() if k.strip() == tag), None) or UNATTRIBUTED
        out[value][0] += float(row["BilledCost"])
        out[value][1] += float(row["EffectiveCost"])
        out[value][2] += 1
    return {k: (v[0], v[1], int(v[2])) for k, v in out.items()}


def test_the_real_sample_adds_up_per_project_as_the_csv_module_does() -> None:
    aggregate = read(sample_csv())
    expected = reference(sample_csv(), "application")
    got = sums(aggregate)
    assert aggregate.rows == 1000 and aggregate.currency == "USD"
    scopes = ("gpu", "other", "purchase", "credit", "adjustment")
    for project, (billed, effective, _rows) in expected.items():
        assert math.isclose(sum(got[(project, "billed", s)] for s in scopes), billed, abs_tol=1e-9)
        assert math.isclose(sum(got[(project, "effective", s)] for s in scopes), effective, abs_tol=1e-9)
    # 289 rows have Tags NULL and 51 Microsoft rows have tags without `application`: unattributed, kept
    assert aggregate.unattributed_rows == expected[UNATTRIBUTED][2] == 340
    assert math.isclose(aggregate.billed, sum(v[0] for v in expected.values()), abs_tol=1e-9)
    assert aggregate.days == [date(2024, 9, d) for d in range(1, 31)]


def test_credits_and_adjustments_are_kept_apart_from_usage() -> None:
    """The sample's one Credit row (-2.6137) and two Adjustment rows (0.272 together)."""
    _, rows = read_rows(sample_csv())
    by_category: dict[str, float] = defaultdict(float)
    for row in rows:
        by_category[row["ChargeCategory"]] += float(row["BilledCost"])
    got = sums(read(sample_csv()))
    for scope, category in (("credit", "Credit"), ("adjustment", "Adjustment")):
        total = sum(v for (_, basis, s), v in got.items() if basis == "billed" and s == scope)
        assert math.isclose(total, by_category[category], abs_tol=1e-9) and total != 0
    usage = sum(v for (_, basis, s), v in got.items() if basis == "billed" and s in ("gpu", "other"))
    assert math.isclose(usage, by_category["Usage"], abs_tol=1e-9)


def test_only_the_ten_gpu_instance_rows_are_gpu_spend_with_their_gpu_hours() -> None:
    aggregate = read(sample_csv())
    _, gpu_rows = read_rows(gpu_rows_csv())
    assert aggregate.gpu_rows == 10
    gpu_billed = sum(v for (_, basis, scope), v in sums(aggregate).items() if basis == "billed" and scope == "gpu")
    assert math.isclose(gpu_billed, sum(float(r["BilledCost"]) for r in gpu_rows), abs_tol=1e-9)
    # every GPU row is one instance of 1 GPU (g5.4xlarge: A10G, g3.4xlarge: M60) billed in Hours
    hours = sum(sum(v.values()) for (metric, _), v in aggregate.totals.values.items() if metric == GPU_USAGE) / 3600
    assert math.isclose(hours, sum(float(r["ConsumedQuantity"]) for r in gpu_rows), abs_tol=1e-6)


def test_tag_keys_with_a_stray_space_still_attribute() -> None:
    # The Microsoft rows carry both "org" and " org" (leading space); some only " org".
    aggregate = read(sample_csv(), attribution=[{"tag": "Tags.org"}])
    expected = reference(sample_csv(), "org")
    got = sums(aggregate)
    assert math.isclose(sum(v for (p, b, _), v in got.items() if p == "trey" and b == "billed"), expected["trey"][0])


def test_rules_apply_in_order_and_unmatched_rows_stay_unattributed() -> None:
    _, rows = read_rows(sample_csv())
    account = rows[0]["SubAccountId"]
    aggregate = read(
        sample_csv(),
        attribution=[
            {"column": "SubAccountId", "equals": account, "project": "churn"},
            {"column": "ServiceName", "matches": "Azure .*", "project": "vision"},
        ],
    )
    got = sums(aggregate)
    by_account = sum(float(r["BilledCost"]) for r in rows if r["SubAccountId"] == account)
    azure = sum(
        float(r["BilledCost"]) for r in rows if r["SubAccountId"] != account and r["ServiceName"].startswith("Azure ")
    )
    assert math.isclose(got[("churn", "billed", "gpu")] + got[("churn", "billed", "other")], by_account)
    assert math.isclose(got[("vision", "billed", "gpu")] + got[("vision", "billed", "other")], azure)
    unmatched = [r for r in rows if r["SubAccountId"] != account and not r["ServiceName"].startswith("Azure ")]
    assert aggregate.unattributed_rows == len(unmatched)


def test_days_are_cut_at_midnight_in_the_sources_time_zone(tmp_path: Path) -> None:
    charges = [
        Charge(datetime(2024, 9, 30, 23, tzinfo=UTC), 1.0, "churn"),  # 16:00 in Los Angeles
        Charge(datetime(2024, 10, 1, 3, tzinfo=UTC), 2.0, "churn"),  # still Sep 30 (20:00 PDT)
        Charge(datetime(2024, 10, 1, 7, tzinfo=UTC), 4.0, "churn"),  # Oct 1, 00:00 PDT
    ]
    path = write_focus(tmp_path / "edge.csv", charges)
    utc = read(path, attribution=[{"tag": "ml-project"}])
    la = read(path, attribution=[{"tag": "ml-project"}], timezone="America/Los_Angeles")
    key = ("spend_usd", ((ATTRIBUTED, "churn"), (BASIS, "billed"), (SCOPE, "gpu")))
    assert dict(utc.totals.values[key]) == {date(2024, 9, 30): 1.0, date(2024, 10, 1): 6.0}
    assert dict(la.totals.values[key]) == {date(2024, 9, 30): 3.0, date(2024, 10, 1): 4.0}


def test_gzip_and_parquet_read_the_same_as_csv(tmp_path: Path) -> None:
    plain = read(sample_csv())
    zipped = tmp_path / "export.csv.gz"
    with sample_csv().open("rb") as src, gzip.open(zipped, "wb") as dst:
        shutil.copyfileobj(src, dst)
    no_suffix = tmp_path / "export-part-0001"
    shutil.copy(zipped, no_suffix)  # gzip recognised by its magic bytes, not its name
    for other in (
        read(zipped),
        read(no_suffix),
        read(write_parquet(sample_csv(), tmp_path / "strings.parquet")),
        read(write_parquet(sample_csv(), tmp_path / "typed.parquet", typed=True)),
    ):
        assert other.rows == plain.rows and other.gpu_rows == plain.gpu_rows
        for key, value in sums(plain).items():
            assert math.isclose(sums(other)[key], value, abs_tol=1e-9), key
        assert other.days == plain.days


def test_sku_price_details_gpu_count_decides_when_present(tmp_path: Path) -> None:
    # FOCUS 1.1+: a column the 1.0 sample lacks. GpuCount wins over the instance table, and
    # GpuCount 0 says "not a GPU" even for a GPU instance type.
    header, rows = read_rows(gpu_rows_csv())
    header = [*header, "SkuPriceDetails"]
    rows[0]["SkuPriceDetails"] = json.dumps({"GpuCount": 4, "InstanceType": "g5.4xlarge"})
    rows[1]["SkuPriceDetails"] = json.dumps({"GpuCount": 0})
    rows[2]["SkuPriceDetails"] = json.dumps({"F_InstanceType": "p4d.24xlarge"})
    for row in rows[3:]:
        row["SkuPriceDetails"] = "NULL"
    path = write_rows(tmp_path / "v12.csv", header, rows)
    aggregate = read(path)
    assert aggregate.gpu_rows == 9
    hours = sum(sum(v.values()) for (metric, _), v in aggregate.totals.values.items() if metric == GPU_USAGE) / 3600
    quantities = [float(r["ConsumedQuantity"]) for r in rows]
    assert math.isclose(hours, 4 * quantities[0] + 8 * quantities[2] + sum(quantities[3:]), abs_tol=1e-6)


def test_a_byte_order_mark_and_lower_case_units_are_fine(tmp_path: Path) -> None:
    header, rows = read_rows(gpu_rows_csv())
    for row in rows:
        row["ConsumedUnit"] = "hrs"
    path = write_rows(tmp_path / "bom.csv", header, rows)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    aggregate = read(path)
    assert aggregate.rows == 10 and aggregate.gpu_rows == 10
    assert aggregate.totals.values[(ROWS, ((ATTRIBUTED, "BrightPathMatrix"),))]


def test_category_and_tag_spellings_are_read_as_their_trimmed_lower_case_forms(tmp_path: Path) -> None:
    # The query matches the spec's own spellings directly and only trims or lowers the others:
    # both paths must give the same answer, as must Tags with leading blanks and blank tag values.
    header = "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,Tags"
    tags = {"churn": '"{""team"": ""churn""}"', "blank": '"{""team"": """"}"', "spaces": '"{""team"": ""   ""}"'}
    lines = [
        f"1,1,USD,2024-09-01 00:00:00,2024-09-01 01:00:00,Usage,{tags['churn']}",
        f"2,2,USD,2024-09-01 00:00:00,2024-09-01 01:00:00,usage,{tags['churn']}",
        f"4,4,USD,2024-09-01 00:00:00,2024-09-01 01:00:00,TAX ,{tags['churn']}",
        f"8,8,USD,2024-09-01 00:00:00,2024-09-01 01:00:00, Purchase,{tags['churn']}",
        f"16,16,USD,2024-09-01 00:00:00,2024-09-01 01:00:00,Credit,{tags['churn']}",
        f"32,32,USD,2024-09-01 00:00:00,2024-09-01 01:00:00,aDJUSTMENT,{tags['churn']}",
        f"64,64,USD,2024-09-01 00:00:00,2024-09-01 01:00:00,NULL,{tags['churn']}",
        f"128,128,USD,2024-09-01 00:00:00,2024-09-01 01:00:00,Usage,{tags['blank']}",
        f"256,256,USD,2024-09-01 00:00:00,2024-09-01 01:00:00,Usage,{tags['spaces']}",
        '512,512,USD,2024-09-01 00:00:00,2024-09-01 01:00:00,Usage,"  {""team"": "" churn""}"',
    ]
    path = tmp_path / "spellings.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    got = {k: v for k, v in sums(read(path, attribution=[{"tag": "team"}])).items() if k[1] == "billed"}
    assert got == {
        ("churn", "billed", "other"): 1 + 2 + 4 + 64,
        ("churn", "billed", "purchase"): 8,
        ("churn", "billed", "credit"): 16,
        ("churn", "billed", "adjustment"): 32,
        (UNATTRIBUTED, "billed", "other"): 128 + 256,
        (" churn", "billed", "other"): 512,  # a value is kept as written once it is not blank
    }


def test_a_csv_read_does_not_load_pyarrow() -> None:
    # Arrow is for Parquet and for locating a bad row; loading it costs ~45 MiB of every worker's RSS.
    script = (
        "import sys\n"
        "import monitor.config.models\n"
        "from collectors.spend.focus_params import FocusParams\n"
        "from collectors.spend.focus_reader import read_focus_file\n"
        "from monitor.spend.series import zone\n"
        "p = FocusParams.model_validate({'path': 'unused', 'attribution': [{'tag': 'application'}]})\n"
        "aggregate = read_focus_file(__import__('pathlib').Path(sys.argv[1]), p, zone(p.timezone))\n"
        "print(aggregate.rows, sorted(m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'pandas')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(sample_csv())],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.stdout.split() == [str(len(read_rows(sample_csv())[1])), "[]"]


# --- bad input --------------------------------------------------------------------------------


def _bad(tmp_path: Path, change: dict[str, str], row_index: int = 3) -> Path:
    header, rows = read_rows(gpu_rows_csv())
    rows[row_index].update(change)
    return write_rows(tmp_path / "bad.csv", header, rows)


def test_missing_mandatory_columns_are_named(tmp_path: Path) -> None:
    header, rows = read_rows(gpu_rows_csv())
    kept = [h for h in header if h not in ("EffectiveCost", "BillingCurrency")]
    path = write_rows(tmp_path / "cut.csv", kept, rows)
    with pytest.raises(FocusFileError) as caught:
        read(path)
    assert str(caught.value).startswith(f"{path}: column EffectiveCost, BillingCurrency: missing mandatory columns")


def test_a_column_an_attribution_rule_reads_must_exist_but_tags_may_be_absent(tmp_path: Path) -> None:
    header, rows = read_rows(gpu_rows_csv())
    path = write_rows(tmp_path / "no-tags.csv", [h for h in header if h not in ("Tags", "SubAccountId")], rows)
    # FOCUS makes Tags conditional: a file without it has no tags, every row unattributed by a tag rule
    aggregate = read(path)
    assert aggregate.rows == len(rows) and aggregate.unattributed_rows == len(rows)
    with pytest.raises(FocusFileError, match="missing mandatory column SubAccountId"):
        read(path, attribution=[{"tag": "application"}, {"column": "SubAccountId", "equals": "1", "project": "x"}])


@pytest.mark.parametrize(
    ("change", "column", "expected"),
    [
        ({"BilledCost": "1.2.5"}, "BilledCost", "expected a number, got '1.2.5'"),
        ({"EffectiveCost": "NULL"}, "EffectiveCost", "expected a number, got NULL (FOCUS requires a value)"),
        ({"ChargePeriodStart": "24/09/2024 03:00"}, "ChargePeriodStart", "expected a date-time like"),
        ({"BillingCurrency": "EUR"}, "BillingCurrency", "mixed currencies: EUR here, USD in the rows before"),
        ({"Tags": "{not json"}, "Tags", "expected a JSON object of tags"),
        ({"ConsumedQuantity": "lots"}, "ConsumedQuantity", "expected a number, got 'lots'"),
    ],
)
def test_unparsable_values_name_file_row_and_column(
    tmp_path: Path, change: dict[str, str], column: str, expected: str
) -> None:
    path = _bad(tmp_path, change)  # the 4th data row
    with pytest.raises(FocusFileError) as caught:
        read(path)
    assert caught.value.row == 4 and caught.value.column == column
    assert str(caught.value).startswith(f"{path}: row 4, column {column}: {expected}")


def test_a_row_with_too_many_fields_is_named(tmp_path: Path) -> None:
    path = _bad(tmp_path, {"BilledCost": "1,25"})  # unquoted in the file: one field too many
    with pytest.raises(FocusFileError) as caught:
        read(path)
    assert str(caught.value) == f"{path}: row 4: expected 44 fields as in the header, got 45 (an unquoted comma?)"


def test_the_row_of_a_bad_number_is_found_in_a_later_block(tmp_path: Path) -> None:
    charges = [Charge(datetime(2024, 9, 1, h % 24, tzinfo=UTC), 1.0, "churn") for h in range(3000)]
    header, rows = read_rows(write_focus(tmp_path / "big.csv", charges))
    rows[2500]["BilledCost"] = "n/a"
    path = write_rows(tmp_path / "big.csv", header, rows)
    with pytest.raises(FocusFileError) as caught:
        read(path)  # 64 KiB blocks: the bad value is several blocks in
    assert (caught.value.row, caught.value.column) == (2501, "BilledCost")


def test_a_currency_other_than_the_sources_is_refused(tmp_path: Path) -> None:
    path = write_focus(tmp_path / "eur.csv", [Charge(datetime(2024, 9, 1, tzinfo=UTC), 1.0, "churn", currency="EUR")])
    p = params(attribution=[{"tag": "ml-project"}], currency="USD")
    with pytest.raises(FocusFileError) as caught:
        read_focus_file(path, p, zone("UTC"))
    assert str(caught.value) == (
        f"{path}: row 1, column BillingCurrency: billed in EUR, but this source reads USD (params.currency); "
        "configure one source per currency"
    )


def test_an_empty_or_non_csv_file_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(FocusFileError, match="the file is empty"):
        read(empty)
    text = tmp_path / "notes.csv"
    text.write_text("hello,world\n1,2\n")
    with pytest.raises(FocusFileError, match="missing mandatory columns BilledCost, EffectiveCost"):
        read(text)


def test_the_header_is_read_with_the_csv_module_rules(tmp_path: Path) -> None:
    # The header of the real file, as the csv module splits it: 44 columns, Id among them.
    with sample_csv().open(newline="") as handle:
        header = next(csv.reader(handle))
    assert len(header) == 44 and "Id" in header and header[-1] == "Tags"


@pytest.fixture(autouse=True)
def _pyarrow() -> None:
    require_pyarrow()


def test_a_query_that_runs_out_of_memory_runs_again_under_the_larger_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default cap is tight on purpose (peak RSS); an export that needs more is read anyway."""
    import duckdb

    from collectors.spend import focus_duck

    expected = sums(read(sample_csv()))
    with duckdb.connect(config={"memory_limit": "1MB"}) as probe, pytest.raises(duckdb.OutOfMemoryException):
        probe.execute(f"SELECT count(*) FROM read_csv('{sample_csv()}')").fetchall()  # 1 MB is too little
    monkeypatch.setattr(focus_duck, "MEMORY_LIMIT", "1MB")
    got = sums(read(sample_csv()))
    assert got.keys() == expected.keys()
    for key, amount in expected.items():  # DuckDB's threads may add in another order
        assert math.isclose(got[key], amount, rel_tol=1e-12, abs_tol=1e-9), key
