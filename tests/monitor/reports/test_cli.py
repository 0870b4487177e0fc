"""`mlmon report audit`: formats, output file, and exit statuses (0 written, 1 database not ready,
2 bad input: a bad date, an --as-of before any history, an unknown project)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner, Result

from monitor.cli.reports import COMMANDS, report
from tests.monitor.reports.conftest import T6, Timeline


def run(line: Timeline, *args: str) -> Result:
    options = ["--config", str(line.runtime.settings.config), "--database-url", line.runtime.settings.database_url]
    return CliRunner().invoke(report, ["audit", *options, *args])


def test_the_command_is_exported_for_the_cli() -> None:
    assert [report] == COMMANDS and report.name == "report" and "audit" in report.commands


def test_json_as_of_a_date_and_a_time(sqlite_timeline: Timeline) -> None:
    done = run(sqlite_timeline, "--as-of", "2026-03-05")
    assert done.exit_code == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["as_of"] == "2026-03-05T00:00:00+00:00"
    assert {(p["project"], f["id"]): f["status"] for p in doc["projects"] for f in p["findings"]} == {
        ("churn", "CVE-2025-3730"): "fixed",
        ("churn", "CVE-2026-24747"): "fixed",
        ("ranker", "CVE-2025-3730"): "open",
        ("ranker", "CVE-2026-24747"): "overdue",
        ("vision", "CVE-2025-3730"): "open",
        ("vision", "CVE-2026-24747"): "ignored",
    }
    assert "audit report as of 2026-03-05T00:00:00+00:00: 4 projects, 6 findings, SLA compliance 50.0%" in done.stderr
    precise = run(sqlite_timeline, "--as-of", "2026-04-01T12:00:00Z", "--project", "vision", "--project", "churn")
    assert precise.exit_code == 0, precise.stderr
    doc = json.loads(precise.stdout)
    assert [p["project"] for p in doc["projects"]] == ["churn", "vision"]
    assert doc["summary"]["compliance"]["rate"] == 0.5  # churn met, vision overdue after its ignore expired


def test_csv_and_html_to_files(sqlite_timeline: Timeline, tmp_path: Path) -> None:
    target = tmp_path / "compliance.csv"
    done = run(sqlite_timeline, "--as-of", "2026-04-01T12:00:00Z", "--since", "2026-02-01",
               "--format", "csv", "--what", "compliance", "-o", str(target))  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert done.stdout == "" and f"written to {target}" in done.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(r["project"], r["compliance"]) for r in rows] == [
        ("billing", ""), ("churn", "1.0"), ("ranker", "0.0"), ("vision", "0.0"), ("(all projects)", "0.3333"),
    ]  # fmt: skip
    findings = run(sqlite_timeline, "--as-of", "2026-04-01", "--format", "csv")
    assert findings.exit_code == 0 and len(list(csv.DictReader(io.StringIO(findings.stdout)))) == 6
    page = tmp_path / "audit.html"
    html = run(sqlite_timeline, "--format", "html", "--output", str(page), "--as-of", T6.isoformat())
    assert html.exit_code == 0, html.stderr
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "@page" in text and 'id="project-vision"' in text


def test_input_errors_exit_2_with_a_clear_message(sqlite_timeline: Timeline) -> None:
    before = run(sqlite_timeline, "--as-of", "2026-01-31")
    assert before.exit_code == 2 and before.stdout == ""
    assert before.stderr.strip() == (
        "--as-of: no history on or before 2026-01-31T00:00:00+00:00: the earliest inventory, finding or advisory "
        "data was recorded at 2026-02-02T09:00:00+00:00"
    )
    unknown = run(sqlite_timeline, "--project", "nope")
    assert unknown.exit_code == 2 and "unknown project 'nope'" in unknown.stderr
    bad = run(sqlite_timeline, "--as-of", "last tuesday")
    assert bad.exit_code == 2 and "--as-of: expected a date (2026-11-01, meaning 00:00 UTC)" in bad.stderr
    wrong = run(sqlite_timeline, "--what", "packages")
    assert wrong.exit_code == 2 and "--what chooses a CSV table" in wrong.stderr
    period = run(sqlite_timeline, "--as-of", "2026-03-01", "--since", "2026-03-02")
    assert period.exit_code == 2 and "--since: the period must start before as_of" in period.stderr
    fmt = run(sqlite_timeline, "--format", "pdf")
    assert fmt.exit_code == 2 and "'pdf' is not one of 'json', 'csv', 'html'" in fmt.stderr
    for result in (before, unknown, bad, wrong, period):
        assert "Traceback" not in result.stderr and isinstance(result.exception, SystemExit)


def test_invalid_configuration_and_unmigrated_database(sqlite_timeline: Timeline, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("projects:\n  - id: Bad Id\n")
    done = CliRunner().invoke(report, ["audit", "--config", str(broken), "--database-url",
                                       sqlite_timeline.runtime.settings.database_url])  # fmt: skip
    assert done.exit_code == 2 and done.stderr.startswith("configuration refused:") and "broken.yaml:2" in done.stderr
    empty = CliRunner().invoke(report, ["audit", "--config", str(sqlite_timeline.runtime.settings.config),
                                        "--database-url", f"sqlite:///{tmp_path / 'empty.db'}"])  # fmt: skip
    assert empty.exit_code == 1 and "run `mlmon migrate`" in empty.stderr
