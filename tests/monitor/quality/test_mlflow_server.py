"""The `mlflow` source against a real MLflow tracking server (`mlflow server`, SQLite backend),
seeded through the MLflow client: a model version change is recorded as an event and named as the
likely cause of the quality alert that follows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from alerts.engine import AlertEngine
from alerts.kinds import REGISTRY
from alerts.model import AlertState
from alerts.store import AlertStore
from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from tests.conftest import RuntimeFactory
from tests.monitor.quality.conftest import MlflowServer
from tests.monitor.quality.recorded import Collecting

pytestmark = [pytest.mark.peer, pytest.mark.slow]


@dataclass
class Seeded:
    model: str
    experiment: str
    experiment_id: str
    runs: list[dict[str, str]]


def _seed(server: MlflowServer, day_ms: int) -> Seeded:
    suffix = uuid.uuid4().hex[:6]
    model, experiment = f"churn-{suffix}", f"churn-eval-{suffix}"
    (experiment_id,) = server.seed([{"op": "experiment", "name": experiment}])
    runs = server.seed(
        [
            {"op": "run", "experiment_id": experiment_id, "name": "train-0", "tags": {"kind": "eval", "model_name": model},
             "metrics": {"eval_accuracy": 0.93, "eval_examples": 20000, "loss": [0.9, 0.5, 0.3]}, "timestamp_ms": day_ms},
            {"op": "run", "experiment_id": experiment_id, "name": "train-1", "tags": {"kind": "eval", "model_name": model},
             "logged_model": True, "model_metrics": {"eval_accuracy": 0.86, "eval_examples": 20000}, "timestamp_ms": day_ms + 3_600_000},
            {"op": "run", "experiment_id": experiment_id, "name": "train-2", "tags": {"kind": "eval", "model_name": model},
             "metrics": {"eval_accuracy": 0.91, "eval_examples": 5000}, "timestamp_ms": day_ms + 7_200_000},
        ]
    )  # fmt: skip
    server.seed(
        [
            {"op": "register", "name": model, "run_id": runs[0]["run_id"]},
            {"op": "register", "name": model, "run_id": runs[1]["run_id"], "model_id": runs[1]["model_id"]},
            {"op": "alias", "name": model, "alias": "production", "version": "1"},
        ]
    )
    return Seeded(model, experiment, experiment_id, runs)


def _config(url: str, seeded: Seeded) -> str:
    return f"""
projects:
  - id: churn
    name: Churn classifier
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - name: registry
        kind: mlflow
        timeout: 30s
        params:
          url: {url}
          models:
            - name: {seeded.model}
              alias: production
              metrics: [{{key: eval_accuracy, metric: accuracy, examples_key: eval_examples}}]
      - name: nightly
        kind: mlflow
        timeout: 30s
        params:
          url: {url}
          searches:
            - experiment: {seeded.experiment}
              filter: "tags.kind = 'eval' and attributes.status = 'FINISHED'"
              order_by: ["attributes.start_time DESC"]
              max_results: 3
              page_size: 1
              metrics: [{{key: eval_accuracy, metric: nightly_accuracy}}]
              label_tags: {{model: model_name}}
      - name: unknown-alias
        kind: mlflow
        params: {{url: {url}, models: [{{name: {seeded.model}, alias: nope}}]}}
      - name: unknown-model
        kind: mlflow
        params: {{url: {url}, models: [{{name: no-such-model}}]}}
      - name: unknown-experiment
        kind: mlflow
        params: {{url: {url}, searches: [{{experiment: no-such-experiment, metrics: [{{key: eval_accuracy}}]}}]}}
      - name: empty-search
        kind: mlflow
        params: {{url: {url}, searches: [{{experiment_id: "{seeded.experiment_id}", filter: "tags.kind = 'nothing'", metrics: [{{key: eval_accuracy}}]}}]}}
      - name: bad-filter
        kind: mlflow
        params: {{url: {url}, searches: [{{experiment_id: "{seeded.experiment_id}", filter: "metrics.eval_accuracy >>> 1", metrics: [{{key: eval_accuracy}}]}}]}}
rules:
  - name: accuracy-drop
    kind: drop
    for: 0s
    labels: {{severity: critical}}
    params: {{metric: accuracy, baseline: 0.92, min_drop: 0.02, examples_metric: accuracy_examples}}
"""


def test_version_change_is_the_likely_cause_of_the_drop(
    mlflow_server: MlflowServer, make_runtime: RuntimeFactory
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seeded = _seed(mlflow_server, int((now - timedelta(days=1)).timestamp() * 1000))
    clock = FrozenClock(now)
    runtime = make_runtime(_config(mlflow_server.url, seeded), clock=clock)
    world = Collecting(runtime, clock)
    engine = AlertEngine(runtime.store, clock, REGISTRY, lambda: runtime.config)

    record = world.run("registry")
    assert record.ok, record.error
    labels = (("alias", "production"), ("model", seeded.model))
    assert world.latest("accuracy")[labels][-1][1] == 0.93
    assert world.latest("model_version")[labels][-1][1] == 1.0
    engine.evaluate()
    assert AlertStore(runtime.store.engine).list() == []

    mlflow_server.seed([{"op": "alias", "name": seeded.model, "alias": "production", "version": "2"}])
    clock.advance(timedelta(minutes=5))
    record = world.run("registry")
    assert record.ok, record.error
    assert world.latest("accuracy")[labels][-1][1] == 0.86, "read from the MLflow 3 logged model's run"
    assert world.latest("accuracy_examples")[labels][-1][1] == 20000
    (event,) = runtime.store.events.events(project="churn")
    assert event.describe() == f"model {seeded.model} version 1 -> 2 (alias production)"

    engine.evaluate()
    (alert,) = AlertStore(runtime.store.engine).list()
    assert alert.state is AlertState.FIRING
    cause = f"model {seeded.model} version 1 -> 2 (alias production) (model_version, "
    assert alert.annotations["likely_cause"].startswith(cause)
    with TestClient(create_app(runtime)) as client:
        (shown,) = client.get("/api/v1/alerts").json()
        assert shown["likely_cause"].startswith(cause)
        (pace,) = client.get("/api/v1/quality/models", params={"project": "churn"}).json()
        assert pace["version"] == 2.0 and pace["promotions"] == 2.0 and pace["events"][0]["new"] == "2"
        assert pace["history"]["current"]["how"] == "observed"


def test_search_paging_and_bad_input(mlflow_server: MlflowServer, make_runtime: RuntimeFactory) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seeded = _seed(mlflow_server, int((now - timedelta(days=1)).timestamp() * 1000))
    clock = FrozenClock(now)
    runtime = make_runtime(_config(mlflow_server.url, seeded), clock=clock)
    world = Collecting(runtime, clock)

    record = world.run("nightly")
    assert record.ok, record.error
    (points,) = world.latest("nightly_accuracy").values()
    assert sorted(v for _, v in points) == [0.86, 0.91, 0.93], "three runs, one page each"

    expected = {
        "unknown-alias": "MLflow INVALID_PARAMETER_VALUE: Registered model alias nope not found.",
        "unknown-model": "MLflow RESOURCE_DOES_NOT_EXIST: Registered Model with name=no-such-model not found",
        "unknown-experiment": "MLflow RESOURCE_DOES_NOT_EXIST: Could not find experiment with name 'no-such-experiment'",
        "empty-search": f"run search in experiment id {seeded.experiment_id} matched no runs",
        "bad-filter": "MLflow INVALID_PARAMETER_VALUE:",
    }
    for source, message in expected.items():
        record = world.run(source)
        assert record.outcome == "failed" and message in (record.error or ""), (source, record.error)


def test_nan_metric_and_stage_pace(mlflow_server: MlflowServer, make_runtime: RuntimeFactory) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seeded = _seed(mlflow_server, int((now - timedelta(days=1)).timestamp() * 1000))
    (bad,) = mlflow_server.seed([{"op": "run", "experiment_id": seeded.experiment_id, "name": "broken",
                                   "metrics": {"eval_accuracy": float("nan")}}])  # fmt: skip
    mlflow_server.seed(
        [
            {"op": "register", "name": seeded.model, "run_id": bad["run_id"]},
            {"op": "alias", "name": seeded.model, "alias": "canary", "version": "3"},
            {"op": "stage", "name": seeded.model, "version": "2", "stage": "Production"},
        ]
    )
    config = f"""
projects:
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - name: canary
        kind: mlflow
        params: {{url: {mlflow_server.url}, models: [{{name: {seeded.model}, alias: canary, metrics: [{{key: eval_accuracy}}]}}]}}
      - name: staged
        kind: mlflow
        params: {{url: {mlflow_server.url}, models: [{{name: {seeded.model}, stage: Production}}]}}
"""
    clock = FrozenClock(now + timedelta(minutes=1))
    world = Collecting(make_runtime(config, clock=clock), clock)
    record = world.run("canary")
    assert record.outcome == "failed" and "eval_accuracy" in (record.error or "") and "NaN" in (record.error or "")
    record = world.run("staged")
    assert record.ok, record.error
    labels = (("model", seeded.model), ("stage", "Production"))
    assert world.latest("model_version")[labels][-1][1] == 2.0
    age = world.latest("model_promotion_age_seconds")[labels][-1][1]
    assert 0 <= age < 600, "a stage transition updates the version: its time is the promotion time"


def _rollback_config(url: str, seeded: Seeded) -> str:
    return f"""
projects:
  - id: churn
    name: Churn classifier
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - name: registry
        kind: mlflow
        timeout: 30s
        params:
          url: {url}
          models:
            - name: {seeded.model}
              alias: production
              promoted_at_tag: promoted_at
              metrics: [{{key: eval_accuracy, metric: accuracy, examples_key: eval_examples}}]
      - name: baselines
        kind: baseline
        params:
          baselines:
            - {{metric: accuracy, version: "1", name: accuracy_v1, join_on: [model, alias], search: 30d}}
            - {{metric: accuracy, version: "2", name: accuracy_v2, join_on: [model, alias], search: 30d}}
      - name: never-served
        kind: baseline
        params:
          baselines:
            - {{metric: accuracy, version: "9", join_on: [model, alias], search: 30d}}
"""


def test_rollback_stale_tag_and_version_baselines(mlflow_server: MlflowServer, make_runtime: RuntimeFactory) -> None:
    """v1 -> v2 -> v1 with v1 still tagged with its first promotion (10 days ago): the series shows
    v1's value again at the rollback, the move is timed by the poll (not 10 days back), and the
    baselines of versions 1 and 2 each find their own values."""
    now = datetime.now(UTC).replace(microsecond=0)
    day_ms = int((now - timedelta(days=1)).timestamp() * 1000)
    seeded = _seed(mlflow_server, day_ms)
    ten_days_ago = (now - timedelta(days=10)).isoformat().replace("+00:00", "Z")
    mlflow_server.seed(
        [{"op": "version_tag", "name": seeded.model, "version": "1", "key": "promoted_at", "value": ten_days_ago}]
    )
    clock = FrozenClock(now)
    runtime = make_runtime(_rollback_config(mlflow_server.url, seeded), clock=clock)
    world = Collecting(runtime, clock)
    labels = (("alias", "production"), ("model", seeded.model))

    assert world.run("registry").ok
    mlflow_server.seed([{"op": "alias", "name": seeded.model, "alias": "production", "version": "2"}])
    clock.advance(timedelta(minutes=5))
    assert world.run("registry").ok
    assert world.latest("accuracy")[labels][-1] == (int(clock.now().timestamp() * 1000), 0.86)

    mlflow_server.seed([{"op": "alias", "name": seeded.model, "alias": "production", "version": "1"}])
    clock.advance(timedelta(minutes=5))
    rolled_back_ms = int(clock.now().timestamp() * 1000)
    record = world.run("registry")
    assert record.ok, record.error
    assert world.latest("accuracy")[labels][-1] == (rolled_back_ms, 0.93), "the serving model's value at once"
    assert world.latest("accuracy_examples")[labels][-1] == (rolled_back_ms, 20000)
    rollback = next(e for e in runtime.store.events.events(project="churn") if e.old == "2")
    assert rollback.new == "1"
    assert rollback.ts_ms == rolled_back_ms, "not dated 10 days back by the stale tag"
    assert "its promoted_at tag predates the previous poll" in rollback.describe()
    with TestClient(create_app(runtime)) as client:
        (pace,) = client.get("/api/v1/quality/models", params={"project": "churn"}).json()
        assert pace["history"]["current"]["how"] == "observed_stale_tag"
        assert pace["promotion_age_seconds"] == 0

    record = world.run("baselines")
    assert record.ok, record.error
    assert world.latest("accuracy_v2")[labels][-1][1] == 0.86, "version 2's own value"
    assert world.latest("accuracy_v1")[labels][-1][1] == 0.93, "version 1's, before and after the rollback"
    record = world.run("never-served")
    assert not record.ok and record.error is not None
    assert "no point taken while model_version was 9 (searched the last 4w2d)" in record.error
    assert "0:00:00" not in record.error
