"""`mlmon quality drift`: two CSV files compared column by column; exit 0 / 1 / 2."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np

from tests.support.peers import mlmon_command


def _write(path: Path, shift: float, plan_pro: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["age", "income", "plan"])
        for i in range(4000):
            age = "" if i % 100 == 0 else f"{40 + 10 * (rng.standard_normal() + shift):.3f}"
            writer.writerow([age, f"{rng.lognormal(10, 0.5):.2f}", "pro" if rng.random() < plan_pro else "basic"])
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(mlmon_command("quality", "drift", *args), capture_output=True, text=True, timeout=120)


def test_drift_between_two_csv_files(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.csv", 0.0, 0.3, 1)
    same = _write(tmp_path / "same.csv", 0.0, 0.3, 2)
    moved = _write(tmp_path / "moved.csv", 0.5, 0.6, 3)
    calm = _run(str(ref), str(same))
    assert calm.returncode == 0, calm.stdout + calm.stderr
    assert calm.stdout.splitlines()[0].split() == [
        "COLUMN",
        "KIND",
        "N",
        "WASSERSTEIN",
        "PSI",
        "JS",
        "P_VALUE",
        "DRIFT",
    ]
    drifted = _run(str(ref), str(moved), "--json", "--p-value", "0.01")
    assert drifted.returncode == 1
    verdicts = {v["column"]: v for v in json.loads(drifted.stdout)}
    assert {c for c, v in verdicts.items() if v["drift"]} == {"age", "plan"}
    assert verdicts["age"]["kind"] == "numeric" and verdicts["age"]["n"] == 3960
    assert verdicts["plan"]["kind"] == "categorical" and "wasserstein" not in verdicts["plan"]["statistics"]
    only = _run(str(ref), str(moved), "--columns", "income")
    assert only.returncode == 0 and len(only.stdout.splitlines()) == 2


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.csv", 0.0, 0.3, 1)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("age,plan\n1,a\n2\n")
    result = _run(str(ref), str(ragged))
    assert result.returncode == 2 and f"{ragged}:3: 1 cells, the header has 2" in result.stderr
    result = _run(str(ref), str(ref), "--columns", "nope")
    assert result.returncode == 2 and "columns ['nope'] are not in both tables" in result.stderr
    result = _run(str(ref), str(tmp_path / "missing.csv"))
    assert result.returncode == 2


def test_text_in_a_numeric_current_column_names_the_file_and_line(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.csv", 0.0, 0.3, 1)
    current = tmp_path / "cur.csv"
    lines = ref.read_text().splitlines()
    lines[7] = "n/a-ish," + lines[7].split(",", 1)[1]  # line 8 of the file: text in `age`
    current.write_text("\n".join(lines) + "\n")
    done = _run(str(ref), str(current))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{current}:8: column 'age': 'n/a-ish' is not a number; the reference column is numeric" in done.stderr
