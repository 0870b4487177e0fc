"""Access control: every role against every mutating endpoint, read scoping, tokens, and secrets
that must never come back out of the API or the logs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from monitor.api.app import create_app
from monitor.auth.model import Role
from monitor.core.clock import FrozenClock
from monitor.runtime import Runtime
from monitor.services import build_engine
from tests.conftest import T0, RuntimeFactory

CONFIG = """
projects:
  - id: churn
    owners: [{name: Ada, email: ada@example.com}]
    sources: [{name: billing, kind: focus, params: {path: /nonexistent/exports/*.csv, attribution: [{tag: ml-project}]}}]
  - id: vision
    owners: [{name: Grace, email: grace@example.com}]
rules:
  - name: accuracy-low
    kind: threshold
    labels: {severity: critical}
    params: {metric: accuracy, op: "<", value: 0.9}
"""
ROLES = ("anonymous", "viewer", "owner", "other_owner", "auditor", "admin")


@dataclass
class World:
    runtime: Runtime
    app: Any
    headers: dict[str, dict[str, str]]

    def client(self, role: str) -> TestClient:
        return TestClient(self.app, headers=self.headers[role])

    def admin(self) -> TestClient:
        return self.client("admin")


@pytest.fixture
def world(make_runtime: RuntimeFactory, clock: FrozenClock) -> World:
    runtime = make_runtime(CONFIG, clock=clock)
    build_engine(runtime)
    tokens = runtime.tokens
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role, (kind, projects) in {
        "viewer": (Role.VIEWER, ()),
        "owner": (Role.OWNER, ("churn",)),
        "other_owner": (Role.OWNER, ("vision",)),
        "auditor": (Role.AUDITOR, ()),
        "admin": (Role.ADMIN, ()),
    }.items():
        secret, _ = tokens.create(role, kind, projects, "tests", clock.now())
        headers[role] = {"Authorization": f"Bearer {secret}"}
    return World(runtime, create_app(runtime), headers)


def _sample(value: float, project: str = "churn") -> dict[str, Any]:
    return {"samples": [{"project": project, "metric": "accuracy", "value": value, "timestamp": T0.timestamp()}]}


def _firing_alert(world: World) -> int:
    assert world.admin().post("/api/v1/samples", json=_sample(0.5)).status_code == 200
    return int(world.admin().get("/api/v1/alerts", params={"project": "churn"}).json()[0]["id"])


def _silence(world: World) -> str:
    body = {"matchers": ['project="churn"'], "endsAt": "2026-11-21T00:00:00Z", "createdBy": "x", "comment": "y"}
    return str(world.admin().post("/api/v1/silences", json=body).json()["id"])


def _set(world: World, what: str, body: dict[str, Any]) -> str:
    """Set a project setting as admin; return its URL."""
    url = f"/api/v1/projects/churn/{what}"
    assert world.admin().put(url, json=body).status_code == 200
    return url


def _token(world: World) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    world.runtime.tokens.create(name, Role.VIEWER, (), "tests", world.runtime.clock.now())
    return name


Prepare = Callable[[World], tuple[str, dict[str, Any] | None]]

REFERENCE = {
    "project": "churn", "dataset": "features", "role": "reference",
    "columns": {"age": {"values": [float(i % 50) for i in range(200)]}},
}  # fmt: skip

BUDGET = {"amount": 500}
RULE = {"kind": "threshold", "params": {"metric": "accuracy", "op": "<", "value": 0.5}}
IGNORE = {"reason": "not reachable", "expires": "2027-01-01"}

# (method, route path, how to call it, roles that may)
MATRIX: list[tuple[str, str, Prepare, set[str]]] = [
    ("POST", "/api/v1/samples", lambda w: ("/api/v1/samples", _sample(0.95)), {"owner", "admin"}),
    (
        "POST",
        "/api/v1/events",
        lambda w: ("/api/v1/events", {"events": [{"project": "churn", "kind": "deploy", "subject": "v2"}]}),
        {"owner", "admin"},
    ),
    (
        "POST",
        "/api/v1/alerts/{alert_id}/ack",
        lambda w: (f"/api/v1/alerts/{_firing_alert(w)}/ack", {}),
        {"owner", "admin"},
    ),
    (
        "POST",
        "/api/v1/silences",
        lambda w: (
            "/api/v1/silences",
            {
                "matchers": ['project="churn"'],
                "endsAt": "2026-11-21T00:00:00Z",
                "createdBy": "x",
                "comment": "maintenance",
            },
        ),
        {"owner", "admin"},
    ),  # fmt: skip
    (
        "DELETE",
        "/api/v1/silences/{silence_id}",
        lambda w: (f"/api/v1/silences/{_silence(w)}", None),
        {"owner", "admin"},
    ),
    ("POST", "/-/reload", lambda w: ("/-/reload", None), {"admin"}),
    (
        "POST",
        "/api/v1/tokens",
        lambda w: ("/api/v1/tokens", {"name": f"n-{uuid.uuid4().hex[:6]}", "role": "viewer"}),
        {"admin"},
    ),
    ("DELETE", "/api/v1/tokens/{name}", lambda w: (f"/api/v1/tokens/{_token(w)}", None), {"admin"}),
    ("POST", "/api/v1/stack/sync", lambda w: ("/api/v1/stack/sync", None), {"admin"}),
    (
        "POST",
        "/api/v1/quality/distributions",
        lambda w: ("/api/v1/quality/distributions", REFERENCE),
        {"owner", "admin"},
    ),
    (
        "PUT",
        "/api/v1/projects/{project_id}/budget",
        lambda w: ("/api/v1/projects/churn/budget", BUDGET),
        {"owner", "admin"},
    ),
    ("DELETE", "/api/v1/projects/{project_id}/budget", lambda w: (_set(w, "budget", BUDGET), None), {"owner", "admin"}),
    (
        "PUT",
        "/api/v1/projects/{project_id}/rules/{name}",
        lambda w: ("/api/v1/projects/churn/rules/slow", RULE),
        {"owner", "admin"},
    ),
    (
        "DELETE",
        "/api/v1/projects/{project_id}/rules/{name}",
        lambda w: (_set(w, "rules/slow", RULE), None),
        {"owner", "admin"},
    ),
    (
        "PUT",
        "/api/v1/projects/{project_id}/ignores/{ident}",
        lambda w: ("/api/v1/projects/churn/ignores/CVE-2025-1", IGNORE),
        {"owner", "admin"},
    ),
    (
        "DELETE",
        "/api/v1/projects/{project_id}/ignores/{ident}",
        lambda w: (_set(w, "ignores/CVE-2025-1", IGNORE), None),
        {"owner", "admin"},
    ),
]


def test_the_matrix_covers_every_mutating_endpoint(world: World) -> None:
    paths = world.app.openapi()["paths"]
    mutating = {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    }
    assert mutating == {(m, p) for m, p, _, _ in MATRIX}, "add new mutating endpoints to MATRIX"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "prepare", "allowed"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_authorization_matrix(
    world: World, role: str, method: str, path: str, prepare: Prepare, allowed: set[str]
) -> None:
    url, body = prepare(world)
    response = world.client(role).request(method, url, json=body)
    if role in allowed:
        assert response.status_code < 400, f"{role} {method} {url}: {response.status_code} {response.text}"
    else:
        assert response.status_code in (403, 404), f"{role} {method} {url}: {response.status_code} {response.text}"
        assert "Traceback" not in response.text


READS = [
    ("/api/v1/changes", {"auditor", "admin"}),
    ("/api/v1/reports/audit", {"auditor", "admin"}),
    ("/api/v1/tokens", {"admin"}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "allowed"), READS)
def test_privileged_reads(world: World, role: str, path: str, allowed: set[str]) -> None:
    status = world.client(role).get(path).status_code
    assert (status == 200) if role in allowed else (status == 403)


def test_a_scoped_token_sees_only_its_projects(world: World) -> None:
    admin = world.admin()
    admin.post("/api/v1/samples", json=_sample(0.5, "churn"))
    admin.post("/api/v1/samples", json=_sample(0.5, "vision"))
    owner = world.client("owner")
    assert [p["id"] for p in owner.get("/api/v1/projects").json()] == ["churn"]
    assert {a["project"] for a in owner.get("/api/v1/alerts").json()} == {"churn"}
    assert {s["project"] for s in owner.get("/api/v1/series").json()} == {"churn"}
    assert {p["project"] for p in owner.get("/api/v1/stack/projects").json()} == {"churn"}
    assert [p["project"] for p in owner.get("/api/v1/spend/projects").json()] == ["churn"]
    for path in ("/api/v1/projects/vision", "/api/v1/events?project=vision", "/api/v1/spend/projects/vision"):
        response = owner.get(path)
        assert response.status_code == 404 and "unknown project 'vision'" in response.text, path
    vision_alert = next(a for a in admin.get("/api/v1/alerts").json() if a["project"] == "vision")
    assert owner.get(f"/api/v1/alerts/{vision_alert['id']}").status_code == 404
    assert {p["id"] for p in world.client("viewer").get("/api/v1/projects").json()} == {"churn", "vision"}
    assert world.client("anonymous").get("/api/v1/projects").status_code == 200, "anonymous reads by default"


def test_an_owner_may_only_silence_its_own_projects(world: World) -> None:
    body = {"matchers": ['severity="critical"'], "endsAt": "2026-11-21T00:00:00Z", "createdBy": "x", "comment": "y"}
    response = world.client("owner").post("/api/v1/silences", json=body)
    assert response.status_code == 403 and 'add a matcher project="<id>"' in response.json()["error"]["message"]
    other = world.client("other_owner").post("/api/v1/silences", json={**body, "matchers": ['project="churn"']})
    assert other.status_code == 403


def test_every_change_is_logged_with_its_actor(world: World) -> None:
    alert_id = _firing_alert(world)
    world.client("owner").post(f"/api/v1/alerts/{alert_id}/ack", json={"comment": "on it"})
    silence = _silence(world)
    world.admin().delete(f"/api/v1/silences/{silence}")
    world.admin().post("/api/v1/tokens", json={"name": "ci-job", "role": "owner", "projects": ["churn"]})
    world.admin().delete("/api/v1/tokens/ci-job")
    world.admin().post("/-/reload")
    changes = world.client("auditor").get("/api/v1/changes").json()
    assert [(c["action"], c["actor"]) for c in changes] == [
        ("alert.ack", "owner"),
        ("silence.create", "admin"),
        ("silence.expire", "admin"),
        ("token.create", "admin"),
        ("token.revoke", "admin"),
        ("config.reload", "admin"),
    ]
    with world.runtime.store.engine.begin() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("DELETE FROM change_log"))
    with world.runtime.store.engine.begin() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("UPDATE change_log SET actor = 'someone else'"))


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("Bearer nope", "malformed token"),
        ("Bearer mlmon_" + "x" * 43, "unknown token"),
        ("Basic YWRhOnB3", "expected the header `Authorization: Bearer <token>`"),
    ],
)
def test_bad_tokens_are_401_without_a_stack_trace(world: World, header: str, fragment: str) -> None:
    response = TestClient(world.app).get("/api/v1/projects", headers={"Authorization": header})
    assert response.status_code == 401 and fragment in response.json()["error"]["message"]
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="mlmon"'
    assert "Traceback" not in response.text and "File " not in response.text


def test_expired_and_revoked_tokens(world: World, clock: FrozenClock) -> None:
    tokens = world.runtime.tokens
    secret, _ = tokens.create("short", Role.VIEWER, (), "tests", clock.now(), clock.now() + timedelta(hours=1))
    client = TestClient(world.app, headers={"Authorization": f"Bearer {secret}"})
    assert client.get("/api/v1/projects").status_code == 200
    clock.advance(timedelta(hours=2))
    expired = client.get("/api/v1/projects")
    assert expired.status_code == 401 and "token 'short' expired at" in expired.text
    other, _ = tokens.create("revoked", Role.VIEWER, (), "tests", clock.now())
    tokens.revoke("revoked", clock.now())
    revoked = TestClient(world.app, headers={"Authorization": f"Bearer {other}"}).get("/api/v1/projects")
    assert revoked.status_code == 401 and "was revoked" in revoked.text


def test_anonymous_none_requires_a_token(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(CONFIG + "auth: {anonymous: none}\n")
    client = TestClient(create_app(runtime))
    response = client.get("/api/v1/projects")
    assert response.status_code == 401 and "sign in" in response.text
    assert client.get("/healthz").status_code == 200 and client.get("/metrics").status_code == 200


def test_only_a_hash_of_a_token_is_stored(world: World) -> None:
    created = world.admin().post("/api/v1/tokens", json={"name": "job", "role": "viewer"}).json()
    secret = created["token"]
    assert secret.startswith("mlmon_") and "token" not in world.admin().get("/api/v1/tokens").json()[0]
    engine = world.runtime.store.engine
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                assert secret not in str(tuple(row)), f"the token is stored in {table}"
    assert all(secret not in str(c["details"]) for c in world.admin().get("/api/v1/changes").json())


SECRET_CONFIG = """
projects:
  - id: churn
    owners: [{name: Ada, email: ada@example.com}]
    sources:
      - name: eval
        kind: http_json
        params:
          url: http://127.0.0.1:9/eval.json?api_key=${EVAL_KEY}
          headers: {Authorization: "Bearer ${EVAL_KEY}"}
          metrics: [{metric: accuracy, path: $.accuracy}]
rules:
  - {name: accuracy-low, kind: threshold, params: {metric: accuracy, op: "<", value: 0.9}}
receivers:
  - name: owners
    webhook: {url_env: HOOK_URL}
    slack: {url_env: SLACK_URL}
    email:
      to: [owners]
      smtp: {host: 127.0.0.1, port: 9, from: m@example.com, username_env: SMTP_USER, password_env: SMTP_PASSWORD}
route: {receiver: owners, group_wait: 0s}
"""


def test_secrets_never_leave_through_the_api_or_the_logs(
    make_runtime: RuntimeFactory, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = {
        "EVAL_KEY": "evalkey-s3cr3t",
        "HOOK_URL": "http://127.0.0.1:9/hook?token=hook-s3cr3t",
        "SLACK_URL": "http://127.0.0.1:9/services/slack-s3cr3t",
        "SMTP_USER": "mlmon",
        "SMTP_PASSWORD": "smtp-s3cr3t",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    from monitor.services import Services

    runtime = make_runtime(SECRET_CONFIG, clock=clock)
    services = Services.build(runtime)
    services.runner.run(runtime.plans[0])  # the source fails: connection refused, URL and header hold the key
    admin = TestClient(
        create_app(runtime),
        headers={"Authorization": "Bearer " + runtime.tokens.create("a", Role.ADMIN, (), "t", clock.now())[0]},
    )
    admin.post("/api/v1/samples", json=_sample(0.5))
    services.loops.dispatcher.tick()
    services.loops.deliverer.deliver_due()  # every integration fails: nothing listens on port 9
    texts = [caplog.text]
    for path in ("/api/v1/projects", "/api/v1/projects/churn", "/api/v1/alerts", "/api/v1/status", "/api/v1/changes",
                 "/api/v1/tokens", "/openapi.json", "/metrics", "/api/v1/events"):  # fmt: skip
        response = admin.get(path)
        assert response.status_code == 200, path
        texts.append(response.text)
    with runtime.store.engine.connect() as conn:
        texts.append(str(conn.execute(text("SELECT last_error, payload FROM notification_outbox")).all()))
        texts.append(str(conn.execute(text("SELECT error FROM source_runs")).all()))
    leaked = [name for name, value in secrets.items() if value != "mlmon" and any(value in t for t in texts)]
    assert leaked == [], f"secrets found in API answers, the store or logs: {leaked}"
    assert "eval.json?api_key=***" in texts[1], "the failing source is reported, with its key hidden"
