"""Pushed distributions end to end: the API stores a binned reference, compares each current batch
with it, writes the statistics as series, and the `distribution` rule alerts (both databases)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from alerts.engine import AlertEngine
from alerts.kinds import REGISTRY
from alerts.model import AlertState
from alerts.store import AlertStore
from monitor.api.app import create_app
from monitor.api.routes.quality import reference_cache
from monitor.core.clock import FrozenClock
from monitor.core.matchers import parse_selector
from monitor.runtime import Runtime
from tests.conftest import RuntimeFactory, token_headers
from tests.support.peers import require_binary

CONFIG = """
projects:
  - id: churn
    owners: [{name: Ada, email: ada@example.com}]
  - id: vision
    owners: [{name: Grace, email: grace@example.com}]
quality:
  distributions: {max_values_per_column: 50000}
rules:
  - name: feature-drift
    kind: distribution
    for: 0s
    labels: {severity: warning}
    params: {dataset: features}
  - name: dataset-drift
    kind: distribution
    for: 0s
    params: {dataset: features, per: dataset, dataset_share: 0.5}
  - name: gated-drift
    kind: distribution
    for: 0s
    params: {dataset: small, p_value: 0.01, correction: holm, min_examples: 20}
"""
RNG = np.random.default_rng(42)
LABELS = {"model": "churn-classifier"}


@dataclass
class World:
    runtime: Runtime
    client: TestClient
    clock: FrozenClock
    engine: AlertEngine

    def push(
        self, role: str, columns: dict[str, object], dataset: str = "features", **extra: object
    ) -> dict[str, object]:
        body = {"project": "churn", "dataset": dataset, "labels": LABELS, "role": role, "columns": columns, **extra}
        response = self.client.post("/api/v1/quality/distributions", json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, object] = response.json()
        return answer

    def firing(self, rule: str) -> list[dict[str, str]]:
        return [
            dict(a.labels)
            for a in AlertStore(self.runtime.store.engine).list()
            if a.rule == rule and a.state is AlertState.FIRING
        ]


@pytest.fixture
def world(make_runtime: RuntimeFactory, db_url: str, clock: FrozenClock) -> Iterator[World]:
    runtime = make_runtime(CONFIG, database_url=db_url, clock=clock)
    engine = AlertEngine(runtime.store, clock, REGISTRY, lambda: runtime.config)
    runtime.on_ingest(engine.on_ingest)  # a pushed batch evaluates the rules that read it
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        yield World(runtime, client, clock, engine)


def _features(n: int, age_shift: float = 0.0, plan_pro: float = 0.3) -> dict[str, object]:
    plans = np.where(RNG.random(n) < plan_pro, "pro", "basic").tolist()
    ages = (40 + 10 * (RNG.standard_normal(n) + age_shift)).round(3).tolist()
    ages[:5] = [None] * 5  # missing values are counted, not compared
    income = RNG.lognormal(10, 0.5, n).round(2).tolist()
    return {"age": {"values": ages}, "plan": {"values": plans}, "income": {"values": income}}


def test_reference_then_batches_alert_on_the_shifted_column_only(world: World) -> None:
    ref = world.push("reference", _features(20_000), note="training data of v7")
    assert set(ref["columns"]) == {"age", "plan", "income"}  # type: ignore[arg-type]
    references = world.client.get("/api/v1/quality/references", params={"project": "churn"}).json()
    assert {r["column"]: r["kind"] for r in references} == {
        "age": "numeric",
        "plan": "categorical",
        "income": "numeric",
    }
    assert next(r for r in references if r["column"] == "age")["summary"]["missing"] == 5

    world.clock.advance(timedelta(hours=1))
    calm = world.push("current", _features(5_000))
    stats = calm["columns"]["age"]["statistics"]  # type: ignore[index]
    assert stats["wasserstein"] < 0.1 and stats["psi"] < 0.1 and 0 <= stats["p_value"] <= 1
    assert world.firing("feature-drift") == []

    world.clock.advance(timedelta(hours=1))
    world.push("current", _features(5_000, age_shift=0.4))
    firing = world.firing("feature-drift")
    assert [a["column"] for a in firing] == ["age"], "the push itself triggered the evaluation"
    assert firing[0]["dataset"] == "features" and firing[0]["model"] == "churn-classifier"
    alert = next(a for a in AlertStore(world.runtime.store.engine).list() if a.rule == "feature-drift")
    assert re.fullmatch(r"column age drifted: wasserstein 0\.[34]\d*", alert.annotations["summary"])
    assert world.firing("dataset-drift") == [], "one column of three is below dataset_share"

    series = world.runtime.store.samples.latest_many(
        parse_selector('distribution_drift{column="age",statistic="wasserstein"}')
    )
    assert series[0].points[0].value > 0.3
    comparisons = world.client.get("/api/v1/quality/comparisons", params={"project": "churn", "column": "age"}).json()
    assert len(comparisons) == 2 and comparisons[0]["statistics"]["wasserstein"] > 0.3
    assert comparisons[0]["reference_id"] == ref["columns"]["age"]["reference_id"]  # type: ignore[index]

    world.clock.advance(timedelta(hours=1))
    world.push("current", _features(5_000, age_shift=0.4, plan_pro=0.7))
    assert {a["column"] for a in world.firing("feature-drift")} == {"age", "plan"}
    assert world.firing("dataset-drift") != []

    # A new reference (say, the retrained model's data) replaces the old one for later batches.
    world.push("reference", _features(20_000, age_shift=0.4, plan_pro=0.7))
    world.clock.advance(timedelta(hours=1))
    world.push("current", _features(5_000, age_shift=0.4, plan_pro=0.7))
    assert world.firing("feature-drift") == []
    all_refs = world.client.get(
        "/api/v1/quality/references", params={"project": "churn", "include_inactive": True}
    ).json()
    assert len(all_refs) == 6 and sum(r["active"] for r in all_refs) == 3
    one = world.client.get(f"/api/v1/quality/references/{all_refs[0]['id']}").json()
    assert len(one["profile"]["quantiles"]) == 1000


def test_reference_is_binned_once_and_cached(world: World) -> None:
    world.push("reference", _features(2_000))
    cache = reference_cache(world.runtime.store.engine)
    assert len(cache) == 3, "kept as profiled: the first batch reads nothing back"
    batch = _features(500)
    warm = world.push("current", batch)
    assert len(cache) == 3
    cache.clear()  # another process: the profiles and sorted values come from the database
    cold = world.push("current", batch)
    assert len(cache) == 3, "decoded once"
    assert json.dumps(warm["columns"], sort_keys=True) == json.dumps(cold["columns"], sort_keys=True)


def test_histograms_and_category_counts(world: World) -> None:
    edges = np.linspace(0, 1, 21).tolist()
    ref_counts = np.histogram(RNG.beta(2, 5, 10_000), bins=edges)[0].tolist()
    cur_counts = np.histogram(RNG.beta(5, 2, 10_000), bins=edges)[0].tolist()
    world.push("reference", {"score": {"histogram": {"edges": edges, "counts": ref_counts}},
                             "region": {"categories": {"eu": 600, "us": 400}}}, dataset="predictions")  # fmt: skip
    answer = world.push("current", {"score": {"histogram": {"edges": edges, "counts": cur_counts}},
                                    "region": {"categories": {"eu": 590, "us": 410}}}, dataset="predictions")  # fmt: skip
    columns = answer["columns"]
    assert columns["score"]["statistics"]["wasserstein"] > 1.0  # type: ignore[index]
    assert columns["region"]["statistics"]["jensen_shannon"] < 0.02  # type: ignore[index]
    assert "wasserstein" not in columns["region"]["statistics"]  # type: ignore[index]


def test_p_value_gate_with_correction_keeps_small_batches_quiet(world: World) -> None:
    """On 40-value batches the effect sizes of unshifted columns often pass 0.1 by chance; the
    corrected test stops those, while a large shift still alerts."""
    ref = {f"c{i}": {"values": RNG.standard_normal(5_000).tolist()} for i in range(8)}
    world.push("reference", ref, dataset="small")
    noisy = 0
    for step in range(5):
        world.clock.advance(timedelta(hours=1))
        batch = {f"c{i}": {"values": RNG.standard_normal(40).tolist()} for i in range(8)}
        answer = world.push("current", batch, dataset="small")
        noisy += sum(1 for c in answer["columns"].values() if c["statistics"]["psi"] >= 0.1)  # type: ignore[union-attr]
        assert world.firing("gated-drift") == [], f"batch {step}"
    assert noisy > 0, "the effect sizes alone would have alerted"
    world.clock.advance(timedelta(hours=1))
    batch = {f"c{i}": {"values": (RNG.standard_normal(40) + (1.5 if i == 3 else 0)).tolist()} for i in range(8)}
    world.push("current", batch, dataset="small")
    assert [a["column"] for a in world.firing("gated-drift")] == ["c3"]


def _error(world: World, body: object) -> tuple[int, str]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = world.client.post(
        "/api/v1/quality/distributions", content=raw, headers={"content-type": "application/json"}
    )
    return response.status_code, response.text


def test_bad_pushes_are_refused_naming_the_column(world: World) -> None:
    base = {"project": "churn", "dataset": "features", "role": "reference"}
    assert _error(world, b"{not json")[0] == 422
    status, text = _error(world, {**base, "project": "nope", "columns": {"a": {"values": [1]}}})
    assert status == 422 and "unknown project 'nope'" in text
    status, text = _error(world, {**base, "columns": {"age": {"values": [1, "x", 3]}}})
    assert status == 422 and "columns.age" in text and "mix numbers (values[0]) and strings (values[1])" in text
    status, text = _error(
        world, b'{"project":"churn","dataset":"f","role":"reference","columns":{"age":{"values":[1, NaN]}}}'
    )
    assert status == 422 and "values[1] is nan" in text
    status, text = _error(world, {**base, "columns": {"s": {"histogram": {"edges": [0, 2, 1], "counts": [1, 1]}}}})
    assert status == 422 and "columns.s" in text and "strictly increasing" in text
    status, text = _error(world, {**base, "columns": {"s": {"values": [1], "categories": {"a": 1}}}})
    assert status == 422 and "exactly one of values, histogram or categories" in text
    status, text = _error(world, {**base, "labels": {"column": "x"}, "columns": {"s": {"values": [1]}}})
    assert status == 422 and "set by mlmon" in text
    status, text = _error(world, {**base, "columns": {"s": {"values": list(range(50_001))}}})
    assert status == 422 and "50001 values; the limit is 50000" in text
    status, text = _error(world, {**base, "role": "current", "columns": {"age": {"values": [1.0, 2.0]}}})
    assert status == 422 and "no reference for column 'age'" in text
    world.push("reference", {"age": {"values": [1.0, 2.0, 3.0]}})
    status, text = _error(
        world, {**base, "labels": LABELS, "role": "current", "columns": {"age": {"values": ["a", "b"]}}}
    )
    assert status == 422 and "the reference is numeric but values[0] is 'a'; expected a number" in text
    assert world.client.get("/api/v1/quality/comparisons", params={"project": "churn"}).json() == []


def test_metrics_export_passes_promtool(world: World) -> None:
    promtool = require_binary("promtool", "install the Debian package prometheus (apt-get install prometheus)")
    world.push("reference", _features(2_000))
    world.push("current", _features(1_000, age_shift=0.5))
    text = world.client.get("/metrics").text
    assert (
        'mlmon_quality_reference_examples{column="age",dataset="features",model="churn-classifier",project="churn"} 1995.0'
        in text
    )
    assert re.search(
        r'mlmon_distribution_drift\{column="age",dataset="features",model="churn-classifier",project="churn",statistic="wasserstein"\} 0\.',
        text,
    )
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stderr


def test_comparisons_older_than_the_hourly_retention_are_pruned(world: World) -> None:
    world.push("reference", _features(2_000))
    world.push("current", _features(500))
    world.clock.advance(timedelta(days=401))  # retention.hourly defaults to 400d
    world.push("current", _features(500))
    comparisons = world.client.get("/api/v1/quality/comparisons", params={"project": "churn"}).json()
    assert {c["timestamp"][:10] for c in comparisons} == {"2027-12-26"} and len(comparisons) == 3
