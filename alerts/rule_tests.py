"""`mlmon test-rules FILE`: unit tests for alerting rules, in promtool's file format where it maps.

    rule_files: [mlmon.yaml]           # one mlmon configuration (`config: mlmon.yaml` also works)
    evaluation_interval: 1m
    tests:
      - name: accuracy drop
        interval: 1m
        input_series:
          - series: 'accuracy{project="churn", model="v7"}'
            values: '0.95 0.95 0.85x10 0.93x5'
        source_runs:                   # mlmon's own: source run outcomes per interval (source_down)
          - {project: churn, source: eval, values: 'ok fail fail fail'}
        alert_rule_test:
          - eval_time: 5m
            alertname: accuracy-low
            exp_alerts:
              - exp_labels: {severity: critical, project: churn, model: v7}
                exp_annotations: {summary: "churn accuracy 85.0%"}

As promtool: the rules are evaluated every `evaluation_interval` from 0 up to the last
`eval_time`; a check at an `eval_time` between evaluations sees the previous evaluation; only
firing alerts count, compared as a multiset of label sets (alertname aside); an `alertname` no rule
has fails. Unlike promtool: annotations are compared only for the keys given (mlmon adds a default
summary), a `stale` step stores nothing (mlmon keeps no staleness markers, so the series stays
visible until the 5-minute lookback passes), and NaN or infinite input values are refused (mlmon
stores finite values only). promtool's keys mlmon cannot honour are named in the error.

A file that cannot be run (bad YAML, unknown key, malformed series or regex, NaN) raises
`RuleTestError` with `file:line: field: what was expected`; the CLI exits 2 on it, 1 on a failed test.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml.error import YAMLError

from alerts.engine import AlertEngine, Extra
from alerts.kinds import REGISTRY
from alerts.model import AlertState
from alerts.notation import STALE, expand
from monitor.config.models import MlmonConfig
from monitor.config.types import Duration
from monitor.core.clock import FrozenClock
from monitor.core.durations import format_duration
from monitor.core.matchers import MatchOp, parse_selector
from monitor.core.types import Sample, SeriesKey, labels_of, ms_from_datetime
from monitor.core.yaml_guard import YamlRefused, load_yaml
from monitor.store import migrate
from monitor.store.sources import RunRecord
from monitor.store.store import Store


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSeries(_Model):
    series: str
    values: str


class SourceRuns(_Model):
    project: str
    source: str
    kind: str = "test"
    values: str = Field(description="ok / fail / _ per interval")


class ExpectedAlert(_Model):
    exp_labels: dict[str, str] = Field(default_factory=dict)
    exp_annotations: dict[str, str] = Field(default_factory=dict)


class AlertTest(_Model):
    eval_time: Duration
    alertname: str
    exp_alerts: list[ExpectedAlert] = Field(default_factory=list)


class RuleTestCase(_Model):
    name: str = ""
    interval: Duration | None = None
    """Spacing of the input samples; promtool's default is the evaluation interval."""
    start_timestamp: float = 0.0
    input_series: list[InputSeries] = Field(default_factory=list)
    source_runs: list[SourceRuns] = Field(default_factory=list)
    alert_rule_test: list[AlertTest] = Field(default_factory=list)


class RuleTestFile(_Model):
    config: str | None = None
    rule_files: list[str] | None = None
    evaluation_interval: Duration = timedelta(minutes=1)
    tests: list[RuleTestCase]


PROMTOOL_ONLY_FILE = {
    "group_eval_order": "mlmon evaluates every rule at each step from the same data; no rule reads "
    "another's output, so the order cannot change a result",
    "fuzzy_compare": "mlmon compares no values, only which alerts fire",
}
PROMTOOL_ONLY_TEST = {
    "promql_expr_test": "mlmon has no PromQL engine; test alerts with alert_rule_test",
    "external_labels": "mlmon has no external labels; put labels on the rule instead",
    "external_url": "mlmon's annotation templates have no external URL variable",
}


@dataclass
class CaseResult:
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class RuleTestError(Exception):
    """The test file itself is invalid (the CLI exits 2)."""


@dataclass(frozen=True)
class _Where:
    """Line numbers of the test file's nodes, for errors that name file:line."""

    path: Path
    root: Any

    def line(self, loc: Sequence[str | int]) -> int | None:
        node, found = self.root, None
        for part in loc:
            lines = getattr(node, "lc", None)
            try:
                if isinstance(node, dict) and part in node:
                    found = lines.key(part)[0] + 1 if lines is not None else found
                    node = node[part]
                elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                    found = lines.item(part)[0] + 1 if lines is not None else found
                    node = node[part]
                else:
                    break
            except (KeyError, IndexError, TypeError):  # a node without position data
                break
        return found

    def error(self, loc: Sequence[str | int], why: str) -> RuleTestError:
        line = self.line(loc)
        at = f"{self.path}:{line}" if line is not None else str(self.path)
        name = ".".join(str(p) for p in loc)
        return RuleTestError(f"{at}: {name}: {why}" if name else f"{at}: {why}")


def load_test_file(path: Path) -> RuleTestFile:
    return _load(path)[0]


def _load(path: Path) -> tuple[RuleTestFile, _Where]:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))  # round-trip: nodes keep their lines
    except YamlRefused as exc:
        at = f"{path}:{exc.line}" if exc.line else str(path)
        raise RuleTestError(f"{at}: refused: {exc.message}") from None
    except (OSError, YAMLError, UnicodeDecodeError) as exc:
        raise RuleTestError(f"{path}: cannot read the test file: {exc}") from None
    where = _Where(path, data)
    if not isinstance(data, dict):
        raise where.error((), "expected a mapping with rule_files (or config) and tests")
    _refuse_promtool_only(data, where)
    try:
        spec = RuleTestFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
        why = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        raise where.error(loc, why + more) from None
    if (spec.config is None) == (spec.rule_files is None):
        raise where.error(("rule_files",), "give the mlmon configuration under rule_files (or config), exactly once")
    if spec.rule_files is not None and len(spec.rule_files) != 1:
        raise where.error(("rule_files",), "expected exactly one file: the mlmon configuration holding the rules")
    return spec, where


def _refuse_promtool_only(data: Mapping[str, Any], where: _Where) -> None:
    for key, why in PROMTOOL_ONLY_FILE.items():
        if key in data:
            raise where.error((key,), f"promtool's key, which mlmon cannot honour: {why}")
    tests = data.get("tests")
    for index, case in enumerate(tests if isinstance(tests, list) else []):
        for key, why in PROMTOOL_ONLY_TEST.items():
            if isinstance(case, dict) and key in case:
                raise where.error(("tests", index, key), f"promtool's key, which mlmon cannot honour: {why}")


Extras = Callable[[Callable[[], MlmonConfig]], Mapping[str, Extra]]
"""The data providers for a configuration (the service passes every family's: `monitor.providers`)."""


def run_file(path: Path, load_config: Callable[[Path], MlmonConfig], extras: Extras) -> list[CaseResult]:
    spec, where = _load(path)
    config_name = spec.config if spec.config is not None else (spec.rule_files or [""])[0]
    config_path = (path.parent / config_name).resolve()
    _refuse_prometheus_rules(config_path, where, "config" if spec.config is not None else "rule_files")
    config = load_config(config_path)
    inputs = [_inputs(case, index, where, spec.evaluation_interval) for index, case in enumerate(spec.tests)]
    rules = {rule.name for rule in config.rules}
    return [
        _run_case(case, index, config, spec.evaluation_interval, inputs[index], rules, extras)
        for index, case in enumerate(spec.tests)
    ]


def _refuse_prometheus_rules(config_path: Path, where: _Where, key: str) -> None:
    try:
        head = load_yaml(config_path.read_text(encoding="utf-8"), typ="safe")
    except (OSError, YAMLError, YamlRefused, UnicodeDecodeError):
        return  # the configuration loader says what is wrong with it
    if isinstance(head, dict) and "groups" in head and "rules" not in head:
        raise where.error(
            (key,), f"{config_path.name} is a Prometheus rule file; expected an mlmon configuration (rules: [...])"
        )


@dataclass
class _Inputs:
    samples: list[Sample]
    runs: list[RunRecord]


def _inputs(case: RuleTestCase, index: int, where: _Where, every: timedelta) -> _Inputs:
    """The case's samples and source runs, or RuleTestError naming the line of the bad item."""
    start = datetime.fromtimestamp(case.start_timestamp, UTC)
    interval = case.interval or every
    step_ms = int(interval.total_seconds() * 1000)
    samples: list[Sample] = []
    for number, item in enumerate(case.input_series):
        at = ("tests", index, "input_series", number)
        try:
            selector = parse_selector(item.series)
        except ValueError as exc:
            raise where.error((*at, "series"), str(exc)) from None
        labels = {m.name: m.value for m in selector.matchers if m.op is MatchOp.EQ}
        if any(m.op is not MatchOp.EQ for m in selector.matchers):
            raise where.error((*at, "series"), 'expected a series with = matchers only, e.g. m{project="p"}')
        project = labels.pop("project", None)
        if selector.metric is None or project is None:
            raise where.error((*at, "series"), f"series {item.series!r} needs a metric name and a project label")
        key = SeriesKey(project, selector.metric, labels_of(labels))
        try:
            values = expand(item.values)
        except ValueError as exc:
            raise where.error((*at, "values"), str(exc)) from None
        for i, value in enumerate(values):
            if value is None or value is STALE:
                continue  # mlmon keeps no staleness markers: a stale step stores nothing
            assert isinstance(value, float)
            if not math.isfinite(value):
                raise where.error(
                    (*at, "values"), f"value {value} at step {i}: expected a finite number (mlmon stores no NaN or Inf)"
                )
            samples.append(Sample(key, ms_from_datetime(start) + i * step_ms, value))
    try:
        runs = _runs(case, start, interval)
    except ValueError as exc:
        raise where.error(("tests", index, "source_runs"), str(exc)) from None
    return _Inputs(samples, runs)


def _run_case(
    case: RuleTestCase,
    index: int,
    config: MlmonConfig,
    every: timedelta,
    inputs: _Inputs,
    rules: set[str],
    extras: Extras,
) -> CaseResult:
    result = CaseResult(case.name or f"test {index}")
    start = datetime.fromtimestamp(case.start_timestamp, UTC)
    with tempfile.TemporaryDirectory(prefix="mlmon-rule-test-") as tmp:
        store = Store.open(f"sqlite:///{tmp}/rules.db")
        try:
            migrate.upgrade(store.engine)
            store.samples.append(inputs.samples)
            runs = list(inputs.runs)
            clock = FrozenClock(start)
            engine = AlertEngine(store, clock, REGISTRY, lambda: config, extras(lambda: config))
            checks = sorted(case.alert_rule_test, key=lambda t: t.eval_time)
            end = max((t.eval_time for t in checks), default=timedelta(0))
            moment, pending_checks = timedelta(0), list(checks)
            while moment <= end:
                for run in [r for r in runs if r.started_at <= start + moment]:
                    store.sources.record(run)
                    runs.remove(run)
                clock.set(start + moment)
                engine.evaluate()
                moment += every
                # as promtool: a check sees the last evaluation at or before its eval_time
                while pending_checks and pending_checks[0].eval_time < moment:
                    _compare(pending_checks.pop(0), engine, result, rules)
        finally:
            store.close()
    return result


def _runs(case: RuleTestCase, start: datetime, interval: timedelta) -> list[RunRecord]:
    runs = []
    for item in case.source_runs:
        for i, token in enumerate(item.values.split()):
            if token == "_":
                continue
            if token not in ("ok", "fail"):
                raise ValueError(f"source run outcome {token!r}: expected ok, fail or _")
            at = start + i * interval
            outcome = "ok" if token == "ok" else "failed"
            runs.append(
                RunRecord(
                    item.project, item.source, item.kind, at, 0.0, outcome, None if token == "ok" else "test failure"
                )
            )
    return runs


def _compare(check: AlertTest, engine: AlertEngine, result: CaseResult, rules: set[str]) -> None:
    where = f"alertname: {check.alertname}, time: {format_duration(check.eval_time)}"
    if check.alertname not in rules:
        wanted = [_shown(e.exp_labels, e.exp_annotations) for e in check.exp_alerts]
        result.failures.append(
            f"{where}\n      no rule is named {check.alertname!r}\n"
            + "".join(f"      exp: {e}\n" for e in wanted)
            + "      got: (no such rule)"
        )
        return
    firing = [
        a for a in engine.alerts.list(states=[AlertState.FIRING.value], limit=100_000) if a.rule == check.alertname
    ]
    got = sorted(
        (({k: v for k, v in a.labels.items() if k != "alertname"}, dict(a.annotations)) for a in firing),
        key=lambda pair: (sorted(pair[0].items()), sorted(pair[1].items())),
    )
    unmatched = list(got)
    problems: list[str] = []
    for expected in check.exp_alerts:
        match = next(
            (
                g
                for g in unmatched
                if g[0] == expected.exp_labels and all(g[1].get(k) == v for k, v in expected.exp_annotations.items())
            ),
            None,
        )
        if match is None:
            problems.append(_shown(expected.exp_labels, expected.exp_annotations))
        else:
            unmatched.remove(match)
    if problems or unmatched:
        shown = "\n".join(f"        {_shown(labels, notes)}" for labels, notes in got) or "        (nothing firing)"
        result.failures.append(
            f"{where}\n"
            + "".join(f"      missing: {p}\n" for p in problems)
            + "".join(f"      unexpected: {_shown(labels, notes)}\n" for labels, notes in unmatched)
            + f"      got:\n{shown}"
        )


def _shown(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    text = "{" + ", ".join(f"{k}={v!r}" for k, v in sorted(labels.items())) + "}"
    if annotations:
        text += " {" + ", ".join(f"{k}={v!r}" for k, v in sorted(annotations.items())) + "}"
    return text


def describe(results: list[CaseResult]) -> tuple[bool, str]:
    lines: list[str] = []
    for case in results:
        lines.append(f"  {'SUCCESS' if case.ok else 'FAILED'}: {case.name}")
        lines.extend(f"    {failure}" for failure in case.failures)
    return all(c.ok for c in results), "\n".join(lines)
