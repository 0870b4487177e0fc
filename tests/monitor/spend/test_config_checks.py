"""`mlmon check-config` on spend configuration: every problem with its file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.loader import load_config
from monitor.core.errors import ConfigError
from monitor.runtime import config_checks

BASE = """
retention: {{raw: 30d, hourly: {hourly}}}
projects:
  - id: finops
    owners: [{{name: Fin, email: fin@example.com}}]
    sources:
      - name: aws
        kind: focus
        params:
          path: /exports/aws
          timezone: {focus_tz}
          attribution:
            - tag: ml-project
              values: {{BrightPathMatrix: {mapped}}}
      - name: k8s
        kind: opencost
        params: {{url: "http://opencost:9003", currency: EUR}}
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
    spend:
      budget:
        amount: 1000
        period: {period}
        timezone: {budget_tz}
        sources: {sources}
rules:
  - name: spikes
    kind: spend_change
    params: {{sources: [{rule_source}]}}
"""


def load(tmp_path: Path, **values: str) -> object:
    defaults = {
        "hourly": "400d",
        "focus_tz": "UTC",
        "mapped": "churn",
        "period": "monthly",
        "budget_tz": "UTC",
        "sources": "[aws]",
        "rule_source": "aws",
    }
    path = tmp_path / "mlmon.yaml"
    path.write_text(BASE.format(**{**defaults, **values}))
    return load_config(path, config_checks())


def problems(tmp_path: Path, **values: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **values)
    return [str(issue) for issue in caught.value.issues]


def test_a_consistent_configuration_passes(tmp_path: Path) -> None:
    load(tmp_path)


def test_budget_sources_must_exist_and_share_the_time_zone_and_currency(tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    assert problems(tmp_path, sources="[gcp]") == [
        f"{path}:25:9: projects[1].spend.budget.sources: no spend source (kind focus, opencost or dcgm) is named "
        "'gcp'; known: aws, k8s"
    ]
    assert problems(tmp_path, budget_tz="Europe/Berlin") == [
        f"{path}:24:9: projects[1].spend.budget.timezone: the budget's periods start at midnight Europe/Berlin but "
        "spend source finops/aws cuts days at midnight UTC; set the same timezone on both"
    ]
    assert problems(tmp_path, sources="[k8s]") == [
        f"{path}:21:7: projects[1].spend.budget: spend source finops/k8s reports EUR but the project's currency is "
        "USD; amounts in two currencies are never summed"
    ]


def test_an_annual_budget_needs_a_year_of_retention(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, period="annual", hourly="300d")
    assert problem.endswith(
        "projects[1].spend.budget.period: a annual budget with a 28d forecast lookback reads 394 days back, but "
        "retention.hourly keeps 300 days; raise retention.hourly"
    )


def test_attribution_maps_and_rule_sources_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    assert problems(tmp_path, mapped="chrun") == [
        f"{path}:14:24: projects[0].sources[0].params.attribution[0].values.BrightPathMatrix: maps to project "
        "'chrun', which is not configured; known: churn, finops"
    ]
    assert problems(tmp_path, rule_source="nope") == [
        f"{path}:29:24: rules[0].params.sources[0]: rule 'spikes': no spend source (kind focus, opencost or dcgm) "
        "is named 'nope'; known: aws, k8s"
    ]


def test_params_of_the_spend_kinds_are_validated_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    path.write_text(
        """
projects:
  - id: churn
    sources:
      - name: aws
        kind: focus
        params: {path: /x, attribution: [{column: SubAccountId, equals: "1"}], timezone: Mars/Olympus}
      - name: gpus
        kind: dcgm
        params: {url: prometheus:9090, rates: [{model: A100, hourly: -1}]}
    spend:
      currency: usd
      fixed_costs: [{name: people, monthly: 100, currency: EUR}]
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, config_checks())
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:7:42: projects[0].sources[0].params.attribution[0].ColumnRule.project: required field is missing",
        f"{path}:7:80: projects[0].sources[0].params.timezone: unknown time zone 'Mars/Olympus' (expected a tz "
        "database name like UTC or Europe/Berlin)",
        f"{path}:10:18: projects[0].sources[1].params.url: expected an http:// or https:// URL, got 'prometheus:9090'",
        f"{path}:10:62: projects[0].sources[1].params.rates[0].hourly: Input should be greater than or equal to 0 "
        "(got -1)",
        f"{path}:12:7: projects[0].spend.currency: expected an ISO 4217 currency code of three capital letters (USD, "
        "EUR), got 'usd'",
    ]


def test_without_pyarrow_check_config_says_how_to_install_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "mlmon.yaml"
    path.write_text(
        "projects:\n  - id: finops\n    sources:\n      - name: aws\n        kind: focus\n"
        "        params: {path: /exports, attribution: [{tag: ml-project}]}\n"
    )
    # A Python where `import pyarrow` fails, as on an install without the `focus` extra.
    code = (
        "import sys; sys.modules['pyarrow'] = None; from monitor.cli import main; "
        f"sys.argv = ['mlmon', 'check-config', {str(path)!r}]; main()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert (
        f"{path}:5:9: projects[0].sources[0].kind: reading FOCUS needs pyarrow: reinstall mlmon (pip install -e .), "
        "which depends on it"
    ) in result.stderr


TWO_DCGM = """
projects:
  - id: platform
    sources:
      - name: gpus-a
        kind: dcgm
        params: {{url: "http://prometheus-a:9090", rates: [{{model: A100, hourly: 2}}]}}
      - name: gpus-b
        kind: dcgm
        params: {{url: "{second}", rates: [{{model: A100, hourly: 2}}]}}
  - id: churn
    spend:
      budget:
        amount: 1000
{sources}
"""


def test_a_budget_never_counts_the_same_gpus_twice(tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    path.write_text(TWO_DCGM.format(second="http://prometheus-b:9090", sources=""))
    with pytest.raises(ConfigError) as caught:
        load_config(path, config_checks())
    assert [str(i) for i in caught.value.issues] == [
        f"{path}:13:7: projects[1].spend.budget.sources: without sources the budget counts every dcgm source "
        "(platform/gpus-a, platform/gpus-b); two of them usually measure the same GPUs, which would count their "
        "spend twice: name the ones to count in sources"
    ]
    path.write_text(TWO_DCGM.format(second="http://prometheus-a:9090/", sources="        sources: [gpus-a, gpus-b]"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, config_checks())
    [issue] = [str(i) for i in caught.value.issues]
    assert issue.endswith(
        "spend sources platform/gpus-a and platform/gpus-b read the same dcgm data (http://prometheus-a:9090): "
        "counting both would count that spend twice; keep one"
    )
    path.write_text(TWO_DCGM.format(second="http://prometheus-b:9090", sources="        sources: [gpus-a, gpus-b]"))
    load_config(path, config_checks())  # two clusters, named: counted once each
