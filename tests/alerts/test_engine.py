"""The alert engine and dispatcher against the real store (SQLite and PostgreSQL), frozen clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from alerts.dispatcher import Dispatcher
from alerts.engine import AlertEngine
from alerts.kinds import REGISTRY
from alerts.kinds.base import Evaluation, KindParams, RuleContext, RuleKind
from alerts.model import AlertState
from alerts.store import AlertStore, OutboxStore, SilenceStore
from monitor.core.clock import FrozenClock
from monitor.core.matchers import parse_matchers
from monitor.core.types import Event, Sample, SeriesKey, ms_from_datetime
from monitor.runtime import Runtime
from monitor.store.retention import apply_retention
from monitor.store.sources import RunRecord
from tests.conftest import RuntimeFactory

CONFIG = """
projects:
  - id: churn
    name: Churn
    owners: [{name: Ada, email: ada@example.com, slack: "@ada"}]
    labels: {tier: gold}
    sources: [{name: eval, kind: push}]
  - id: vision
    owners: [{name: Grace, email: grace@example.com}]
rules:
  - name: accuracy-low
    kind: threshold
    project_selector: ['tier="gold"']
    for: 2m
    labels: {severity: critical}
    params: {metric: accuracy, op: "<", value: 0.90, clear: 0.92}
    annotations: {summary: "{{ project.name }} {{ labels.model }} at {{ value }}", broken: "{{ details.nope.deeper }}"}
  - name: spend-high
    kind: threshold
    params: {metric: gpu_spend_usd, op: ">", value: 1000}
  - name: source-down
    kind: source_down
    params: {failures: 2}
receivers:
  - name: owners
    webhook: {url: "http://127.0.0.1:9/hook"}
route:
  receiver: owners
  group_wait: 30s
  group_interval: 1m
  repeat_interval: 1h
"""
ACC = SeriesKey("churn", "accuracy", (("model", "v7"),))


@dataclass
class World:
    runtime: Runtime
    clock: FrozenClock
    engine: AlertEngine
    dispatcher: Dispatcher

    def push(self, key: SeriesKey, value: float) -> None:
        self.runtime.store.samples.append([Sample(key, ms_from_datetime(self.clock.now()), value)])

    def at(self, minutes: float) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    def alerts(self, rule: str | None = None) -> list[Any]:
        found = AlertStore(self.runtime.store.engine).list()
        return [a for a in found if rule is None or a.rule == rule]

    def outbox(self) -> list[Any]:
        return OutboxStore(self.runtime.store.engine).items()


@pytest.fixture
def world(make_runtime: RuntimeFactory, db_url: str, clock: FrozenClock) -> World:
    runtime = make_runtime(CONFIG, database_url=db_url, clock=clock)
    engine = AlertEngine(runtime.store, clock, REGISTRY, lambda: runtime.config)
    dispatcher = Dispatcher(runtime.store, clock, lambda: runtime.config, "http://mlmon.test")
    return World(runtime, clock, engine, dispatcher)


def test_lifecycle_persisted_and_notified_once(world: World) -> None:
    world.push(ACC, 0.85)
    world.engine.evaluate()
    (alert,) = world.alerts()
    assert alert.state is AlertState.PENDING and alert.labels == {
        "alertname": "accuracy-low",
        "project": "churn",
        "model": "v7",
        "severity": "critical",
    }
    world.at(2)
    world.engine.evaluate()
    (alert,) = world.alerts()
    assert alert.state is AlertState.FIRING
    assert alert.annotations["summary"] == "Churn v7 at 0.85"
    assert alert.annotations["broken"].startswith("<error rendering broken:"), (
        "a failing template still yields the alert"
    )
    assert world.dispatcher.tick().enqueued == 0, "group_wait not over"
    world.at(0.5)
    assert world.dispatcher.tick().enqueued == 1
    (item,) = world.outbox()
    body = item.payload["body"]
    assert body["status"] == "firing" and body["alerts"][0]["annotations"]["summary"] == "Churn v7 at 0.85"
    assert body["mlmon"]["owners"] == [{"name": "Ada", "email": "ada@example.com", "slack": "@ada"}]

    # restart: new engine and dispatcher on the same store; the alert stays firing, no second notice
    engine = AlertEngine(world.runtime.store, world.clock, REGISTRY, lambda: world.runtime.config)
    dispatcher = Dispatcher(world.runtime.store, world.clock, lambda: world.runtime.config, "http://mlmon.test")
    world.at(5)
    engine.evaluate()
    assert dispatcher.tick().enqueued == 0
    assert world.alerts()[0].state is AlertState.FIRING

    world.push(ACC, 0.91)  # in the hysteresis band: keeps firing
    engine.evaluate()
    assert world.alerts()[0].state is AlertState.FIRING
    world.at(1)
    world.push(ACC, 0.95)
    engine.evaluate()
    (alert,) = world.alerts()
    assert alert.state is AlertState.RESOLVED and alert.value == 0.95
    world.at(1)
    assert dispatcher.tick().enqueued == 1
    resolved = world.outbox()[-1].payload["body"]
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["annotations"]["summary"] == "Churn v7 at 0.95"
    assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"


def test_missing_data_never_resolves(world: World) -> None:
    world.push(ACC, 0.5)
    world.at(3)
    world.engine.evaluate()
    world.at(2)
    world.engine.evaluate()
    assert world.alerts()[0].state is AlertState.FIRING
    # every raw sample folded away: the series has no newest point any more
    apply_retention(
        world.runtime.store.engine,
        world.clock.now() + timedelta(days=40),
        timedelta(days=30),
        timedelta(days=400),
        timedelta(days=30),
    )
    world.at(10)
    world.engine.evaluate()
    (alert,) = world.alerts()
    assert alert.state is AlertState.FIRING and alert.nodata and alert.nodata_since == world.clock.now()


def test_ingest_evaluates_only_what_it_touched(world: World) -> None:
    world.push(SeriesKey("vision", "gpu_spend_usd", ()), 5000)
    world.push(ACC, 0.5)
    report = world.engine.evaluate({("vision", "gpu_spend_usd")})
    assert report.rules == 1
    assert [a.rule for a in world.alerts()] == ["spend-high"]
    assert world.engine.watches([ACC, SeriesKey("churn", "unwatched", ())]) == {("churn", "accuracy")}


def test_source_down_inhibits_dependent_alerts_and_silences_mute(world: World) -> None:
    store = world.runtime.store
    for i in range(2):
        store.sources.record(
            RunRecord("churn", "eval", "push", world.clock.now() + timedelta(seconds=i), 0.1, "failed", "no sample")
        )
    world.push(ACC, 0.5)
    world.push(SeriesKey("churn", "gpu_spend_usd", ()), 5000)
    world.engine.evaluate()
    world.at(2)
    world.engine.evaluate()
    firing = {a.rule for a in world.alerts() if a.state is AlertState.FIRING}
    assert firing == {"accuracy-low", "spend-high", "source-down"}
    world.at(1)
    report = world.dispatcher.tick()
    muted = {fp for fp, m in report.muted.items() if m.muted}
    by_fp = {a.fingerprint: a.rule for a in world.alerts()}
    assert {by_fp[fp] for fp in muted} == {"accuracy-low", "spend-high"}, "source_down mutes the project's other alerts"
    sent = world.outbox()[-1].payload["body"]["alerts"]
    assert [a["labels"]["alertname"] for a in sent] == ["source-down"]
    # a silence on the source_down alert itself
    SilenceStore(store.engine).create(
        list(parse_matchers('alertname="source-down"')),
        world.clock.now(),
        world.clock.now() + timedelta(hours=1),
        "ada",
        "known outage",
        world.clock.now(),
    )
    world.at(2)
    report = world.dispatcher.tick()
    down_fp = next(a.fingerprint for a in world.alerts() if a.rule == "source-down")
    assert report.muted[down_fp].silenced_by


def test_acknowledged_alerts_are_not_repeated(world: World) -> None:
    world.push(ACC, 0.5)
    world.engine.evaluate()
    world.at(2)
    world.engine.evaluate()
    world.at(1)
    assert world.dispatcher.tick().enqueued == 1
    alert = world.alerts()[0]
    assert AlertStore(world.runtime.store.engine).ack(alert.id, "Ada", "looking", world.clock.now())
    world.at(61)
    world.engine.evaluate()
    assert world.dispatcher.tick().enqueued == 0, "acked: no repeat"
    world.push(SeriesKey("churn", "accuracy", (("model", "v8"),)), 0.4)  # a new alert joins the group
    world.engine.evaluate()
    world.at(2)
    world.engine.evaluate()
    world.at(1)
    assert world.dispatcher.tick().enqueued == 1
    assert len(world.outbox()[-1].payload["body"]["alerts"]) == 2


def test_likely_cause_names_the_preceding_event(world: World) -> None:
    store = world.runtime.store
    store.events.add(
        [Event("churn", ms_from_datetime(world.clock.now()) - 3_600_000, "version_change", "torch", "2.14.1", "2.15.0")]
    )
    world.push(ACC, 0.5)
    world.engine.evaluate()
    (alert,) = world.alerts()
    assert alert.annotations["likely_cause"].startswith("torch 2.14.1 -> 2.15.0 (version_change,")


class _BoomParams(KindParams):
    pass


def _boom(_params: _BoomParams, _ctx: RuleContext) -> Evaluation:
    raise RuntimeError("kaboom")


def test_a_failing_rule_does_not_stop_the_others(world: World) -> None:
    kinds = {**REGISTRY, "boom": RuleKind("boom", _BoomParams, _boom, "x")}
    config = world.runtime.config.model_copy(
        update={
            "rules": [
                *world.runtime.config.rules,
                world.runtime.config.rules[1].model_copy(update={"name": "boom", "kind": "boom", "params": {}}),
            ]
        }
    )
    engine = AlertEngine(world.runtime.store, world.clock, kinds, lambda: config)
    world.push(SeriesKey("vision", "gpu_spend_usd", ()), 5000)
    report = engine.evaluate()
    assert set(report.failures) == {"boom/churn", "boom/vision"} and "kaboom" in report.failures["boom/churn"]
    assert [a.rule for a in world.alerts()] == ["spend-high"]


WINDOWED = """
projects:
  - id: churn
rules:
  - name: spend-avg-high
    kind: threshold
    params: {metric: gpu_spend_usd, op: ">", value: 100, over: 1h, agg: avg}
  - name: accuracy-worst-low
    kind: threshold
    params: {metric: accuracy, op: "<", value: 0.8, over: 30m, agg: min, no_data_after: 20m}
"""


def test_windowed_thresholds_read_the_aggregate_from_the_database(
    make_runtime: RuntimeFactory, db_url: str, clock: FrozenClock
) -> None:
    runtime = make_runtime(WINDOWED, database_url=db_url, clock=clock)
    engine = AlertEngine(runtime.store, clock, REGISTRY, lambda: runtime.config)
    now = ms_from_datetime(clock.now())
    spend, acc = SeriesKey("churn", "gpu_spend_usd", ()), SeriesKey("churn", "accuracy", ())
    minute = 60_000
    # spend in the last hour: 40, 130, 160 (avg 110); 500 at 61 minutes ago is outside the window
    runtime.store.samples.append(
        [Sample(spend, now - m * minute, v) for m, v in ((61, 500), (50, 40), (20, 130), (0, 160))]
    )
    # accuracy: worst 0.7 within 30 minutes, newest 25 minutes ago (past no_data_after: no data)
    runtime.store.samples.append([Sample(acc, now - m * minute, v) for m, v in ((40, 0.1), (29, 0.7), (25, 0.95))])
    engine.evaluate()
    by_rule = {a.rule: a for a in AlertStore(runtime.store.engine).list()}
    assert set(by_rule) == {"spend-avg-high"}, "accuracy has no data (newest point 25 min old), so no alert"
    assert by_rule["spend-avg-high"].state is AlertState.FIRING
    assert by_rule["spend-avg-high"].value == pytest.approx(110.0)

    runtime.store.samples.append([Sample(acc, now, 0.9)])  # fresh data; the window's worst is 0.7
    report = engine.evaluate({("churn", "accuracy")})  # after an ingest: the same reads, one project
    assert report.rules == 1
    alert = next(a for a in AlertStore(runtime.store.engine).list() if a.rule == "accuracy-worst-low")
    assert alert.state is AlertState.FIRING and alert.value == pytest.approx(0.7)
