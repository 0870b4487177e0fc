"""`mlmon test-rules` against the real `promtool test rules`, from one scenario table.

Each scenario is one threshold rule (`acc_<id> op value`, with `for` / `keep_firing_for`) and its
input series, written once as an mlmon configuration and once as a Prometheus rule file. Both
tools run the same test file (only the rule file differs) that expects nothing to fire at every
evaluation time and at the times between evaluations; each tool's failure report then lists what
fired when, and the two are compared time by time. Where mlmon differs on purpose, the table names
the difference (it is in the README's list) and pins what mlmon shows instead.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.peers import REPO, mlmon_command, require_binary

Firing = frozenset[str]
"""The `model` labels of the firing alerts of one scenario at one time."""

DIFFERENCES = {
    "nodata": "**No data never resolves**",
    "stale": "no staleness markers",
    "nan": "NaN and infinite values are refused",
}
"""Documented differences: the phrase the README's "where they differ on purpose" list carries."""


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    series: dict[str, str]
    """model label -> promtool series notation"""
    end: str
    op: str = "<"
    value: float = 0.9
    for_: str = "0s"
    keep_firing_for: str = "0s"
    interval: str = "1m"
    """spacing of the input samples"""
    evaluation_interval: str = "1m"
    between: tuple[str, ...] = ()
    """eval times that fall between evaluations"""
    fires_at: tuple[str, Firing] | None = None
    """promtool's firing set at one time, pinned so a broken report parser cannot pass unseen"""
    difference: str | None = None
    mlmon_instead: dict[str, Firing] = field(default_factory=dict)
    """eval time -> what mlmon fires there, under `difference`"""


A, B, AB, NONE = frozenset({"a"}), frozenset({"b"}), frozenset({"a", "b"}), frozenset[str]()

SCENARIOS = [
    Scenario("s01", "fires at once without for", {"a": "0.8x5"}, "5m", fires_at=("0s", A)),
    Scenario("s02", "pending for 3m, then firing", {"a": "0.95 0.8x8"}, "8m", for_="3m", fires_at=("4m", A)),
    Scenario("s03", "exact threshold does not satisfy <", {"a": "0.9x5"}, "5m"),
    Scenario("s04", "exact threshold satisfies <=", {"a": "0.9x5"}, "5m", op="<=", fires_at=("0s", A)),
    Scenario(
        "s05", "keep_firing_for after clearing", {"a": "0.8x2 0.95x8"}, "9m", keep_firing_for="3m", fires_at=("4m", A)
    ),
    Scenario(
        "s06",
        "keep_firing_for restarted by a new breach",
        {"a": "0.8 0.95 0.95 0.8 0.95x6"},
        "10m",
        keep_firing_for="3m",
        fires_at=("5m", A),
    ),
    Scenario("s07", "flapping never outlasts for", {"a": "0.8 0.95 0.8 0.95 0.8 0.95 0.8 0.95"}, "7m", for_="2m"),
    Scenario("s08", "flapping without for", {"a": "0.8 0.95 0.8 0.95 0.8 0.95 0.8 0.95"}, "7m", fires_at=("2m", A)),
    Scenario(
        "s09",
        "a gap shorter than the lookback keeps for counting",
        {"a": "0.8x2 _x3 0.8x3"},
        "8m",
        for_="4m",
        fires_at=("4m", A),
    ),
    Scenario(
        "s10",
        "a series that stops: visible for the 5m lookback (inclusive), then gone",
        {"a": "0.8x1"},
        "10m",
        fires_at=("6m", A),
        difference="nodata",
        mlmon_instead=dict.fromkeys(("7m", "8m", "9m", "10m"), A),
    ),
    Scenario(
        "s11",
        "one old point never carries a pending alert to firing",
        {"a": "0.95 0.8 _x14"},
        "15m",
        for_="10m",
    ),
    Scenario(
        "s12",
        "a staleness marker ends the series until its next value",
        {"a": "0.8 0.8 stale 0.8x3"},
        "5m",
        fires_at=("3m", A),
        difference="stale",
        mlmon_instead={"2m": A},
    ),
    Scenario(
        "s13",
        "several alerts of one rule fire at the same time",
        {"a": "0.8x4", "b": "0.8x4", "c": "0.95x4"},
        "4m",
        fires_at=("0s", AB),
    ),
    Scenario(
        "s14",
        "30s samples, checked between evaluations",
        {"a": "0.95 0.95 0.8x10"},
        "5m",
        for_="1m",
        interval="30s",
        between=("1m30s", "1m59s", "2m30s", "2m59s"),
        fires_at=("2m30s", A),
    ),
    Scenario(
        "s15",
        "one of two series stops",
        {"a": "0.8x10", "b": "0.8x2"},
        "9m",
        fires_at=("8m", A),
        difference="nodata",
        mlmon_instead=dict.fromkeys(("8m", "9m"), AB),
    ),
    Scenario(
        "s16",
        "keep_firing_for over a series that stopped",
        {"a": "0.8x1"},
        "12m",
        keep_firing_for="3m",
        fires_at=("9m", A),
        difference="nodata",
        mlmon_instead=dict.fromkeys(("10m", "11m", "12m"), A),
    ),
    Scenario(
        "s17",
        "a+bxN is built by repeated addition (0.5+0.1x4 ends below 0.9)",
        {"a": "0.5+0.1x6"},
        "6m",
        op=">=",
        fires_at=("5m", A),
    ),
    Scenario("s18", "resolves and fires again", {"a": "0.8 0.95 0.8x3"}, "4m", fires_at=("2m", A)),
    Scenario(
        "s19",
        "30s evaluations over 1m samples",
        {"a": "0.95 0.8x5"},
        "5m",
        for_="1m",
        evaluation_interval="30s",
        between=("1m45s",),
        fires_at=("2m", A),
    ),
    Scenario(
        "s20",
        "gaps of _xN add N missing steps",
        {"a": "0.95 _x2 0.8 0.8"},
        "5m",
        fires_at=("3m", A),
    ),
]
NAN = Scenario("s21", "a NaN in the input", {"a": "0.8 NaN 0.8"}, "2m", fires_at=("0s", A), difference="nan")


def seconds(text: str) -> float:
    """A Go or mlmon duration (`1h0m0s`, `2m59s`, `0s`) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", text)
    assert parts is not None and text, f"not a duration: {text!r}"
    hours, minutes, secs = parts.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)


def eval_times(scenario: Scenario) -> list[str]:
    step, end = seconds(scenario.evaluation_interval), seconds(scenario.end)
    times = [f"{int(i * step)}s" for i in range(int(end // step) + 1)]
    return sorted({*times, *scenario.between}, key=seconds)


def rule_test_file(scenarios: list[Scenario], rules_file: str) -> str:
    """One test file for both tools: every scenario expects nothing at every time."""
    [interval] = {s.evaluation_interval for s in scenarios}
    lines = [f"rule_files: [{rules_file}]", f"evaluation_interval: {interval}", "tests:"]
    for s in scenarios:
        lines += [f"  - name: {json.dumps(s.id + ' ' + s.title)}", f"    interval: {s.interval}", "    input_series:"]
        for model, values in s.series.items():
            lines += [f'      - series: \'acc_{s.id}{{project="p", model="{model}"}}\'', f"        values: '{values}'"]
        lines.append("    alert_rule_test:")
        for at in eval_times(s):
            lines += [f"      - eval_time: {at}", f"        alertname: {s.id}", "        exp_alerts: []"]
    return "\n".join(lines) + "\n"


def prometheus_rules(scenarios: list[Scenario]) -> str:
    lines = ["groups:", "  - name: parity", "    rules:"]
    for s in scenarios:
        lines += [f"      - alert: {s.id}", f"        expr: acc_{s.id} {s.op} {s.value}", f"        for: {s.for_}"]
        if seconds(s.keep_firing_for):
            lines.append(f"        keep_firing_for: {s.keep_firing_for}")
        lines.append("        labels: {severity: critical}")
    return "\n".join(lines) + "\n"


def mlmon_config(scenarios: list[Scenario]) -> str:
    lines = ["projects:", "  - id: p", "    owners: [{name: Ada, email: ada@example.com}]", "rules:"]
    for s in scenarios:
        lines += [
            f"  - name: {s.id}",
            "    kind: threshold",
            f"    for: {s.for_}",
            f"    keep_firing_for: {s.keep_firing_for}",
            "    labels: {severity: critical}",
            f'    params: {{metric: acc_{s.id}, op: "{s.op}", value: {s.value}}}',
        ]
    return "\n".join(lines) + "\n"


_FAILURE = re.compile(r"alertname: (\S+?), time: (\S+?),?\s*$")
_MODEL = re.compile(r"""\bmodel=(?:"([^"]*)"|'([^']*)')""")


def firing_sets(report: str, label_marker: str) -> dict[tuple[str, float], Firing]:
    """(alertname, seconds) -> the `model`s firing, read from a tool's failure report: every
    `alertname: X, time: T` block lists what fired; lines holding `label_marker` carry labels."""
    out: dict[tuple[str, float], set[str]] = defaultdict(set)
    current: tuple[str, float] | None = None
    for line in report.splitlines():
        found = _FAILURE.search(line)
        if found:
            current = (found.group(1), seconds(found.group(2)))
            out[current]
            continue
        if current is not None and label_marker in line:
            model = _MODEL.search(line)
            assert model is not None, f"no model label in {line!r}"
            out[current].add(model.group(1) or model.group(2))
    return {key: frozenset(models) for key, models in out.items()}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.peer
def test_firing_sets_agree_with_promtool_at_every_eval_time(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "install the prometheus package (it ships promtool)")
    by_interval: dict[str, list[Scenario]] = defaultdict(list)
    for scenario in SCENARIOS:
        by_interval[scenario.evaluation_interval].append(scenario)
    (tmp_path / "rules.yml").write_text(prometheus_rules(SCENARIOS))
    (tmp_path / "mlmon.yaml").write_text(mlmon_config(SCENARIOS))
    theirs: dict[tuple[str, float], Firing] = {}
    ours: dict[tuple[str, float], Firing] = {}
    for index, group in enumerate(by_interval.values()):
        (tmp_path / f"prom{index}.test.yml").write_text(rule_test_file(group, "rules.yml"))
        (tmp_path / f"mlmon{index}.test.yml").write_text(rule_test_file(group, "mlmon.yaml"))
        prom = run([promtool, "test", "rules", f"prom{index}.test.yml"], tmp_path)
        assert prom.returncode in (0, 1), prom.stderr
        assert "alertname:" in prom.stdout + prom.stderr, prom.stdout + prom.stderr
        theirs.update(firing_sets(prom.stdout + prom.stderr, "Labels:{"))
        mine = run(mlmon_command("test-rules", f"mlmon{index}.test.yml"), tmp_path)
        assert mine.returncode in (0, 1), mine.stdout + mine.stderr
        assert "Traceback" not in mine.stderr, mine.stderr
        ours.update(firing_sets(mine.stdout, "unexpected: {"))

    readme = (REPO / "README.md").read_text()
    compared = 0
    for scenario in SCENARIOS:
        if scenario.difference is not None:
            assert DIFFERENCES[scenario.difference] in readme, f"{scenario.id}: the difference is not documented"
        if scenario.fires_at is not None:
            at, expected = scenario.fires_at
            assert theirs.get((scenario.id, seconds(at))) == expected, f"{scenario.id}: promtool's report at {at}"
        else:
            assert not any(name == scenario.id for name, _ in theirs), f"{scenario.id}: promtool fired"
        instead = {seconds(at): firing for at, firing in scenario.mlmon_instead.items()}
        for at in eval_times(scenario):
            key = (scenario.id, seconds(at))
            prom_set, mlmon_set = theirs.get(key, NONE), ours.get(key, NONE)
            if key[1] in instead:
                assert prom_set != instead[key[1]], f"{scenario.id} at {at}: no difference left"
                assert mlmon_set == instead[key[1]], f"{scenario.title} at {at}: mlmon {mlmon_set}"
            else:
                assert mlmon_set == prom_set, f"{scenario.title} at {at}: promtool {prom_set}, mlmon {mlmon_set}"
            compared += 1
    assert len(SCENARIOS) >= 15 and compared > 150


@pytest.mark.peer
def test_nan_input_runs_in_promtool_and_is_refused_by_mlmon_with_its_line(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "install the prometheus package (it ships promtool)")
    (tmp_path / "rules.yml").write_text(prometheus_rules([NAN]))
    (tmp_path / "mlmon.yaml").write_text(mlmon_config([NAN]))
    (tmp_path / "prom.test.yml").write_text(rule_test_file([NAN], "rules.yml"))
    (tmp_path / "mlmon.test.yml").write_text(rule_test_file([NAN], "mlmon.yaml"))
    prom = run([promtool, "test", "rules", "prom.test.yml"], tmp_path)
    # promtool reads NaN as a value: NaN < 0.9 is false, so the alert resolves at 1m
    assert firing_sets(prom.stdout + prom.stderr, "Labels:{") == {("s21", 0.0): A, ("s21", 120.0): A}
    mine = run(mlmon_command("test-rules", "mlmon.test.yml"), tmp_path)
    assert mine.returncode == 2, mine.stdout + mine.stderr
    values_line = rule_test_file([NAN], "mlmon.yaml").splitlines().index("        values: '0.8 NaN 0.8'") + 1
    assert f"mlmon.test.yml:{values_line}: tests.0.input_series.0.values" in mine.stderr
    assert "expected a finite number" in mine.stderr and "Traceback" not in mine.stderr
    assert DIFFERENCES["nan"] in (REPO / "README.md").read_text()
