"""`mlmon export prometheus-rules`: the output passes `promtool check rules` for the example
configurations and for a configuration using every rule kind; annotations render in Prometheus as
intended (`promtool test rules`); and on the same series Prometheus fires the exported rules at
exactly the evaluation times mlmon's own engine fires them (threshold with `for` and
`keep_firing_for`, drop with both significance tests, distribution per column and per dataset)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from alerts.engine import AlertEngine
from alerts.kinds import REGISTRY
from alerts.model import AlertState
from monitor.cli.export import COMMANDS, export
from monitor.config.loader import parse_config
from monitor.core.clock import FrozenClock
from monitor.core.matchers import MatchOp, parse_selector
from monitor.core.types import Sample, SeriesKey, labels_of, ms_from_datetime
from monitor.export.go_templates import translate
from monitor.export.prometheus_rules import TEMPLATE_ANNOTATION, export_rules
from monitor.runtime import config_checks
from monitor.store import migrate
from monitor.store.store import Store
from tests.support.peers import REPO, require_binary

PROMTOOL_HOW = "install the Debian package prometheus (apt-get install prometheus)"
EXAMPLES = sorted([REPO / "examples" / "mlmon.yaml", *(REPO / "examples").glob("*/mlmon.yaml")])


def promtool() -> str:
    return require_binary("promtool", PROMTOOL_HOW)


@dataclass(frozen=True)
class Exported:
    status: int
    stdout: str
    stderr: str
    document: dict[str, Any]
    text: str

    @property
    def rules(self) -> dict[str, dict[str, Any]]:
        return {r["alert"]: r for r in self.document["groups"][0]["rules"] or []}


def run_export(config: Path, output: Path) -> Exported:
    result = CliRunner().invoke(export, ["prometheus-rules", "--config", str(config), "--output", str(output)])
    text = output.read_text() if output.exists() else ""
    return Exported(result.exit_code, result.stdout, result.stderr, yaml.safe_load(text) if text else {}, text)


def check_rules(path: Path) -> None:
    done = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_command_is_offered_for_registration() -> None:
    assert [c.name for c in COMMANDS] == ["export"]
    assert "prometheus-rules" in export.commands  # type: ignore[attr-defined]


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_example_configurations_export_to_valid_rules(config: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="the spend example's focus source needs pyarrow (mlmon[focus])")
    out = run_export(config, tmp_path / "rules.yml")
    assert out.status == 0, out.stderr
    check_rules(tmp_path / "rules.yml")
    configured = yaml.safe_load(config.read_text()).get("rules", [])
    skipped = [line for line in out.stderr.splitlines() if line.startswith("not exported: ")]
    assert len(out.rules) + len(skipped) == len(configured)
    assert f"{len(out.rules)} rule(s) written, {len(skipped)} not exported" in out.stderr
    for line in skipped:
        name = line.split("'")[1]
        assert f"# - {name} (" in out.text  # listed at the top of the file too
    for rule in out.rules.values():
        assert rule["expr"].startswith("max without (instance, job) (")


def test_stdout_is_the_default_output_and_a_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(export, ["prometheus-rules", "--config", str(REPO / "examples" / "mlmon.yaml")])
    assert result.exit_code == 0 and yaml.safe_load(result.stdout)["groups"][0]["name"] == "mlmon"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {name: x, kind: threshold, params: {metric: Accuracy, op: '<', value: 1}}\n")
    result = runner.invoke(export, ["prometheus-rules", "--config", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2" in result.stderr and "rule 'x'" in result.stderr
    result = runner.invoke(export, ["prometheus-rules", "-c", str(REPO / "examples" / "mlmon.yaml"),
                                    "-o", str(tmp_path / "missing-dir" / "rules.yml")])  # fmt: skip
    assert result.exit_code == 2 and "cannot write" in result.stderr


EVERY_KIND = """
alerting: {evaluation_interval: 15s}
projects:
  - {id: churn, name: Churn classifier, team: growth, labels: {tier: gold}, owners: [{name: Ada, email: a@example.com}]}
  - {id: vision.ai, labels: {tier: gold}, owners: [{name: Bo, email: b@example.com}]}
  - {id: lab, labels: {tier: bronze}, owners: [{name: Cy, email: c@example.com}]}
rules:
  - name: accuracy-low
    kind: threshold
    projects: [churn, vision.ai]
    for: 5m
    keep_firing_for: 10m
    labels: {severity: critical, team: ml}
    params: {metric: accuracy, match: ['model=~"churn-.*"'], op: "<", value: 0.9, clear: 0.92}
    annotations:
      summary: "{{ project.name }} ({{ project.id }}) {{ labels.model }} accuracy {{ value | percent }}, threshold {{ params.value }}"
      description: "{{ details.metric }} fell {% if value < 0.5 %}a lot{% endif %}"
      runbook_url: https://runbooks.example.com/accuracy
  - {name: latency-high, kind: threshold, project_selector: ['tier="gold"'],
     params: {metric: latency_seconds, op: ">=", value: 0.25, over: 10m, agg: avg}}
  - {name: nobody-selected, kind: threshold, project_selector: ['tier="platinum"'], params: {metric: accuracy, op: "<", value: 1}}
  - {name: switched-off, kind: threshold, enabled: false, params: {metric: accuracy, op: "<", value: 1}}
  - {name: accuracy-missing, kind: absent, projects: [churn], params: {metric: accuracy, after: 1d}}
  - {name: source-down, kind: source_down, labels: {severity: warning}, params: {failures: 2, no_success_for: 2h}}
  - {name: torch-vulnerable, kind: vulnerable, params: {severity: any, include_undetermined: true, packages: [torch, numpy]}}
  - {name: fixable-high, kind: vulnerable, params: {severity: high, fixable_only: true}}
  - {name: torch-stale, kind: stale, params: {max_minors_behind: 2, max_behind: 90d, unsupported_minor: true, yanked: true}}
  - {name: patch-sla, kind: patch_sla}
  - {name: accuracy-drop, kind: drop, params: {metric: accuracy, min_drop: 0.02, min_drop_relative: 0.03,
     examples_metric: accuracy_examples, alpha: 0.01}}
  - {name: loss-up, kind: drop, params: {metric: loss, worse: up, baseline: 0.3, min_drop_relative: 0.1,
     unchanged_for: 90d, join_on: [model]}}
  - {name: wilson-drop, kind: drop, params: {metric: accuracy, baseline: 0.92, min_drop: 0.01, examples_metric: accuracy_examples}}
  - {name: accuracy-change, kind: change, params: {metric: accuracy}}
  - {name: drift-column, kind: distribution, params: {dataset: features, psi: null, correction: bonferroni}}
  - {name: drift-dataset, kind: distribution, params: {per: dataset, p_value: 0.05, correction: bonferroni}}
  - {name: drift-holm, kind: distribution, params: {p_value: 0.05, correction: holm}}
  - {name: budget, kind: budget, params: {clear: 0.9}}
"""


def test_every_rule_kind_with_a_promql_hook_exports_and_passes_promtool(tmp_path: Path) -> None:
    config = tmp_path / "mlmon.yaml"
    config.write_text(EVERY_KIND)
    out = run_export(config, tmp_path / "rules.yml")
    assert out.status == 0, out.stderr
    check_rules(tmp_path / "rules.yml")

    hooked = {name for name, kind in REGISTRY.items() if kind.promql is not None}
    configured = {r["kind"] for r in yaml.safe_load(EVERY_KIND)["rules"]}
    assert hooked <= configured, f"add a rule of each kind with a promql hook: {hooked - configured}"
    rules = out.rules
    assert set(rules) == {
        "accuracy-low", "latency-high", "source-down", "torch-vulnerable", "torch-stale",
        "accuracy-drop", "loss-up", "wilson-drop", "drift-column", "drift-dataset", "budget",
    }  # fmt: skip

    low = rules["accuracy-low"]
    assert low["expr"] == (
        'max without (instance, job) (mlmon_accuracy{project=~"churn|vision\\\\.ai",model=~"churn-.*"} < 0.9)'
    )
    assert low["for"] == "5m" and low["keep_firing_for"] == "10m"
    assert low["labels"] == {"severity": "critical", "team": "ml"}
    annotations = low["annotations"]
    assert annotations["summary"] == (
        '{{ with printf "mlmon_project_info{project=%q}" $labels.project | query }}{{ . | first | label "name" }}'
        "{{ end }} ({{ $labels.project }}) {{ $labels.model }} accuracy {{ $value | humanizePercentage }}, "
        "threshold 0.9"
    )
    assert annotations["runbook_url"] == "https://runbooks.example.com/accuracy"
    assert annotations["description"] == '{{ "{{" }} details.metric }} fell {% if value < 0.5 %}a lot{% endif %}'
    assert TEMPLATE_ANNOTATION in annotations
    assert "hysteresis: mlmon clears only past clear=0.92" in out.text

    assert 'project=~"churn|vision\\\\.ai"' in rules["latency-high"]["expr"]  # tier="gold", resolved now
    assert "avg_over_time(mlmon_latency_seconds" in rules["latency-high"]["expr"]
    assert "resolved when exported to: churn, vision.ai" in out.text
    assert "project" not in rules["source-down"]["expr"]  # no scope: every project
    assert 'package=~"torch|numpy"' in rules["torch-vulnerable"]["expr"]
    for metric in ("minors_behind", "newer_release_age_seconds", "minor_supported", "installed_yanked"):
        assert f"mlmon_stack_{metric}" in rules["torch-stale"]["expr"]
    assert "mlmon_accuracy_baseline_examples" in rules["accuracy-drop"]["expr"]
    assert "mlmon_model_promotion_age_seconds >= 7776000.0" in rules["loss-up"]["expr"]
    assert "group_left count without (column)" in rules["drift-dataset"]["expr"]

    stderr = out.stderr
    for name, why in (
        ("nobody-selected", "matches no configured project"),
        ("switched-off", "disabled"),
        ("fixable-high", "fixable_only"),
        ("patch-sla", "fix date"),
        ("accuracy-change", "CUSUM"),
        ("drift-holm", "correction 'holm'"),
    ):
        assert any(line.startswith(f"not exported: rule {name!r}") and why in line for line in stderr.splitlines()), (
            name,
            stderr,
        )
        assert f"# - {name} (" in out.text


def test_spend_rules_export_where_their_kind_has_promql(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="the spend example's focus source needs pyarrow (mlmon[focus])")
    config = REPO / "examples" / "spend" / "mlmon.yaml"
    out = run_export(config, tmp_path / "rules.yml")
    assert out.status == 0
    check_rules(tmp_path / "rules.yml")
    for rule in yaml.safe_load(config.read_text())["rules"]:
        hooked = REGISTRY[rule["kind"]].promql is not None
        assert (rule["name"] in out.rules) == hooked, rule["name"]
        assert (f"not exported: rule {rule['name']!r} ({rule['kind']})" in out.stderr) == (not hooked)


# --- templates, rendered by Prometheus ---------------------------------------------------------------


def promtool_test(tmp_path: Path, rules: Mapping[str, Any], tests: Sequence[Mapping[str, Any]]) -> str:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    spec = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": list(tests)}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    done = subprocess.run(
        [promtool(), "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_translated_annotations_render_in_prometheus_as_mlmon_means_them(tmp_path: Path) -> None:
    config = parse_config(
        """
projects: [{id: churn, name: Churn classifier, team: growth, owners: [{name: Ada, email: a@example.com}]}]
rules:
  - name: accuracy-low
    kind: threshold
    params: {metric: accuracy, op: "<", value: 0.9}
    annotations:
      summary: "{{ project.name }} / {{ project.team }} / {{ project.id }}: {{ labels.model }} is {{ value | percent }}"
      age: "{{ value | duration }} {{ labels['model'] }} (rule {{ rule.name }}, limit {{ params.value | percent(0) }})"
      runbook_url: "https://runbooks.example.com/{{ rule.kind }}"
      braces: "{ {{ value }} } {{ '{{' }}"
      detailed: "{{ details.threshold }} and {{ value | round(2) }}"
""",
        "templates.yaml",
        config_checks(),
    )
    [rule] = export_rules(config, REGISTRY).rules
    untranslated = "{{ details.threshold }} and {{ value | round(2) }}"
    test = {
        "interval": "1m",
        "input_series": [
            {"series": 'mlmon_accuracy{project="churn",model="churn-v2"}', "values": "0.85x5"},
            {"series": 'mlmon_project_info{project="churn",name="Churn classifier",team="growth"}', "values": "1x5"},
        ],
        "alert_rule_test": [
            {
                "eval_time": "2m",
                "alertname": "accuracy-low",
                "exp_alerts": [
                    {
                        "exp_labels": {"project": "churn", "model": "churn-v2"},
                        "exp_annotations": {
                            "summary": "Churn classifier / growth / churn: churn-v2 is 85%",
                            # humanizeDuration keeps milliseconds where mlmon's `duration` rounds to 0s
                            "age": "850ms churn-v2 (rule accuracy-low, limit 90%)",
                            "runbook_url": "https://runbooks.example.com/threshold",
                            "braces": "{ 0.85 } {{",
                            # not translatable: printed as written, the original kept beside it
                            "detailed": untranslated,
                            TEMPLATE_ANNOTATION: json.dumps({"detailed": untranslated}),
                        },
                    }
                ],
            }
        ],
    }
    promtool_test(tmp_path, {"groups": [{"name": "mlmon", "rules": [rule.alert]}]}, [test])


def test_jinja_blocks_and_whitespace_control_stay_literal() -> None:
    for text in ("{% if value < 1 %}low{% endif %}", "x {{- value }}", "{# note #}{{ value }}"):
        go = translate(text, {})
        assert not go.translated and "{{" not in go.text.replace('{{ "{{" }}', "")


# --- the same series, evaluated by mlmon and by Prometheus -----------------------------------------------

STEP = timedelta(minutes=1)


def mlmon_firing(config_text: str, series: Mapping[str, Sequence[float]], evals: int) -> dict[str, list[list[dict[str, str]]]]:  # fmt: skip
    """Per rule, at each evaluation (every STEP from 0), the label sets mlmon's engine has firing."""
    config = parse_config(config_text, "agreement.yaml", config_checks())
    start = datetime.fromtimestamp(0, UTC)
    firing: dict[str, list[list[dict[str, str]]]] = {r.name: [] for r in config.rules}
    with tempfile.TemporaryDirectory(prefix="mlmon-agreement-") as tmp:
        store = Store.open(f"sqlite:///{tmp}/agreement.db")
        try:
            migrate.upgrade(store.engine)
            samples = []
            for text, values in series.items():
                selector = parse_selector(text)
                labels = {m.name: m.value for m in selector.matchers if m.op is MatchOp.EQ}
                project = labels.pop("project")
                assert selector.metric is not None
                key = SeriesKey(project, selector.metric, labels_of(labels))
                samples += [Sample(key, ms_from_datetime(start + i * STEP), v) for i, v in enumerate(values)]
            store.samples.append(samples)
            clock = FrozenClock(start)
            engine = AlertEngine(store, clock, REGISTRY, lambda: config)
            for i in range(evals):
                clock.set(start + i * STEP)
                engine.evaluate()
                now_firing = engine.alerts.list(states=[AlertState.FIRING.value], limit=10_000)
                for name in firing:
                    labels = [dict(a.labels) for a in now_firing if a.rule == name]
                    firing[name].append(sorted(labels, key=lambda d: sorted(d.items())))
        finally:
            store.close()
    return firing


def agree(tmp_path: Path, config_text: str, series: Mapping[str, Sequence[float]]) -> dict[str, list[int]]:
    """Run both; promtool asserts Prometheus fires exactly what mlmon fires at every evaluation.
    Returns, per rule, the evaluation steps at which something was firing."""
    evals = min(len(v) for v in series.values())
    mlmon = mlmon_firing(config_text, series, evals)
    exported = export_rules(parse_config(config_text, "agreement.yaml", config_checks()), REGISTRY)
    assert not exported.skipped, exported.skipped
    rules = []
    for rule in exported.rules:
        alert = {k: v for k, v in rule.alert.items() if k != "annotations"}  # rendering is tested above
        rules.append(alert)
    checks = [
        {
            "eval_time": f"{i}m",
            "alertname": name,
            "exp_alerts": [{"exp_labels": {k: v for k, v in labels.items() if k != "alertname"}} for labels in at],
        }
        for name, steps in mlmon.items()
        for i, at in enumerate(steps)
    ]
    test = {
        "interval": "1m",
        "input_series": [
            {"series": "mlmon_" + text, "values": " ".join(repr(float(v)) for v in values)}
            for text, values in series.items()
        ],
        "alert_rule_test": checks,
    }
    promtool_test(tmp_path, {"groups": [{"name": "mlmon", "interval": "1m", "rules": rules}]}, [test])
    return {name: [i for i, at in enumerate(steps) if at] for name, steps in mlmon.items()}


def test_a_threshold_rule_fires_at_the_same_times_in_prometheus_and_mlmon(tmp_path: Path) -> None:
    config = """
projects:
  - {id: churn, owners: [{name: Ada, email: a@example.com}]}
  - {id: vision.ai, owners: [{name: Bo, email: b@example.com}]}
rules:
  - {name: accuracy-low, kind: threshold, projects: [churn, vision.ai], for: 2m, keep_firing_for: 3m,
     labels: {severity: critical}, params: {metric: accuracy, match: ['model=~"a|b"'], op: "<", value: 0.9}}
"""
    # a dip, one good minute inside it, a run exactly at the threshold (not below it), a short dip
    dip = [0.95] * 3 + [0.85] * 6 + [0.93] + [0.85] * 2 + [0.95] * 4 + [0.9] * 4 + [0.95] * 4 + [0.89] * 2 + [0.95] * 6
    series = {
        'accuracy{project="churn",model="a"}': dip,
        'accuracy{project="churn",model="b"}': [0.95] * len(dip),
        'accuracy{project="churn",model="c"}': [0.5] * len(dip),  # not selected by the match
        'accuracy{project="vision.ai",model="a"}': list(reversed(dip)),
        'accuracy{project="visionXai",model="a"}': [0.5] * len(dip),  # only an unescaped `.` would select it
    }
    firing = agree(tmp_path, config, series)
    steps = firing["accuracy-low"]
    assert 5 in steps and 0 not in steps and steps != list(range(len(dip)))
    assert 9 in steps  # keep_firing_for bridges the one good minute


def test_drop_rules_fire_at_the_same_times_in_prometheus_and_mlmon(tmp_path: Path) -> None:
    config = """
projects: [{id: churn, owners: [{name: Ada, email: a@example.com}]}]
rules:
  - {name: two-proportion, kind: drop, params: {metric: accuracy, match: ['model="a"'], min_drop: 0.02,
     examples_metric: accuracy_examples, alpha: 0.01}}
  - {name: wilson, kind: drop, params: {metric: accuracy, match: ['model="w"'], min_drop_relative: 0.02,
     examples_metric: accuracy_examples, alpha: 0.05}}
  - {name: loss-up, kind: drop, params: {metric: loss, worse: up, baseline: 0.3, min_drop: 0.01,
     min_drop_relative: 0.1, unchanged_for: 1h, join_on: [model]}}
"""
    n = 16
    # model a: baseline 0.92 on 20,000 examples; a real fall (n 5,000), a small one (no alert),
    # and a fall on 40 examples: past the margin but not significant (mlmon HOLDs while clear)
    a_values = [0.93] * 3 + [0.86] * 4 + [0.91] * 3 + [0.85] * 3 + [0.93] * 3
    a_examples = [5000.0] * 10 + [40.0] * 3 + [5000.0] * 3
    w_values = [0.92] * 2 + [0.80] * 5 + [0.89] * 4 + [0.95] * 5  # baseline has no n: Wilson bound
    w_examples = [400.0] * 7 + [30.0] * 4 + [400.0] * 5
    loss = [0.30] * 4 + [0.36] * 8 + [0.31] * 4
    age = [1800.0 + 300.0 * i for i in range(n)]  # the model's age passes 1h at step 6
    series = {
        'accuracy{project="churn",model="a"}': a_values,
        'accuracy_examples{project="churn",model="a"}': a_examples,
        'accuracy_baseline{project="churn",model="a"}': [0.92] * n,
        'accuracy_baseline_examples{project="churn",model="a"}': [20000.0] * n,
        'accuracy{project="churn",model="w"}': w_values,
        'accuracy_examples{project="churn",model="w"}': w_examples,
        'accuracy_baseline{project="churn",model="w"}': [0.90] * n,
        'loss{project="churn",model="a"}': loss,
        'model_promotion_age_seconds{project="churn",model="a",alias="production"}': age,
    }
    firing = agree(tmp_path, config, series)
    assert firing["two-proportion"] == [3, 4, 5, 6]
    assert firing["wilson"] and 8 not in firing["wilson"]
    assert firing["loss-up"] and firing["loss-up"][0] == 6


def test_distribution_rules_fire_at_the_same_times_in_prometheus_and_mlmon(tmp_path: Path) -> None:
    config = """
projects: [{id: churn, owners: [{name: Ada, email: a@example.com}]}]
rules:
  - {name: column-drift, kind: distribution, params: {dataset: features, jensen_shannon: null, min_examples: 50, correction: bonferroni}}
  - {name: dataset-drift, kind: distribution, params: {dataset: features, per: dataset, dataset_share: 0.6,
     p_value: 0.05, correction: bonferroni, min_examples: 50}}
"""
    n = 10

    def column(name: str, psi: list[float], wasserstein: list[float], p: list[float], examples: list[float]) -> dict[str, list[float]]:  # fmt: skip
        base = f'project="churn",dataset="features",column="{name}"'
        return {
            f'distribution_drift{{{base},statistic="psi"}}': psi,
            f'distribution_drift{{{base},statistic="wasserstein"}}': wasserstein,
            f'distribution_drift{{{base},statistic="jensen_shannon"}}': [0.01] * n,
            f'distribution_drift{{{base},statistic="p_value"}}': p,
            f"distribution_examples{{{base}}}": examples,
        }

    # age drifts at 3-8, but at 5-6 its p-value 0.03 is 0.06 after Bonferroni over two columns; plan
    # drifts at 3-9; zip has too few examples to count. Share 0.6 needs both usable columns.
    age_p = [0.5] * 3 + [0.001] * 2 + [0.03] * 2 + [0.001] * 2 + [0.5]
    series = {
        **column("age", [0.02] * 3 + [0.3] * 6 + [0.02], [0.01] * n, age_p, [500.0] * n),
        **column("plan", [0.02] * n, [0.01] * 3 + [0.2] * 7, [0.2] * 3 + [0.001] * 7, [500.0] * n),
        **column("zip", [0.5] * n, [0.5] * n, [0.0001] * n, [20.0] * n),
    }
    firing = agree(tmp_path, config, series)
    assert firing["column-drift"] == list(range(3, n))
    assert firing["dataset-drift"] == [3, 4, 7, 8]
