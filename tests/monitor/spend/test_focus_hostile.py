"""Hostile FOCUS files through `mlmon spend read-focus`, each in its own process with bounded memory.

Every case must end within seconds in exit status 2 with one clear line naming the file (and the
row and column where there is one), never a traceback and never a library's repr of a number.
"""

from __future__ import annotations

import gzip
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
MEMORY_BYTES = 3 << 30
"""Address space a case may map (DuckDB reserves generously; a bomb would need far more)."""
HEADER = "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,Tags"
ROW = '1.5,1.5,USD,2024-09-01T00:00:00Z,2024-09-01T01:00:00Z,Usage,"{""ml-project"": ""churn""}"'


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def read_focus(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "spend", "read-focus", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        preexec_fn=_limit,  # only resource limits, set before exec
        check=False,
    )


def _write(text: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "export.csv"
        path.write_text(text, encoding="utf-8")
        return path

    return make


def _bytes(data: bytes, name: str = "export.csv") -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path

    return make


def _truncated_gzip(tmp: Path) -> Path:
    whole = gzip.compress(("\n".join([HEADER] + [ROW] * 5000) + "\n").encode())
    path = tmp / "export.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    return path


CASES = {
    "duplicate column": (
        _write(HEADER + ",BilledCost\n" + ROW + ",2\n"),
        "row 1, column BilledCost: column BilledCost appears twice",
    ),
    "duplicate column differing in case": (
        _write(HEADER + ",billedcost\n" + ROW + ",2\n"),
        "column billedcost: column billedcost appears twice (BilledCost and billedcost",
    ),
    "header only": (_write(HEADER + "\n"), "no rows: expected billing rows after the header"),
    "empty file": (_write(""), "the file is empty"),
    "number overflowing to infinity": (
        _write(HEADER + "\n" + ROW + "\n" + ROW.replace("1.5,1.5", "1.5,1e999", 1) + "\n"),
        "row 2, column EffectiveCost: expected a finite number, got '1e999'",
    ),
    "NaN amount": (
        _write(HEADER + "\n" + ROW.replace("1.5,1.5", "nan,1.5", 1) + "\n"),
        "row 1, column BilledCost: expected a finite number, got 'nan'",
    ),
    "period ending before it starts": (
        _write(HEADER + "\n" + ROW + "\n" + ROW.replace("2024-09-01T01:00:00Z", "2024-08-31T23:00:00Z") + "\n"),
        "row 2, column ChargePeriodEnd: the charge period ends before it starts",
    ),
    "malformed tags": (
        _write(HEADER + "\n" + ROW + "\n" + ROW.replace('"{""ml-project"": ""churn""}"', '"{team: b"') + "\n"),
        "row 2, column Tags: expected a JSON object of tags",
    ),
    "non-UTF-8 bytes": (
        _bytes((HEADER + "\n" + ROW.replace("USD", "U\xffD") + "\n").encode("latin-1")),
        "expected UTF-8 text",
    ),
    "truncated gzip": (_truncated_gzip, "export.csv.gz"),
    "a 5,000-digit number": (
        _write(HEADER + "\n" + ROW.replace("1.5,1.5", "1" * 5000 + ",1.5", 1) + "\n"),
        "row 1, column BilledCost: expected a finite number",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_focus_file_ends_in_one_clear_error(case: str, tmp_path: Path) -> None:
    make, expected = CASES[case]
    path = make(tmp_path)
    done = read_focus(path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert str(path) in done.stderr and expected in done.stderr, done.stderr
    assert "Traceback" not in output and "np.float64" not in output and "numpy" not in output
    assert len(done.stderr) < 2000  # one line, not a dump of the file
