"""The `mlflow` source against MLflow 3.17.2's recorded answers, served by a local HTTP server:
aliases and stages, MLflow 3 logged models, paging, pace and version events, auth, and every bad
input failing the source with MLflow's own message."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from monitor.core.clock import FrozenClock
from monitor.core.types import ms_from_datetime
from tests.conftest import RuntimeFactory
from tests.monitor.quality.recorded import RECORDED_AT, Collecting, in_order, recorded
from tests.support.http_server import Answer, LocalHttpServer, require_auth

API = "/api/2.0/mlflow"
RUN_1 = "647da4e8103e452e869826f97cc83432"


def _config(url: str, params: str) -> str:
    return f"""
projects:
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - name: registry
        kind: mlflow
        timeout: 10s
        params:
          url: {url}
{params}
"""


MODEL_PARAMS = """          models:
            - name: churn-classifier
              alias: production
              metrics:
                - {key: eval_accuracy, metric: accuracy}
                - {key: accuracy, metric: train_accuracy, history: true}
"""


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as srv:
        srv.route(f"{API}/registered-models/alias", Answer(recorded("mlflow", "registered_models_alias.json")))
        srv.route(f"{API}/runs/get", Answer(recorded("mlflow", "runs_get.json")))
        srv.route(f"{API}/metrics/get-history", Answer(recorded("mlflow", "metrics_get_history.json")))
        srv.route(
            f"{API}/logged-models/m-6cb2f594de024a86b8b2806392cfb93b",
            Answer(recorded("mlflow", "logged_models_get.json")),
        )
        yield srv


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(RECORDED_AT)


def _collecting(make_runtime: RuntimeFactory, server: LocalHttpServer, clock: FrozenClock, params: str = MODEL_PARAMS,
                **env: str) -> Collecting:  # fmt: skip
    runtime = make_runtime(_config(server.url(), params), clock=clock)
    return Collecting(runtime, clock, env)


def _version(number: str) -> dict[str, Any]:
    """The alias answer for another version, built from the recorded model-versions search."""
    found = next(
        v for v in recorded("mlflow", "model_versions_search.json")["model_versions"] if v["version"] == number
    )
    return {"model_version": {**found, "aliases": ["production"]}}


def test_alias_metrics_history_and_pace(
    make_runtime: RuntimeFactory, server: LocalHttpServer, clock: FrozenClock
) -> None:
    world = _collecting(make_runtime, server, clock)
    record = world.run("registry")
    assert record.ok, record.error
    labels = (("alias", "production"), ("model", "churn-classifier"))
    assert world.latest("accuracy") == {labels: [(1795650271804, 0.92)]}
    assert world.latest("train_accuracy")[labels] == [
        (1795650265214, 0.84),
        (1795650265282, 0.89),
        (1795650265353, 0.93),
    ]
    now_ms = ms_from_datetime(RECORDED_AT)
    # At the promotion too (here the first sight's estimate), so version baselines line up.
    assert world.latest("model_version") == {labels: [(1795650271546, 2.0), (now_ms, 2.0)]}
    # First sight: the version's last update (1795650271546) is the best evidence of the promotion.
    assert world.latest("model_promotion_age_seconds")[labels] == [
        (now_ms, pytest.approx((now_ms - 1795650271546) / 1000))
    ]
    assert world.latest("model_promotion_lead_time_seconds")[labels] == [
        (now_ms, pytest.approx((1795650271546 - 1795650265040) / 1000))
    ]
    assert list(world.latest("model_promotions")) == [(*labels, ("window", "30d"))]
    assert world.runtime.store.events.events(project="churn") == [], "first sight is not a change"

    # The history is read again on the next poll, but only newer points are written.
    clock.advance(timedelta(minutes=5))
    assert world.run("registry").samples == 5  # accuracy, version, age, promotions, lead time


def test_alias_move_records_an_event_and_times_the_promotion(
    make_runtime: RuntimeFactory, server: LocalHttpServer, clock: FrozenClock
) -> None:
    server.route(f"{API}/registered-models/alias", Answer(_version("1")))
    world = _collecting(make_runtime, server, clock, "          models: [{name: churn-classifier}]\n")
    assert world.run("registry").ok
    clock.advance(timedelta(hours=2))
    server.route(f"{API}/registered-models/alias", Answer(recorded("mlflow", "registered_models_alias.json")))
    assert world.run("registry").ok
    (event,) = world.runtime.store.events.events(project="churn")
    assert event.describe() == "model churn-classifier version 1 -> 2 (alias production)"
    assert (event.kind, event.old, event.new, event.source) == ("model_version", "1", "2", "registry")
    # v2's last update is older than the previous poll: the move is timed by the poll that saw it.
    assert event.ts_ms == ms_from_datetime(clock.now()) and event.labels["how"] == "observed"
    labels = (("alias", "production"), ("model", "churn-classifier"))
    assert world.latest("model_promotion_age_seconds")[labels][-1][1] == 0.0
    assert world.latest("model_promotions")[(*labels, ("window", "30d"))][-1][1] == 2.0
    pace = world.runtime.store.sources.status("churn", "registry")
    assert pace is not None and pace.checkpoint is not None
    assert [p["version"] for p in pace.checkpoint["aliases"]["churn-classifier|alias|production"]["recent"]] == [
        "1",
        "2",
    ]


def test_stage_and_logged_model_fallback(
    make_runtime: RuntimeFactory, server: LocalHttpServer, clock: FrozenClock
) -> None:
    server.route(
        f"{API}/registered-models/get-latest-versions",
        Answer(recorded("mlflow", "get_latest_versions_production.json")),
    )
    run = recorded("mlflow", "runs_get.json")
    run["run"]["data"]["metrics"] = [m for m in run["run"]["data"]["metrics"] if m["key"] != "eval_accuracy"]
    server.route(f"{API}/runs/get", Answer(run))
    params = """          models:
            - name: churn-classifier
              stage: Production
              pace: false
              metrics: [{key: eval_accuracy, metric: accuracy}]
"""
    world = _collecting(make_runtime, server, clock, params)
    record = world.run("registry")
    assert record.ok, record.error
    # Stamped no earlier than the version became the served one (its last update, 1795650297291,
    # on first sight): the value is the served version's from then on.
    assert world.latest("accuracy") == {
        (("model", "churn-classifier"), ("stage", "Production")): [(1795650297291, 0.92)]
    }
    (seen,) = server.requests(f"{API}/registered-models/get-latest-versions")
    assert seen.method == "POST" and b'"stages":["Production"]' in seen.body


def test_run_search_pages_and_tags(make_runtime: RuntimeFactory, server: LocalHttpServer, clock: FrozenClock) -> None:
    server.route(f"{API}/experiments/get-by-name", Answer(recorded("mlflow", "experiments_get_by_name.json")))
    server.route(
        f"{API}/runs/search",
        in_order(
            Answer(recorded("mlflow", "runs_search_best.json")), Answer(recorded("mlflow", "runs_search_page2.json"))
        ),
    )
    params = """          searches:
            - experiment: churn
              filter: "metrics.accuracy > 0.8 and tags.project = 'demo'"
              order_by: ["metrics.accuracy DESC"]
              max_results: 5
              metrics: [{key: accuracy}]
              label_tags: {run: mlflow.runName}
"""
    world = _collecting(make_runtime, server, clock, params)
    record = world.run("registry")
    assert record.ok, record.error
    assert {dict(k)["run"]: v[-1][1] for k, v in world.latest("accuracy").items()} == {"train-1": 0.93, "train-0": 0.88}
    first, second = server.requests(f"{API}/runs/search")
    assert b'"experiment_ids":["1"]' in first.body and b"page_token" not in first.body
    assert b'"page_token":"eyJvZmZzZXQiOiAxfQ=="' in second.body


@pytest.mark.parametrize(
    ("route", "answer", "expected"),
    [
        ("registered-models/alias", Answer(recorded("mlflow", "err_alias_missing.json"), status=400),
         "MLflow INVALID_PARAMETER_VALUE: Registered model alias nope not found."),
        ("registered-models/alias", Answer(recorded("mlflow", "err_404_model.json"), status=404),
         "MLflow RESOURCE_DOES_NOT_EXIST: Registered Model with name=nope not found"),
        ("runs/get", Answer(recorded("mlflow", "err_run_404.json"), status=404),
         "MLflow RESOURCE_DOES_NOT_EXIST: Run with id=00000000000000000000000000000000 not found"),
        ("registered-models/alias", Answer("<html><body>Not Found</body></html>", status=404),
         "not an MLflow answer; is url the tracking server's base URL?"),
        ("registered-models/alias", Answer("Unauthorized", status=401, headers={"WWW-Authenticate": 'Basic realm="mlflow"'}),
         "MLflow refused the request"),
        ("registered-models/alias", Answer({"error_code": "INTERNAL_ERROR", "message": "db locked"}, status=503),
         "MLflow INTERNAL_ERROR: db locked"),
    ],
)  # fmt: skip
def test_mlflow_errors_fail_the_source_with_mlflows_message(
    make_runtime: RuntimeFactory, server: LocalHttpServer, clock: FrozenClock, route: str, answer: Answer, expected: str
) -> None:
    server.route(f"{API}/{route}", answer)
    world = _collecting(make_runtime, server, clock)
    record = world.run("registry")
    assert record.outcome == "failed" and expected in (record.error or ""), record.error
    assert world.runtime.store.samples.find_series(project="churn") == [], "a failed run stores nothing"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("NaN", "value is NaN"), (1.7976931348623157e308, "+infinity"), (-1.7976931348623157e308, "-infinity")],
)
def test_nan_and_infinite_metrics_are_refused(
    make_runtime: RuntimeFactory, server: LocalHttpServer, clock: FrozenClock, value: object, expected: str
) -> None:
    run = recorded("mlflow", "runs_get.json")
    run["run"]["data"]["metrics"][1]["value"] = value  # eval_accuracy, as MLflow sends NaN / +-inf
    server.route(f"{API}/runs/get", Answer(run))
    world = _collecting(make_runtime, server, clock)
    record = world.run("registry")
    assert record.outcome == "failed" and expected in (record.error or "") and "eval_accuracy" in (record.error or "")


def test_missing_key_empty_search_and_bad_filter(
    make_runtime: RuntimeFactory, server: LocalHttpServer, clock: FrozenClock
) -> None:
    params = MODEL_PARAMS + "                - {key: recall}\n"
    world = _collecting(make_runtime, server, clock, params)
    record = world.run("registry")
    assert "metric key 'recall' not found in run 647da4e8103e452e869826f97cc83432" in (record.error or "")
    assert "or its logged model m-6cb2f594de024a86b8b2806392cfb93b" in (record.error or "")

    search = """          searches: [{experiment_id: "1", filter: "tags.x = 'y'", metrics: [{key: accuracy}]}]\n"""
    server.route(f"{API}/runs/search", Answer(recorded("mlflow", "runs_search_empty.json")))
    world = _collecting(make_runtime, server, clock, search)
    assert world.run("registry").error == "run search in experiment id 1 matched no runs (filter \"tags.x = 'y'\")"
    server.route(f"{API}/runs/search", Answer(recorded("mlflow", "err_bad_filter.json"), status=400))
    assert "MLflow INVALID_PARAMETER_VALUE: Invalid comparator '>>>'" in (world.run("registry").error or "")


def test_basic_auth_from_the_mlflow_environment_variables(
    make_runtime: RuntimeFactory, server: LocalHttpServer, clock: FrozenClock
) -> None:
    token = base64.b64encode(b"monitor:s3cret").decode()
    server.route(
        f"{API}/registered-models/alias",
        require_auth({"Authorization": f"Basic {token}"}, Answer(recorded("mlflow", "registered_models_alias.json"))),
    )
    params = "          models: [{name: churn-classifier, pace: false, metrics: [{key: eval_accuracy}]}]\n"
    world = _collecting(make_runtime, server, clock, params)
    assert world.run("registry").outcome == "failed"
    world.env = {"MLFLOW_TRACKING_USERNAME": "monitor", "MLFLOW_TRACKING_PASSWORD": "s3cret"}
    record = world.run("registry")
    assert record.ok, record.error


def test_params_are_checked(make_runtime: RuntimeFactory) -> None:
    from monitor.core.errors import ConfigError

    bad = _config("http://127.0.0.1:9", "          models: [{name: m, metrics: [{key: val/acc}]}]\n")
    with pytest.raises(ConfigError, match="MLflow key 'val/acc' cannot be an mlmon metric name"):
        make_runtime(bad)
    with pytest.raises(ConfigError, match="give alias or stage, not both"):
        make_runtime(_config("http://127.0.0.1:9", "          models: [{name: m, alias: a, stage: Production}]\n"))
