"""`mlmon test-rules FILE`: unit tests for alerting rules, in the spirit of `promtool test rules`.

    config: mlmon.yaml                 # projects and rules under test (relative to this file)
    evaluation_interval: 1m
    tests:
      - name: accuracy drop
        interval: 1m
        input_series:
          - series: 'accuracy{project="churn", model="v7"}'
            values: '0.95 0.95 0.85x10 0.93x5'
        source_runs:                   # outcomes of source runs, one per interval (for source_down)
          - {project: churn, source: eval, values: 'ok fail fail fail'}
        alert_rule_test:
          - eval_time: 5m
            alertname: accuracy-low
            exp_alerts:
              - exp_labels: {severity: critical, project: churn, model: v7}
                exp_annotations: {summary: "churn accuracy 85.0%"}

Only firing alerts are compared (as promtool does); `exp_alerts: []` asserts that nothing fires.
Labels are compared exactly (alertname aside); annotations only for the keys given. The rules
run in the real engine on a throw-away store, evaluated every `evaluation_interval` from 0.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml.error import YAMLError

from alerts.engine import AlertEngine, Extra
from alerts.kinds import REGISTRY
from alerts.model import AlertState
from alerts.notation import expand
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
    interval: Duration = timedelta(minutes=1)
    start_timestamp: float = 0.0
    input_series: list[InputSeries] = Field(default_factory=list)
    source_runs: list[SourceRuns] = Field(default_factory=list)
    alert_rule_test: list[AlertTest] = Field(default_factory=list)


class RuleTestFile(_Model):
    config: str
    evaluation_interval: Duration = timedelta(minutes=1)
    tests: list[RuleTestCase]


@dataclass
class CaseResult:
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class RuleTestError(Exception):
    """The test file itself is invalid."""


def load_test_file(path: Path) -> RuleTestFile:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), typ="safe")
    except YamlRefused as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise RuleTestError(f"{where}: refused: {exc.message}") from None
    except (OSError, YAMLError, UnicodeDecodeError) as exc:
        raise RuleTestError(f"{path}: cannot read the test file: {exc}") from None
    try:
        return RuleTestFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RuleTestError(f"{path}: {problems}") from None


Extras = Callable[[Callable[[], MlmonConfig]], Mapping[str, Extra]]
"""The data providers for a configuration (the service passes every family's: `monitor.providers`)."""


def run_file(path: Path, load_config: Callable[[Path], MlmonConfig], extras: Extras) -> list[CaseResult]:
    spec = load_test_file(path)
    config = load_config((path.parent / spec.config).resolve())
    every = spec.evaluation_interval
    return [_run_case(case, index, config, every, extras) for index, case in enumerate(spec.tests)]


def _run_case(case: RuleTestCase, index: int, config: MlmonConfig, every: timedelta, extras: Extras) -> CaseResult:
    result = CaseResult(case.name or f"test {index}")
    start = datetime.fromtimestamp(case.start_timestamp, UTC)
    with tempfile.TemporaryDirectory(prefix="mlmon-rule-test-") as tmp:
        store = Store.open(f"sqlite:///{tmp}/rules.db")
        try:
            migrate.upgrade(store.engine)
            try:
                _load_series(store, case, start)
                runs = _runs(case, start)
            except ValueError as exc:
                result.failures.append(str(exc))
                return result
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
                while pending_checks and pending_checks[0].eval_time <= moment:
                    _compare(pending_checks.pop(0), engine, result)
                moment += every
            for check in pending_checks:
                _compare(check, engine, result)
        finally:
            store.close()
    return result


def _load_series(store: Store, case: RuleTestCase, start: datetime) -> None:
    samples: list[Sample] = []
    step_ms = int(case.interval.total_seconds() * 1000)
    for item in case.input_series:
        selector = parse_selector(item.series)
        labels = {m.name: m.value for m in selector.matchers if m.op is MatchOp.EQ}
        project = labels.pop("project", None)
        if selector.metric is None or project is None:
            raise ValueError(f"series {item.series!r} needs a metric name and a project label")
        key = SeriesKey(project, selector.metric, labels_of(labels))
        for i, value in enumerate(expand(item.values)):
            if value is not None:
                samples.append(Sample(key, ms_from_datetime(start) + i * step_ms, value))
    store.samples.append(samples)


def _runs(case: RuleTestCase, start: datetime) -> list[RunRecord]:
    runs = []
    for item in case.source_runs:
        for i, token in enumerate(item.values.split()):
            if token == "_":
                continue
            if token not in ("ok", "fail"):
                raise ValueError(f"source run outcome {token!r}: expected ok, fail or _")
            at = start + i * case.interval
            outcome = "ok" if token == "ok" else "failed"
            runs.append(
                RunRecord(
                    item.project, item.source, item.kind, at, 0.0, outcome, None if token == "ok" else "test failure"
                )
            )
    return runs


def _compare(check: AlertTest, engine: AlertEngine, result: CaseResult) -> None:
    firing = [
        a for a in engine.alerts.list(states=[AlertState.FIRING.value], limit=100_000) if a.rule == check.alertname
    ]
    got = sorted(({k: v for k, v in a.labels.items() if k != "alertname"}, dict(a.annotations)) for a in firing)
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
            problems.append(f"expected {expected.exp_labels} {expected.exp_annotations or ''}".rstrip())
        else:
            unmatched.remove(match)
    if problems or unmatched:
        shown = (
            "\n".join(f"        {labels} {annotations}" for labels, annotations in got) or "        (nothing firing)"
        )
        result.failures.append(
            f"alertname: {check.alertname}, time: {format_duration(check.eval_time)}\n"
            + "".join(f"      missing: {p}\n" for p in problems)
            + f"      got:\n{shown}"
        )


def describe(results: list[CaseResult]) -> tuple[bool, str]:
    lines: list[str] = []
    for case in results:
        lines.append(f"  {'SUCCESS' if case.ok else 'FAILED'}: {case.name}")
        lines.extend(f"    {failure}" for failure in case.failures)
    return all(c.ok for c in results), "\n".join(lines)
