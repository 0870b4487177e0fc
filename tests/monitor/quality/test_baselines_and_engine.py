"""Baselines kept by the `baseline` source, read by `drop` through the alert engine, and `change`
keeping its detector in rule memory across engine restarts (both databases)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from alerts.engine import AlertEngine
from alerts.kinds import REGISTRY
from alerts.model import AlertState
from alerts.store import AlertStore
from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.core.types import Event, Sample, SeriesKey, ms_from_datetime
from monitor.runtime import Runtime
from monitor.store.db import write_tx
from tests.conftest import T0, RuntimeFactory
from tests.monitor.quality.recorded import Collecting

START = T0 - timedelta(days=60)
MODEL = (("model", "churn-classifier"),)

CONFIG = f"""
retention: {{raw: 90d}}
projects:
  - id: churn
    name: Churn classifier
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - name: baselines
        kind: baseline
        interval: 1h
        params:
          baselines:
            - metric: accuracy
              window: {{start: "{START.isoformat()}", end: "{(START + timedelta(days=10)).isoformat()}"}}
              examples_metric: accuracy_examples
            - metric: accuracy
              name: accuracy_at_start
              at: "{(START + timedelta(days=1, minutes=30)).isoformat()}"
            - metric: accuracy
              name: accuracy_of_v7
              version: "7"
            - metric: accuracy
              name: accuracy_recent
              trailing: 7d
              gap: 1d
              agg: median
            - metric: accuracy
              name: accuracy_target
              value: 0.9
      - name: nothing
        kind: baseline
        params:
          baselines:
            - metric: accuracy
              window: {{start: "2020-01-01T00:00:00Z", end: "2020-02-01T00:00:00Z"}}
rules:
  - name: accuracy-drop
    kind: drop
    for: 0s
    params: {{metric: accuracy, min_drop: 0.02, examples_metric: accuracy_examples}}
  - name: accuracy-change
    kind: change
    for: 0s
    params: {{metric: accuracy, arl: 100000, lookback: 70d, hold: 30d}}
"""


@dataclass
class World:
    runtime: Runtime
    clock: FrozenClock
    collecting: Collecting

    def push(self, metric: str, ts: datetime, value: float, labels: tuple[tuple[str, str], ...] = MODEL) -> None:
        self.runtime.store.samples.append([Sample(SeriesKey("churn", metric, labels), ms_from_datetime(ts), value)])


@pytest.fixture
def world(make_runtime: RuntimeFactory, db_url: str) -> Iterator[World]:
    clock = FrozenClock(T0)
    runtime = make_runtime(CONFIG, database_url=db_url, clock=clock)
    yield World(runtime, clock, Collecting(runtime, clock))


def _history(world: World) -> None:
    """Daily evaluations for 60 days: v7 at ~0.93 on 10k examples for 40 days, then v8 at ~0.90."""
    rng = np.random.default_rng(1)
    for day in range(60):
        ts = START + timedelta(days=day, hours=1)
        version, level = (7.0, 0.93) if day < 40 else (8.0, 0.90)
        world.push("accuracy", ts, float(level + 0.002 * rng.standard_normal()))
        world.push("accuracy_examples", ts, 10_000)
        world.push("model_version", ts - timedelta(minutes=5), version, (("alias", "production"), *MODEL))


def test_baselines_are_series_with_their_evidence(world: World) -> None:
    _history(world)
    record = world.collecting.run("baselines")
    assert record.ok, record.error
    latest = world.collecting.latest
    window = latest("accuracy_baseline")[MODEL][-1][1]
    assert window == pytest.approx(0.93, abs=0.002)
    assert latest("accuracy_baseline_examples")[MODEL][-1][1] == 100_000, "n of the 10 pooled days"
    assert latest("accuracy_at_start")[MODEL][-1][1] == pytest.approx(0.93, abs=0.01)
    assert latest("accuracy_of_v7")[MODEL][-1][1] == pytest.approx(0.93, abs=0.002)
    assert latest("accuracy_recent")[MODEL][-1][1] == pytest.approx(0.90, abs=0.005)
    assert latest("accuracy_target")[MODEL][-1][1] == 0.9

    failed = world.collecting.run("nothing")
    assert (
        failed.outcome == "failed"
        and "no point between 2020-01-01T00:00:00+00:00 and 2020-02-01T00:00:00+00:00" in (failed.error or "")
    )

    with TestClient(create_app(world.runtime)) as client:
        (series,) = client.get("/api/v1/quality/series", params={"match": 'accuracy{project="churn"}'}).json()
    assert series["baseline"]["value"] == pytest.approx(window)
    assert series["baseline"]["n"] == 100_000
    how = series["baseline"]["how"]
    assert how["method"] == "window" and how["points"] == 10 and how["source"] == "baselines"
    assert series["drop"] == pytest.approx(window - series["latest"][1])


def test_fixed_period_baselines_are_computed_once(world: World) -> None:
    _history(world)
    assert world.collecting.run("baselines").ok
    # Rewriting history inside the window does not move a baseline already learnt from it.
    world.push("accuracy", START + timedelta(days=2, hours=1), 0.5)
    world.clock.advance(timedelta(hours=1))
    assert world.collecting.run("baselines").ok
    values = [v for _, v in world.collecting.latest("accuracy_baseline")[MODEL]]
    assert len(values) == 2 and values[0] == values[1]


def test_drop_alert_against_the_learnt_baseline_names_the_version_change(world: World) -> None:
    _history(world)
    world.runtime.store.events.add(
        [
            Event(
                "churn",
                ms_from_datetime(START + timedelta(days=40)),
                "model_version",
                "model churn-classifier version",
                "7",
                "8",
                "model churn-classifier version 7 -> 8 (alias production)",
                "registry",
            )
        ]  # fmt: skip
    )
    assert world.collecting.run("baselines").ok
    engine = AlertEngine(world.runtime.store, world.clock, REGISTRY, lambda: world.runtime.config)
    engine.evaluate()
    alerts = {a.rule: a for a in AlertStore(world.runtime.store.engine).list()}
    drop = alerts["accuracy-drop"]
    assert drop.state is AlertState.FIRING and drop.value == pytest.approx(0.90, abs=0.01)
    assert re.fullmatch(r"accuracy is 0\.\d+, 0\.0[23]\d* below its baseline 0\.93\d*", drop.annotations["summary"])
    assert drop.annotations["likely_cause"].startswith(
        "model churn-classifier version 7 -> 8 (alias production) (model_version, "
    )
    change = alerts["accuracy-change"]
    assert change.state is AlertState.FIRING and change.annotations["likely_cause"].startswith(
        "model churn-classifier version 7 -> 8"
    )


def test_change_memory_survives_an_engine_restart(world: World) -> None:
    rng = np.random.default_rng(9)
    values = (0.92 + 0.003 * rng.standard_normal(300)).tolist()
    values[200:] = [v - 0.003 for v in values[200:]]
    base = T0 - timedelta(hours=300)
    engine = AlertEngine(world.runtime.store, world.clock, REGISTRY, lambda: world.runtime.config)
    fired_at = None
    for i, value in enumerate(values):
        world.clock.set(base + timedelta(hours=i))
        world.push("accuracy", world.clock.now(), value)
        if i % 25 == 24:
            # a restart: a new engine reads the detector back from the store
            engine = AlertEngine(world.runtime.store, world.clock, REGISTRY, lambda: world.runtime.config)
        engine.evaluate()
        firing = [
            a
            for a in AlertStore(world.runtime.store.engine).list()
            if a.rule == "accuracy-change" and a.state is AlertState.FIRING
        ]
        if i < 200:
            assert firing == [], f"false alarm at point {i}"
        elif firing and fired_at is None:
            fired_at = i
    assert fired_at is not None and fired_at - 200 <= 60, fired_at
    memory = AlertStore(world.runtime.store.engine)
    with write_tx(world.runtime.store.engine) as conn:
        state = memory.memory(conn, ["accuracy-change"])[("accuracy-change", "churn")]
    (series,) = state["series"].values()
    assert series["detector"]["points"] == 300, "every point was fed exactly once"
