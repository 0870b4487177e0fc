"""`mlmon spend read-focus` and `mlmon spend status`: output and exit status."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from tests.monitor.spend.focus_data import (
    Charge,
    gpu_rows_csv,
    read_rows,
    require_pyarrow,
    sample_csv,
    write_focus,
    write_rows,
)


def test_read_focus_shows_what_each_project_would_be_attributed() -> None:
    result = CliRunner().invoke(main, ["spend", "read-focus", str(sample_csv()), "--tag", "application", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["currency"] == "USD"
    projects = shown["projects"]
    assert projects["__unattributed__"]["rows"] == 340
    assert sum(p["rows"] for p in projects.values()) == 1000
    gpu = projects["BrightPathMatrix"]
    assert gpu["gpu_billed"] > 0 and gpu["gpu_hours"] > 0


def test_read_focus_table_and_a_bad_file_exits_2_naming_row_and_column(tmp_path: Path) -> None:
    ok = CliRunner().invoke(main, ["spend", "read-focus", str(gpu_rows_csv()), "--tag", "application"])
    assert ok.exit_code == 0 and ok.output.splitlines()[0] == "currency: USD"
    assert ok.output.splitlines()[1].split() == [
        "PROJECT",
        "ROWS",
        "BILLED",
        "EFFECTIVE",
        "GPU",
        "BILLED",
        "GPU",
        "HOURS",
    ]
    header, rows = read_rows(gpu_rows_csv())
    rows[6]["ChargePeriodStart"] = "2024-13-40 25:00:00"
    bad = write_rows(tmp_path / "bad.csv", header, rows)
    result = CliRunner().invoke(main, ["spend", "read-focus", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().startswith(f"{bad}: row 7, column ChargePeriodStart: expected a date-time like")


def test_status_lists_budgets_and_check_exits_1_over_budget(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    header, rows = read_rows(gpu_rows_csv())
    write_rows(exports / "gpu.csv", header, rows)
    config = tmp_path / "mlmon.yaml"
    config.write_text(
        f"""
projects:
  - id: finops
    sources:
      - name: aws
        kind: focus
        params: {{path: {exports}, attribution: [{{tag: application, values: {{BrightPathMatrix: churn}}}}]}}
  - id: churn
    spend: {{budget: {{amount: 5}}}}
"""
    )
    database = f"sqlite:///{tmp_path / 'mlmon.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["migrate", "--database-url", database]).exit_code == 0
    collected = runner.invoke(main, ["collect", "--once", "-c", str(config), "--database-url", database])
    assert collected.exit_code == 0, collected.output
    # The rows are from September 2024; `status` looks at the current month, so nothing is spent in it.
    status = runner.invoke(main, ["spend", "status", "-c", str(config), "--database-url", database, "--json"])
    assert status.exit_code == 0, status.output
    [finops, churn] = json.loads(status.output)
    assert finops["budget"] is None and churn["budget"]["amount"] == 5 and churn["budget"]["spent"] == 0.0
    assert churn["budget"]["period"]["label"] == f"{datetime.now(UTC):%Y-%m}"
    table = runner.invoke(main, ["spend", "status", "-c", str(config), "--database-url", database, "--check"])
    assert table.exit_code == 0 and table.output.splitlines()[0].split()[:3] == ["PROJECT", "PERIOD", "SPENT"]
    # Today's bill arrives: $8 of a $5 budget.
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    write_focus(exports / "today.csv", [Charge(start, 8.0, "BrightPathMatrix")], tag="application")
    assert runner.invoke(main, ["collect", "--once", "-c", str(config), "--database-url", database]).exit_code == 0
    over = runner.invoke(main, ["spend", "status", "-c", str(config), "--database-url", database, "--check"])
    assert over.exit_code == 1 and "budget reached: churn" in over.output
    assert over.output.splitlines()[2].split()[:5] == ["churn", f"{start:%Y-%m}", "8.00", "USD", "5.00"]
    unknown = runner.invoke(main, ["spend", "status", "-c", str(config), "--database-url", database, "--project", "x"])
    assert unknown.exit_code == 2 and "unknown project 'x'" in unknown.output


@pytest.fixture(autouse=True)
def _pyarrow() -> None:
    require_pyarrow()


def test_status_on_a_missing_or_unmigrated_database_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "mlmon.yaml"
    config.write_text("projects:\n  - id: churn\n    owners: [{name: Ada, email: ada@example.com}]\n", encoding="utf-8")
    missing = CliRunner().invoke(main, ["spend", "status", "-c", str(config), "--database-url", "sqlite:///./mlmon.db"])
    assert missing.exit_code == 2
    assert "no database at ./mlmon.db: run `mlmon migrate` first" in missing.output
    assert "Traceback" not in missing.output and not (tmp_path / "mlmon.db").exists()

    import sqlite3

    sqlite3.connect(tmp_path / "empty.db").close()  # a file, but no tables
    empty = CliRunner().invoke(
        main, ["spend", "status", "-c", str(config), "--database-url", f"sqlite:///{tmp_path / 'empty.db'}"]
    )
    assert empty.exit_code == 2 and "is not migrated: run `mlmon migrate` first" in empty.output
