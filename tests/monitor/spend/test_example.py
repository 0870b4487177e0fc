"""The spend example configuration passes `mlmon check-config`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from monitor.cli import main

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "spend" / "mlmon.yaml"


def test_the_example_configuration_is_valid() -> None:
    result = CliRunner().invoke(main, ["check-config", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{EXAMPLE}: OK (3 projects, 2 sources, 3 rules)"
