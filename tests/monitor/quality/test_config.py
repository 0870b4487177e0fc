"""The quality configuration: its sections, its source and rule params, and its cross-section checks,
all reported with file:line by `check-config`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from monitor.core.errors import ConfigError
from tests.conftest import RuntimeFactory
from tests.support.peers import REPO, mlmon_command

GOOD = """
quality:
  distributions: {bins: 20, max_values_per_column: 100000}
projects:
  - id: churn
    owners: [{name: Ada, email: ada@example.com}]
    quality: {distribution_bins: 12}
    sources:
      - name: holdout
        kind: torch_eval
        timeout: 2m
        params: {model: /m.pt, data: /d.pt, max_seconds: 90s, max_memory: 2GiB}
rules:
  - name: drift
    kind: change
    params: {metric: accuracy, lookback: 14d}
"""


def test_a_good_configuration_loads(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(GOOD)
    assert runtime.config.quality.distributions.bins == 20
    assert runtime.config.projects[0].quality.distribution_bins == 12


@pytest.mark.parametrize(
    ("replace", "by", "fragment"),
    [
        ("max_seconds: 90s", "max_seconds: 3m", "max_seconds 3m must be below the source's timeout 2m"),
        ("lookback: 14d", "lookback: 60d", "lookback 8w4d is longer than retention.raw 4w2d"),
        ("max_memory: 2GiB", "max_memory: 10MiB", "max_memory below 256MiB cannot even import torch"),
        ("bins: 20", "bins: 1", "greater than or equal to 2"),
        ("{metric: accuracy, lookback: 14d}", "{metric: accuracy, arl: 10}", "greater than or equal to 100"),
    ],
)
def test_problems_are_reported(make_runtime: RuntimeFactory, replace: str, by: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        make_runtime(GOOD.replace(replace, by))


def test_the_example_configuration_passes_check_config() -> None:
    example = REPO / "examples" / "quality" / "mlmon.yaml"
    result = subprocess.run(mlmon_command("check-config", str(example)), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_config_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("max_seconds: 90s", "max_seconds: 3m"))
    result = subprocess.run(mlmon_command("check-config", str(path)), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"{path}:12:45: projects[0].sources[0].params.max_seconds" in result.stdout + result.stderr
