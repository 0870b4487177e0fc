"""The API as outsiders attack it: cross-site writes with the UI's cookie, token guessing, the
database going away, empty parameters, and what anonymous readers may learn."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.api.auth import SESSION_COOKIE
from monitor.auth.attempts import MAX_FAILURES
from monitor.services import prepare_database
from tests.conftest import BASIC_CONFIG, RuntimeFactory, token_headers

SAMPLE = '{"samples": [{"project": "churn", "metric": "accuracy", "value": 0.9}]}'


@pytest.fixture
def world(make_runtime: RuntimeFactory) -> tuple[TestClient, str]:
    runtime = make_runtime(BASIC_CONFIG)
    token = token_headers(runtime)["Authorization"].removeprefix("Bearer ")
    return TestClient(create_app(runtime), base_url="http://mlmon.test"), token


@pytest.mark.parametrize("path", ["/api/v1/samples", "/api/v1/events", "/api/v1/quality/distributions"])
def test_raw_body_endpoints_refuse_cookie_writes_that_a_foreign_page_can_make(
    world: tuple[TestClient, str], path: str
) -> None:
    client, token = world
    client.cookies.set(SESSION_COOKIE, token)
    text_plain = client.post(path, content=SAMPLE, headers={"content-type": "text/plain"})
    assert text_plain.status_code == 403, text_plain.text
    assert "application/json" in text_plain.json()["error"]["message"]
    foreign = client.post(
        path, content=SAMPLE, headers={"content-type": "application/json", "origin": "http://evil.mlmon.test"}
    )
    assert foreign.status_code == 403 and "evil.mlmon.test" in foreign.json()["error"]["message"]
    cross_site = client.post(
        path, content=SAMPLE, headers={"content-type": "application/json", "sec-fetch-site": "same-site"}
    )
    assert cross_site.status_code == 403


def test_cookie_writes_from_the_own_origin_and_bearer_clients_are_unaffected(world: tuple[TestClient, str]) -> None:
    client, token = world
    client.cookies.set(SESSION_COOKIE, token)
    own = client.post(
        "/api/v1/samples",
        content=SAMPLE,
        headers={"content-type": "application/json", "origin": "http://mlmon.test", "sec-fetch-site": "same-origin"},
    )
    assert own.status_code == 200, own.text
    client.cookies.clear()
    bearer = client.post(
        "/api/v1/samples",
        content=SAMPLE,
        headers={"content-type": "text/plain", "authorization": f"Bearer {token}", "origin": "http://elsewhere"},
    )
    assert bearer.status_code == 200, bearer.text


def test_failed_token_attempts_are_logged_without_the_token_and_rate_limited(
    world: tuple[TestClient, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, token = world
    guess = "mlmon_" + "A" * 43
    caplog.set_level(logging.WARNING, "mlmon.auth")
    answers = [
        client.get("/api/v1/projects", headers={"authorization": f"Bearer {guess}"}) for _ in range(MAX_FAILURES)
    ]
    assert {a.status_code for a in answers} == {401}
    assert len([r for r in caplog.records if "failed authentication from" in r.getMessage()]) == MAX_FAILURES
    assert guess not in caplog.text
    limited = client.get("/api/v1/projects", headers={"authorization": f"Bearer {token}"})
    assert limited.status_code == 429, "even the right token: a guesser must not learn it guessed right"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    login = client.post("/login", data={"token": guess}, headers={"origin": "http://mlmon.test"})
    assert login.status_code == 429 and "retry-after" in login.headers
    anonymous = client.get("/api/v1/projects")
    assert anonymous.status_code == 200, "reading without credentials is not an attempt"


def test_the_login_form_counts_failures_too(world: tuple[TestClient, str]) -> None:
    client, _ = world
    for _ in range(MAX_FAILURES):
        assert client.post("/login", data={"token": "mlmon_" + "B" * 43}).status_code == 401
    assert client.post("/login", data={"token": "mlmon_" + "B" * 43}).status_code == 429


def test_database_unavailable_is_503_with_retry_after_and_one_log_line(
    make_runtime: RuntimeFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    runtime = make_runtime(BASIC_CONFIG, database_url=f"sqlite:///{folder / 'mlmon.db'}")
    prepare_database(runtime)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    assert client.get("/api/v1/projects").status_code == 200
    runtime.store.engine.dispose()
    shutil.rmtree(folder)
    folder.write_text("")  # the database's directory is now a file: no connection can be opened
    caplog.set_level(logging.INFO)
    caplog.clear()
    for path in ("/api/v1/projects", "/api/v1/series", "/"):
        answer = client.get(path)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.headers["retry-after"] == "5"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 3, [r.getMessage() for r in errors]
    assert all("database unavailable serving GET" in r.getMessage() and r.exc_info is None for r in errors)


def test_an_empty_project_parameter_is_422_not_an_unknown_project(world: tuple[TestClient, str]) -> None:
    client, _ = world
    answer = client.get("/api/v1/series?project=")
    assert answer.status_code == 422
    assert answer.json()["error"]["issues"][0]["where"] == "query.project"


def test_only_admins_see_where_the_configuration_file_is(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(BASIC_CONFIG)
    client = TestClient(create_app(runtime))
    assert client.get("/api/v1/status").json()["config"] is None
    viewer = client.get("/api/v1/status", headers=token_headers(runtime, "viewer")).json()
    assert viewer["config"] is None
    admin = client.get("/api/v1/status", headers=token_headers(runtime, "admin")).json()
    assert admin["config"] == str(runtime.settings.config)
