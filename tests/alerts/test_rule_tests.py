"""`mlmon test-rules`: promtool's file format where it maps, and bad input named by file and line."""

from __future__ import annotations

import subprocess
from contextlib import chdir
from pathlib import Path

import pytest
from click.testing import CliRunner

from alerts.notation import STALE, expand
from monitor.cli.main import main
from tests.support.peers import mlmon_command

CONFIG = """
projects:
  - id: churn
    owners: [{name: Ada, email: ada@example.com}]
rules:
  - name: accuracy-low
    kind: threshold
    for: 2m
    labels: {severity: critical}
    params: {metric: accuracy, op: "<", value: 0.9}
"""

GOOD = """\
rule_files: [mlmon.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'accuracy{project="churn", model="a"}'
        values: '0.8x10'
      - series: 'accuracy{project="churn", model="b"}'
        values: '0.8x10'
    alert_rule_test:
      - eval_time: 1m59s
        alertname: accuracy-low
        exp_alerts: []
      - eval_time: 2m
        alertname: accuracy-low
        exp_alerts:
          - exp_labels: {project: churn, model: b, severity: critical}
          - exp_labels: {project: churn, model: a, severity: critical}
"""


def run(tmp_path: Path, text: str, in_process: bool = False) -> subprocess.CompletedProcess[str]:
    """`mlmon test-rules` on `text`: as a real process, or in this one (faster, the same code)."""
    (tmp_path / "mlmon.yaml").write_text(CONFIG)
    (tmp_path / "rules.test.yaml").write_text(text)
    if in_process:
        with chdir(tmp_path):
            result = CliRunner().invoke(main, ["test-rules", "rules.test.yaml"])
        return subprocess.CompletedProcess([], result.exit_code, result.stdout, result.stderr)
    return subprocess.run(
        mlmon_command("test-rules", "rules.test.yaml"), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_promtool_layout_two_alerts_at_once_and_a_check_between_evaluations(tmp_path: Path) -> None:
    done = run(tmp_path, GOOD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_an_unknown_alertname_fails_with_a_diff(tmp_path: Path) -> None:
    done = run(
        tmp_path,
        GOOD.replace("alertname: accuracy-low\n        exp_alerts: []", "alertname: nope\n        exp_alerts: []"),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "alertname: nope, time: 1m59s" in done.stdout and "no rule is named 'nope'" in done.stdout
    assert "got: (no such rule)" in done.stdout


def test_a_wrong_expectation_shows_what_fired(tmp_path: Path) -> None:
    done = run(tmp_path, GOOD.replace("model: b,", "model: c,"))
    assert done.returncode == 1
    assert "missing: {model='c', project='churn', severity='critical'}" in done.stdout
    assert "unexpected: {model='b', project='churn', severity='critical'}" in done.stdout


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


@pytest.mark.parametrize(
    ("old", "new", "where", "why"),
    [
        ("values: '0.8x10'\n      - series", "values: '0.8 NaN'\n      - series", "values: '0.8 NaN'", "finite"),
        ("values: '0.8x10'\n      - series", "values: '0.8 x'\n      - series", "values: '0.8 x'", "cannot read 'x'"),
        ("values: '0.8x10'\n      - series", "values: 'stalex2'\n      - series", "values: 'stalex2'", "stalex2"),
        ('model="b"', 'model=~"("', 'model=~"("', "invalid regular expression"),
        ('model="b"', 'model=~"a(?=b)"', 'model=~"a(?=b)"', "invalid regular expression"),
        ('{project="churn", model="b"}', '{model="b"}', "series: 'accuracy{model=\"b\"}'", "project label"),
        ("  - interval: 1m\n", "  - interval: 1m\n    promql_expr_test: []\n", "promql_expr_test", "no PromQL engine"),
        ("evaluation_interval: 1m\n", "evaluation_interval: 1m\ngroup_eval_order: [a]\n", "group_eval_order", "order"),
        ("  - interval: 1m\n", "  - interval: 1m\n    external_labels: {a: b}\n", "external_labels", "external"),
        ("  - interval: 1m\n", "  - interval: 1m\n    colour: red\n", "colour", "unknown key"),
        ("eval_time: 2m\n", "eval_time: soon\n", "eval_time: soon", "eval_time"),
    ],
)
def test_bad_input_exits_2_with_file_line_and_what_was_expected(
    tmp_path: Path, old: str, new: str, where: str, why: str
) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    done = run(tmp_path, text, in_process=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"rules.test.yaml:{line_of(text, where)}:" in done.stderr, done.stderr
    assert why in done.stderr and "Traceback" not in done.stderr


def test_rule_files_naming_a_prometheus_rule_file_is_explained(tmp_path: Path) -> None:
    (tmp_path / "prom.yml").write_text("groups: [{name: g, rules: []}]\n")
    done = run(tmp_path, GOOD.replace("rule_files: [mlmon.yaml]", "rule_files: [prom.yml]"))
    assert done.returncode == 2
    assert "rules.test.yaml:1: rule_files: prom.yml is a Prometheus rule file" in done.stderr


def test_series_notation_as_promtool_reads_it() -> None:
    assert expand("1+1x2 _x2 stale 7 -3-2x1 Inf") == [1, 2, 3, None, None, STALE, 7, -3, -5, float("inf")]
    # built by repeated addition, as promtool does (observed: 0.8999999999999999, not 0.9)
    assert expand("0.5+0.1x4")[-1] == 0.5 + 0.1 + 0.1 + 0.1 + 0.1 != 0.9
    assert expand("0+0.1x10")[-1] == 0.9999999999999999
    with pytest.raises(ValueError, match="a step needs a count"):
        expand("1+1")


def test_series_notation_is_bounded() -> None:
    with pytest.raises(ValueError, match="more than 100,000 steps"):
        expand("1 1x1000000000")
