"""`GET /api/v1/reports/audit`: auditors and admins only, formats, and clear refusals."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.api.routes.reports import router
from monitor.auth.model import Role
from tests.conftest import token_headers
from tests.monitor.reports.conftest import NOW, Timeline

URL = "/api/v1/reports/audit"


@pytest.fixture
def client(sqlite_timeline: Timeline) -> Iterator[TestClient]:
    app = create_app(sqlite_timeline.runtime)
    if not any(getattr(r, "path", None) == URL for r in app.routes):
        app.include_router(router)  # until the lead includes it in create_app
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_clean_error(answer: httpx.Response, status: int, message: str) -> None:
    """The one JSON error shape, saying why, and no stack trace."""
    assert answer.status_code == status
    body = answer.json()
    assert body == {"error": {"status": status, "message": body["error"]["message"]}}
    assert message in body["error"]["message"]
    assert "Traceback" not in answer.text


def test_auditors_and_admins_read_it(sqlite_timeline: Timeline, client: TestClient) -> None:
    auditor = token_headers(sqlite_timeline.runtime, "auditor")
    answer = client.get(URL, params={"as_of": "2026-03-05T00:00:00Z"}, headers=auditor)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    doc = answer.json()
    assert doc["as_of"] == "2026-03-05T00:00:00+00:00" and doc["summary"]["compliance"]["rate"] == 0.5
    admin = client.get(URL, headers=sqlite_timeline.admin)
    assert admin.status_code == 200 and admin.json()["as_of"] == NOW.isoformat() and admin.json()["current"]


def test_viewers_owners_and_anonymous_callers_are_refused(sqlite_timeline: Timeline, client: TestClient) -> None:
    viewer = client.get(URL, headers=token_headers(sqlite_timeline.runtime, "viewer", name="dash"))
    assert_clean_error(viewer, 403, "dash (role viewer) may not read reports")
    owner = client.get(URL, headers=token_headers(sqlite_timeline.runtime, "owner", ("churn",), name="ada"))
    assert_clean_error(owner, 403, "ada (role owner) may not read reports")
    assert_clean_error(client.get(URL), 403, "anonymous (role viewer) may not read reports")


def test_bad_credentials_get_401_without_a_trace(sqlite_timeline: Timeline, client: TestClient) -> None:
    malformed = client.get(URL, headers={"Authorization": "Bearer not-a-token"})
    assert_clean_error(malformed, 401, "malformed token: expected mlmon_ followed by 43 characters")
    assert malformed.headers["www-authenticate"] == 'Bearer realm="mlmon"'
    assert_clean_error(client.get(URL, headers={"Authorization": "Basic abc"}), 401, "Authorization: Bearer")
    tokens = sqlite_timeline.runtime.tokens
    secret, _ = tokens.create("old-audit", Role.AUDITOR, (), "tests", NOW - timedelta(days=2), NOW - timedelta(days=1))
    expired = client.get(URL, headers={"Authorization": f"Bearer {secret}"})
    assert_clean_error(expired, 401, "token 'old-audit' expired at")


def test_formats(sqlite_timeline: Timeline, client: TestClient) -> None:
    auditor = token_headers(sqlite_timeline.runtime, "auditor")
    params = {"as_of": "2026-04-01T12:00:00Z", "since": "2026-02-01"}
    answer = client.get(URL, params={**params, "format": "csv"}, headers=auditor)
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="mlmon-audit-findings-20260401.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert {(r["project"], r["id"], r["status"]) for r in rows} >= {("vision", "CVE-2026-24747", "overdue")}
    packages = client.get(URL, params={**params, "format": "csv", "what": "packages"}, headers=auditor)
    assert {r["package"] for r in csv.DictReader(io.StringIO(packages.text))} == {"torch", "requests", "numpy"}
    html = client.get(URL, params={**params, "format": "html", "project": ["vision", "ranker"]}, headers=auditor)
    assert html.status_code == 200 and html.headers["content-type"] == "text/html; charset=utf-8"
    assert 'id="project-vision"' in html.text and 'id="project-ranker"' in html.text
    assert 'id="project-churn"' not in html.text


def test_refusals(sqlite_timeline: Timeline, client: TestClient) -> None:
    auditor = token_headers(sqlite_timeline.runtime, "auditor")
    unknown = client.get(URL, params={"project": "nope"}, headers=auditor)
    assert_clean_error(unknown, 404, "unknown project 'nope'")
    before = client.get(URL, params={"as_of": "2026-01-01"}, headers=auditor)
    assert before.status_code == 422 and "Traceback" not in before.text
    assert before.json()["error"]["issues"] == [
        {
            "where": "as_of",
            "message": "no history on or before 2026-01-01T00:00:00+00:00: the earliest inventory, finding or "
            "advisory data was recorded at 2026-02-02T09:00:00+00:00",
            "field": "as_of",
        }
    ]
    malformed = client.get(URL, params={"as_of": "yesterday"}, headers=auditor)
    assert malformed.status_code == 422 and malformed.json()["error"]["issues"][0]["where"] == "as_of"
    fmt = client.get(URL, params={"format": "pdf"}, headers=auditor)
    assert fmt.status_code == 422 and fmt.json()["error"]["message"] == "invalid request"
