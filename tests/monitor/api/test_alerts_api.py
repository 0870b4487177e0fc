"""Alerts, acknowledgements and silences through the HTTP API; `check-config` and `test-rules` for rules."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.runtime import Runtime
from monitor.services import build_engine
from tests.conftest import T0, RuntimeFactory, token_headers
from tests.support.peers import REPO, mlmon_command

CONFIG = """
projects:
  - id: churn
    owners: [{name: Ada, email: ada@example.com}]
rules:
  - name: accuracy-low
    kind: threshold
    labels: {severity: critical}
    params: {metric: accuracy, op: "<", value: 0.9}
"""


@pytest.fixture
def runtime(make_runtime: RuntimeFactory, db_url: str, clock: FrozenClock) -> Runtime:
    runtime = make_runtime(CONFIG, database_url=db_url, clock=clock)
    build_engine(runtime)  # evaluates right after each ingest
    return runtime


@pytest.fixture
def client(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime), headers=token_headers(runtime, "owner", ("churn",), name="ada"))


def _push(client: TestClient, value: float) -> None:
    sample = {"project": "churn", "metric": "accuracy", "value": value, "timestamp": T0.timestamp()}
    assert client.post("/api/v1/samples", json={"samples": [sample]}).status_code == 200


def test_a_pushed_sample_fires_at_once_and_can_be_acked(client: TestClient, runtime: Runtime) -> None:
    _push(client, 0.5)
    (alert,) = client.get(
        "/api/v1/alerts", params={"state": "firing", "project": "churn", "severity": "critical"}
    ).json()
    assert alert["labels"]["alertname"] == "accuracy-low" and alert["value"] == 0.5 and not alert["suppressed"]
    assert client.get("/api/v1/alerts", params={"severity": "warning"}).json() == []
    viewer = TestClient(create_app(runtime), headers=token_headers(runtime, "viewer", name="vic"))
    refused = viewer.post(f"/api/v1/alerts/{alert['id']}/ack", json={})
    assert (
        refused.status_code == 403
        and refused.json()["error"]["message"] == "vic (role viewer) may not ack for project 'churn'"
    )
    acked = client.post(f"/api/v1/alerts/{alert['id']}/ack", json={"comment": "retraining"}).json()
    assert (acked["acked_by"], acked["ack_comment"]) == ("ada", "retraining"), "the ack names the token's holder"
    (entry,) = runtime.store.changes.entries(actions=["alert.ack"])
    assert (entry.actor, entry.project, entry.details["comment"]) == ("ada", "churn", "retraining")
    _push(client, 0.95)
    resolved = client.get(f"/api/v1/alerts/{alert['id']}").json()
    assert resolved["state"] == "resolved" and resolved["acked_by"] is None
    assert client.post(f"/api/v1/alerts/{alert['id']}/ack", json={}).status_code == 422
    assert client.get("/api/v1/alerts/999").status_code == 404


def test_silences_lifecycle(client: TestClient) -> None:
    _push(client, 0.5)
    body = {
        "matchers": [
            {"name": "alertname", "value": "accuracy-.*", "isRegex": True, "isEqual": True},
            {"name": "project", "value": "churn", "isRegex": False, "isEqual": True},
        ],
        "startsAt": (T0 - timedelta(hours=1)).isoformat(),
        "endsAt": (T0 + timedelta(hours=2)).isoformat(),
        "createdBy": "ada",
        "comment": "retraining tonight",
    }
    created = client.post("/api/v1/silences", json=body).json()
    assert created["status"] == {"state": "active"} and created["startsAt"].startswith("2026-11-20T12:00:00"), (
        "a past start is clamped to now"
    )
    (alert,) = client.get("/api/v1/alerts").json()
    assert alert["suppressed"] and alert["silenced_by"] == [created["id"]]
    expired = client.delete(f"/api/v1/silences/{created['id']}").json()
    assert expired["status"] == {"state": "expired"}
    assert [s["id"] for s in client.get("/api/v1/silences").json()] == [created["id"]], "expiring never deletes"
    assert not client.get("/api/v1/alerts").json()[0]["suppressed"]
    strings = client.post("/api/v1/silences", json={**body, "matchers": ['severity="critical"', 'project="churn"']})
    assert strings.status_code == 200 and strings.json()["matchers"][0]["name"] == "severity"
    assert client.delete("/api/v1/silences/nope").status_code == 404


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"matchers": ['severity=~"("']}, "invalid regular expression"),
        ({"matchers": []}, "at least one matcher"),
        ({"endsAt": "2026-11-20T11:00:00+00:00"}, "endsAt must be after"),
        ({"comment": ""}, "comment"),
    ],
)
def test_bad_silences(client: TestClient, change: dict[str, object], fragment: str) -> None:
    body = {
        "matchers": ['a="b"', 'project="churn"'],
        "endsAt": "2026-11-21T00:00:00Z",
        "createdBy": "ada",
        "comment": "x",
        **change,
    }
    response = client.post("/api/v1/silences", json=body)
    assert response.status_code == 422 and fragment in response.text


BAD_RULES = [
    ("rules:\n  - {name: r, kind: nope}\n", "rules[0].kind: rule 'r': unknown rule kind 'nope'"),
    (
        "rules:\n  - {name: r, kind: threshold, params: {metric: accuracy, op: '<', value: x}}\n",
        "rules[0].params.value: rule 'r': Input should be a valid number",
    ),
    (
        "rules:\n  - {name: r, kind: threshold, params: {metric: accuracy, op: '<', value: 1}, annotations: {summary: '{{ valu }}'}}\n",
        "rules[0].annotations.summary: rule 'r': undefined template variable 'valu'",
    ),
    (
        "rules:\n  - {name: r, kind: threshold, for: -5m, params: {metric: accuracy, op: '<', value: 1}}\n",
        "rules[0].for: a duration cannot be negative",
    ),
    (
        "rules:\n  - {name: r, kind: threshold, project_selector: ['tier=~\"(\"'], params: {metric: accuracy, op: '<', value: 1}}\n",
        "invalid regular expression",
    ),
    ("route:\n  receiver: nobody\n", "route.receiver: route: unknown receiver 'nobody'"),
    (
        "receivers:\n  - {name: x, webhook: {url: 'http://a'}}\nroute:\n  receiver: x\n  group_interval: 4m\n  repeat_interval: 10m\n",
        "must be a multiple of group_interval",
    ),
    ("receivers:\n  - {name: x}\n", "receiver 'x' has no integration"),
    ("route:\n  routes:\n    - {matchers: ['a=\"b\"']}\n", "route.routes[0].receiver: required field is missing"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_RULES)
def test_check_config_names_the_rule_and_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("projects:\n  - id: churn\n" + text)
    result = subprocess.run(mlmon_command("check-config", str(path)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert fragment in result.stderr, result.stderr


def test_test_rules_command(tmp_path: Path) -> None:
    ok = subprocess.run(
        mlmon_command("test-rules", str(REPO / "examples/rules/accuracy.test.yaml")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("SUCCESS") == 2
    wrong = tmp_path / "wrong.test.yaml"
    wrong.write_text(
        f"config: {REPO / 'examples/mlmon.yaml'}\ntests:\n  - interval: 1m\n    input_series:\n"
        "      - series: 'accuracy{project=\"churn\", model=\"churn-classifier\"}'\n        values: '0.5x10'\n"
        "    alert_rule_test:\n      - eval_time: 2m\n        alertname: accuracy-low\n        exp_alerts:\n"
        "          - exp_labels: {project: churn, model: churn-classifier, severity: critical}\n"
    )
    failed = subprocess.run(mlmon_command("test-rules", str(wrong)), capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert (
        "FAILED" in failed.stdout
        and "alertname: accuracy-low, time: 2m" in failed.stdout
        and "(nothing firing)" in failed.stdout
    )
    broken = tmp_path / "broken.test.yaml"
    broken.write_text("tests: []\n")
    invalid = subprocess.run(mlmon_command("test-rules", str(broken)), capture_output=True, text=True, timeout=60)
    assert invalid.returncode == 2 and "config" in invalid.stderr
