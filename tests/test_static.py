"""Static checks belong to the test run: ruff, mypy and the import-layer contracts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_import_layers() -> None:
    result = _run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower() or " 0 broken" in result.stdout


def test_ruff() -> None:
    check = _run(str(BIN / "ruff"), "check", ".")
    assert check.returncode == 0, check.stdout
    fmt = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout


@pytest.mark.slow
def test_mypy_strict() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout
