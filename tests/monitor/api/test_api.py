"""The HTTP API through FastAPI's test client, on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.core.types import ms_from_datetime
from monitor.runtime import Runtime
from tests.conftest import BASIC_CONFIG, T0, RuntimeFactory, token_headers

NOW_S = T0.timestamp()


@pytest.fixture
def runtime(make_runtime: RuntimeFactory, db_url: str, clock: FrozenClock) -> Runtime:
    return make_runtime(BASIC_CONFIG, database_url=db_url, clock=clock)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as test_client:
        yield test_client


def _sample(value: float, ts: float, **labels: str) -> dict[str, object]:
    return {
        "project": "churn",
        "metric": "accuracy",
        "labels": labels or {"model": "v7"},
        "timestamp": ts,
        "value": value,
    }


def test_push_then_query(client: TestClient) -> None:
    samples = [_sample(0.90 + i / 1000, NOW_S - 3600 + i * 60) for i in range(60)]
    response = client.post("/api/v1/samples", json={"samples": samples})
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 60}
    series = client.get("/api/v1/series", params={"match": 'accuracy{project="churn"}'}).json()
    assert series[0]["labels"] == {"model": "v7"} and series[0]["latest"]["value"] == pytest.approx(0.959)
    ranged = client.get(
        "/api/v1/query_range",
        params={"query": "accuracy", "start": NOW_S - 3600, "end": NOW_S - 1, "step": "30m", "agg": "max"},
    ).json()
    values = ranged["series"][0]["values"]
    assert [v[0] for v in values] == [NOW_S - 3600, NOW_S - 1800]
    assert [v[1] for v in values] == pytest.approx([0.929, 0.959])
    rfc = client.get(
        "/api/v1/query_range",
        params={
            "query": "accuracy",
            "start": "2026-11-20T11:00:00Z",
            "end": "2026-11-20T12:00:00Z",
            "step": 3600,
        },
    )
    assert rfc.status_code == 200 and rfc.json()["step_seconds"] == 3600


def test_rejected_batch_writes_nothing(client: TestClient, runtime: Runtime) -> None:
    bad = [_sample(0.9, NOW_S), _sample(0.9, NOW_S + 7200), {**_sample(0.9, NOW_S), "project": "nope"}]
    response = client.post("/api/v1/samples", json={"samples": bad})
    assert response.status_code == 422
    issues = response.json()["error"]["issues"]
    assert [(i["index"], i["field"]) for i in issues] == [(1, "timestamp"), (2, "project")]
    assert runtime.store.samples.find_series() == []


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b'{"samples": [', 422, "malformed JSON"),
        (b'{"samples": ["\xff"]}', 422, "not valid UTF-8"),
        (b'{"samples":[{"project":"churn","metric":"accuracy","value":NaN}]}', 422, "finite number"),
    ],
)
def test_bad_bodies(client: TestClient, body: bytes, status: int, fragment: str) -> None:
    response = client.post("/api/v1/samples", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert fragment in json.dumps(response.json())


def test_batch_over_limit_is_413(client: TestClient, runtime: Runtime) -> None:
    samples = [_sample(0.5, NOW_S - i) for i in range(10_001)]
    response = client.post("/api/v1/samples", json={"samples": samples})
    assert response.status_code == 413
    assert runtime.store.samples.find_series() == []


def test_query_errors(client: TestClient) -> None:
    cases = [
        ({"query": "accuracy{", "start": 0, "end": 10, "step": "1m"}, "query"),
        ({"query": "accuracy", "start": "yesterday", "end": 10, "step": "1m"}, "start"),
        ({"query": "accuracy", "start": 0, "end": 10, "step": "often"}, "step"),
        ({"query": "accuracy", "start": 0, "end": 100000000, "step": "1s"}, "step"),
    ]
    for params, where in cases:
        response = client.get("/api/v1/query_range", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["issues"][0]["where"] == where


def test_projects_and_events(client: TestClient, runtime: Runtime) -> None:
    projects = client.get("/api/v1/projects").json()
    assert [p["id"] for p in projects] == ["churn", "vision"]
    assert projects[0]["owners"][0] == {"name": "Ada", "email": "ada@example.com", "slack": "@ada"}
    client.post("/api/v1/samples", json={"samples": [_sample(0.9, NOW_S)]})
    event = {
        "project": "churn",
        "kind": "model_version",
        "subject": "churn-classifier",
        "old": "7",
        "new": "8",
    }
    assert client.post("/api/v1/events", json={"events": [event]}).json() == {"accepted": 1}
    detail = client.get("/api/v1/projects/churn").json()
    assert detail["series"][0]["metric"] == "accuracy"
    assert detail["recent_events"][0]["message"] == "churn-classifier 7 -> 8"
    assert detail["recent_events"][0]["timestamp"].startswith("2026-11-20T12:00:00")
    missing = client.get("/api/v1/projects/nope")
    assert missing.status_code == 404 and "unknown project 'nope'" in missing.json()["error"]["message"]
    events = client.get("/api/v1/events", params={"project": "churn", "kind": "model_version"}).json()
    assert len(events) == 1
    assert client.get("/api/v1/events", params={"project": "nope"}).status_code == 404
    assert ms_from_datetime(runtime.clock.now()) == int(NOW_S * 1000)


def test_health_readiness_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/samples",
        "/api/v1/series",
        "/api/v1/query_range",
        "/api/v1/projects",
        "/api/v1/projects/{project_id}",
        "/api/v1/events",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
    assert "samples" in json.dumps(paths["/api/v1/samples"]["post"]["requestBody"])
    assert client.get("/docs").status_code == 200


def test_readyz_reports_a_schema_behind(make_runtime: RuntimeFactory, tmp_path: pytest.TempPathFactory) -> None:
    runtime = make_runtime(BASIC_CONFIG, database_url=f"sqlite:///{tmp_path}/empty.db")  # type: ignore[operator]
    with TestClient(create_app(runtime)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503 and "run `mlmon migrate`" in response.json()["reason"]


def test_internal_errors_carry_no_stack_trace(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(BASIC_CONFIG)  # a throw-away SQLite file: this test breaks its schema
    with runtime.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE source_state")  # a real failure inside the store
    with TestClient(create_app(runtime), raise_server_exceptions=False) as failing:
        response = failing.get("/api/v1/projects")
    assert response.status_code == 500
    assert response.json() == {"error": {"status": 500, "message": "internal error; see the server log"}}
    assert "source_state" not in response.text
