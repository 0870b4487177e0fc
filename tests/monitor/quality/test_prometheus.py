"""The `prometheus` source: recorded Prometheus 2.42 answers from a local server, then a real
Prometheus (Debian package) scraping a local exposition endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.core.clock import FrozenClock
from tests.conftest import RuntimeFactory
from tests.monitor.quality.recorded import RECORDED_AT, Collecting, recorded
from tests.support.http_server import Answer, LocalHttpServer
from tests.support.peers import shared_data
from tests.support.prometheus import run_prometheus


def _config(url: str, queries: str) -> str:
    return f"""
projects:
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - name: prom
        kind: prometheus
        timeout: 10s
        params:
          url: {url}
          queries:
{queries}
"""


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as srv:
        yield srv


def _world(make_runtime: RuntimeFactory, server: LocalHttpServer, queries: str) -> Collecting:
    clock = FrozenClock(RECORDED_AT)
    return Collecting(make_runtime(_config(server.url(), queries), clock=clock), clock)


VECTOR = "            - {query: mlops_model_accuracy, metric: accuracy}\n"


def test_vector_labels_are_mapped(make_runtime: RuntimeFactory, server: LocalHttpServer) -> None:
    server.route("/api/v1/query", Answer(recorded("prometheus", "query_vector.json")))
    world = _world(make_runtime, server, VECTOR + "            - {query: mlops_model_accuracy, metric: model_accuracy, "
                   "label_map: {name: model, source_project: project}, labels: {env: prod}}\n")  # fmt: skip
    record = world.run("prom")
    assert record.ok, record.error
    # Default: every result label but __name__ and the reserved ones (job, instance, project).
    assert world.latest("accuracy") == {
        (("model", "churn"),): [(1795650182000, 0.931)],
        (("model", "resnet"),): [(1795650182000, 0.874)],
    }
    assert set(world.latest("model_accuracy")) == {
        (("env", "prod"), ("name", "churn"), ("source_project", "demo")),
        (("env", "prod"), ("name", "resnet"), ("source_project", "vision")),
    }
    seen = server.requests("/api/v1/query")[0]
    assert seen.method == "POST" and b"query=mlops_model_accuracy" in seen.body and b"time=1795651200.000" in seen.body


def test_scalar_and_matrix(make_runtime: RuntimeFactory, server: LocalHttpServer) -> None:
    server.route("/api/v1/query", Answer(recorded("prometheus", "query_scalar.json")))
    server.route("/api/v1/query_range", Answer(recorded("prometheus", "query_range.json")))
    world = _world(make_runtime, server, "            - {query: 'scalar(sum(mlops_gpu_spend_usd_total))', metric: spend_usd}\n"
                   "            - {query: 'mlops_gpu_spend_usd_total', metric: spend_series_usd, range: 6s, step: 2s}\n")  # fmt: skip
    record = world.run("prom")
    assert record.ok, record.error
    assert list(world.latest("spend_usd").values()) == [[(1795650183250, 1332.75)]]
    (points,) = world.latest("spend_series_usd").values()
    assert [v for _, v in points] == [1234.5] * 4 and points[0][0] == 1795650176000
    seen = server.requests("/api/v1/query_range")[0]
    assert b"step=2" in seen.body and b"start=1795651194.000" in seen.body


@pytest.mark.parametrize(
    ("route", "answer", "expected"),
    [
        ("/api/v1/query", Answer(recorded("prometheus", "err_bad_data.json"), status=400),
         "Prometheus bad_data: invalid parameter \"query\": 1:6: parse error: unclosed left parenthesis"),
        ("/api/v1/query", Answer(shared_data("recorded", "prometheus", "err_execution_422.txt").read_text().splitlines()[0],
                                 status=422, headers={"Content-Type": "application/json"}),
         "Prometheus execution: found duplicate series for the match group {}"),
        ("/api/v1/query", Answer(recorded("prometheus", "query_empty.json")), "query 'mlops_model_accuracy' returned no series"),
        ("/api/v1/query", Answer(recorded("prometheus", "query_string.json")), "returned a string"),
        ("/api/v1/query", Answer("404 page not found", status=404), "(is url the Prometheus server's base URL?)"),
        ("/api/v1/query", Answer({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"model": "churn"}, "value": [1795650200.262, "NaN"]}]}}), 'series {model="churn"}: value is NaN'),
        ("/api/v1/query", Answer({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"model": "churn"}, "value": [1795650200.262, "+Inf"]}]}}), "value is +Inf, not a finite number"),
        ("/api/v1/query", Answer({"status": "error", "errorType": "timeout", "error": "query timed out"}, status=503),
         "Prometheus timeout: query timed out"),
    ],
)  # fmt: skip
def test_prometheus_errors_fail_the_source(
    make_runtime: RuntimeFactory, server: LocalHttpServer, route: str, answer: Answer, expected: str
) -> None:
    server.route(route, answer)
    world = _world(make_runtime, server, VECTOR)
    record = world.run("prom")
    assert record.outcome == "failed" and expected in (record.error or ""), record.error
    assert world.runtime.store.samples.find_series(project="churn") == []


def test_label_map_collisions_and_missing_labels(make_runtime: RuntimeFactory, server: LocalHttpServer) -> None:
    server.route("/api/v1/query", Answer(recorded("prometheus", "query_vector.json")))
    world = _world(
        make_runtime,
        server,
        "            - {query: mlops_model_accuracy, metric: accuracy, label_map: {scraped_by: job}}\n",
    )
    assert 'both become {scraped_by="static_text"}' in (world.run("prom").error or "")
    world = _world(
        make_runtime, server, "            - {query: mlops_model_accuracy, metric: accuracy, label_map: {team: team}}\n"
    )
    assert "result label 'team' (for 'team') is missing" in (world.run("prom").error or "")


def test_against_a_real_prometheus(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    with LocalHttpServer() as exporter:
        exporter.route("/metrics", Answer(shared_data("recorded", "prometheus", "good.prom").read_text(),
                                          headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}))  # fmt: skip
        with run_prometheus(tmp_path, [f"127.0.0.1:{exporter.port}"]) as prom:
            prom.wait_for('mlops_model_accuracy{project="demo"}')
            prom.wait_for('count_over_time(mlops_model_accuracy{project="demo"}[10s]) >= 3', timeout=30)
            clock = FrozenClock(datetime.now(UTC))
            queries = (
                "            - {query: 'mlops_model_accuracy{project=\"demo\"}', metric: accuracy, label_map: {model: model}}\n"
                "            - {query: 'sum by (project) (mlops_gpu_spend_usd_total)', metric: spend_usd, label_map: {team: project}}\n"
                "            - {query: 'mlops_model_accuracy{project=\"demo\"}', metric: accuracy_recent, range: 4s, step: 1s}\n"
            )
            world = Collecting(make_runtime(_config(prom.url, queries), clock=clock), clock)
            record = world.run("prom")
            assert record.ok, record.error
            assert [v for _, v in world.latest("accuracy")[(("model", "churn"),)]] == [0.931]
            assert {dict(k)["team"]: v[0][1] for k, v in world.latest("spend_usd").items()} == {
                "demo": 1234.5,
                "vision": 98.25,
            }
            (recent,) = world.latest("accuracy_recent").values()
            assert len(recent) >= 3 and {v for _, v in recent} == {0.931}

            bad = {
                "syntax": ("'sum(mlops_model_accuracy'", "Prometheus bad_data:"),
                "execution": ("'mlops_gpu_spend_usd_total + on() mlops_gpu_spend_usd_total'", "Prometheus execution:"),
                "empty": ("'mlops_model_accuracy{project=\"nope\"}'", "returned no series"),
                "nan": ("'vector(0) / 0'", "value is NaN"),
                "inf": ("'vector(1) / 0'", "value is +Inf"),
            }
            for name, (query, message) in bad.items():
                world = Collecting(
                    make_runtime(
                        _config(prom.url, f"            - {{query: {query}, metric: x_{name}}}\n"), clock=clock
                    ),
                    clock,
                )
                record = world.run("prom")
                assert record.outcome == "failed" and message in (record.error or ""), (name, record.error)
