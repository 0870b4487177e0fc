"""The pages over HTTP (no browser): who sees what, sign-in and session cookies, form posts under
the API's permission checks, bad input, and secrets that must never be rendered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from alerts.store import AlertStore, SilenceStore
from monitor.api.auth import SESSION_COOKIE
from monitor.store.changes import Change
from tests.monitor.web.conftest import make_world
from tests.monitor.web.world import NOW, SECRETS, World

ROLES = ("anonymous", "viewer", "owner", "other_owner", "auditor", "admin")


@pytest.fixture(scope="module")
def http(world: World) -> Iterator[httpx.Client]:
    """A client of the real server (uvicorn in a thread), redirects not followed."""
    with httpx.Client(base_url=world.url, timeout=30) as client:
        yield client


@contextmanager
def signed_in(world: World, who: str) -> Iterator[httpx.Client]:
    """A client of the server that signed in through the form (it keeps the cookie as a browser does)."""
    with httpx.Client(base_url=world.url, timeout=30) as client:
        if who != "anonymous":
            answer = client.post("/login", data={"token": world.tokens[who], "next": "/"})
            assert answer.status_code == 303, answer.text
        yield client


def firing(world: World, project: str, rule: str = "accuracy-low") -> int:
    found = [
        a for a in AlertStore(world.runtime.store.engine).list(states=["firing"], project=project) if a.rule == rule
    ]
    assert found, f"no firing {rule} alert of {project}"
    assert found[0].id is not None
    return found[0].id


def changes(world: World, action: str) -> list[Change]:
    return world.runtime.store.changes.entries(actions=[action])


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- signing in -----------------------------------------------------------------------------------


def test_sign_in_sets_an_httponly_strict_session_cookie_and_never_echoes_the_token(world: World) -> None:
    token = world.tokens["viewer"]
    with httpx.Client(base_url=world.url, timeout=30) as client:
        answer = client.post("/login", data={"token": token, "next": "/projects/churn"})
        assert answer.status_code == 303 and answer.headers["location"] == "/projects/churn"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http here; see the https test below
        page = client.get("/projects/churn")
        assert page.status_code == 200 and "ui-viewer" in page.text
        assert token not in page.text
        again = client.get("/login")
        assert "Signed in as" in again.text and token not in again.text


def test_the_cookie_is_secure_over_https(world: World) -> None:
    with world.client(base_url="https://mlmon.example.com") as client:
        answer = client.post("/login", data={"token": world.tokens["viewer"]}, follow_redirects=False)
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"]


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("mlmon_short", "malformed token: expected mlmon_ followed by 43 characters"),
        ("mlmon_" + "A" * 43, "unknown token"),
        (None, "token 'old-laptop' expired at 2026-10-22T12:00:00+00:00"),
        ("", "enter a token"),
    ],
)
def test_a_bad_token_shows_the_sign_in_page_with_the_reason(world: World, token: str | None, reason: str) -> None:
    secret = world.tokens["expired"] if token is None else token
    with httpx.Client(base_url=world.url, timeout=30) as client:
        answer = client.post("/login", data={"token": secret})
    assert answer.status_code == 401
    assert reason in text_of(answer.text).replace("&#39;", "'")
    assert "Traceback" not in answer.text and "set-cookie" not in answer.headers
    if secret:
        assert secret not in answer.text


@pytest.mark.parametrize("cookie", ["not-a-token", "mlmon_" + "B" * 43, "expired"])
def test_a_bad_session_cookie_shows_the_sign_in_page_401_and_is_cleared(world: World, cookie: str) -> None:
    value = world.tokens["expired"] if cookie == "expired" else cookie
    with httpx.Client(base_url=world.url, timeout=30, cookies={SESSION_COOKIE: value}) as client:
        for path in ("/", "/projects/churn", "/alerts", "/audit"):
            answer = client.get(path)
            assert answer.status_code == 401, path
            assert 'id="reason"' in answer.text and 'id="login-form"' in answer.text
            assert "Traceback" not in answer.text and value not in answer.text
            assert f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]  # the browser drops it


def test_the_api_answers_a_bad_token_with_401_json_and_no_trace(world: World, http: httpx.Client) -> None:
    for header in ("Bearer mlmon_short", f"Bearer {world.tokens['expired']}", "Basic abc"):
        answer = http.get("/api/v1/projects", headers={"Authorization": header})
        assert answer.status_code == 401
        assert answer.json()["error"]["status"] == 401 and "Traceback" not in answer.text


def test_next_only_goes_to_a_path_of_this_site(world: World) -> None:
    for target, expected in (
        ("//evil.example.com/x", "/"),
        ("https://evil.example.com", "/"),
        ("/alerts?x=1", "/alerts?x=1"),
    ):
        with httpx.Client(base_url=world.url, timeout=30) as client:
            answer = client.post("/login", data={"token": world.tokens["viewer"], "next": target})
        assert answer.headers["location"] == expected


def test_sign_out_clears_the_cookie(world: World) -> None:
    with signed_in(world, "viewer") as client:
        answer = client.post("/logout")
        assert answer.status_code == 303 and f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]
        assert "ui-viewer" not in client.get("/").text


def test_with_anonymous_none_pages_redirect_to_sign_in(tmp_path_factory: pytest.TempPathFactory) -> None:
    closed = make_world(tmp_path_factory.mktemp("closed"), anonymous="none")
    with closed.client() as client:
        for path in ("/", "/projects/churn?x=1", "/alerts", "/audit"):
            answer = client.get(path, follow_redirects=False)
            assert answer.status_code == 303, path
            expected = "/login" if path == "/" else "/login?" + urlencode({"next": path})
            assert answer.headers["location"] == expected
        assert client.get("/login").status_code == 200
        assert client.get("/api/v1/projects").status_code == 401
        signed = client.post(
            "/login", data={"token": closed.tokens["viewer"], "next": "/alerts"}, follow_redirects=False
        )
        assert signed.headers["location"] == "/alerts"
        assert client.get("/alerts").status_code == 200  # the TestClient keeps the cookie
    closed.runtime.store.close()


# --- who sees what --------------------------------------------------------------------------------


def test_anonymous_browsing_is_a_viewer_of_every_project(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200
    assert set(re.findall(r'<tr data-project="([^"]+)"', page.text)) == {"churn", "vision", "ranker", "finops"}
    assert 'id="sign-in"' in page.text


def test_a_scoped_token_sees_only_its_projects(world: World) -> None:
    with signed_in(world, "owner") as client:
        page = client.get("/")
        assert re.findall(r'<tr data-project="([^"]+)"', page.text) == ["churn"]
        assert client.get("/projects/churn").status_code == 200
        hidden = client.get("/projects/vision")
        assert hidden.status_code == 404 and "unknown project &#39;vision&#39;" in hidden.text
        alerts = client.get("/alerts").text
        assert set(re.findall(r'data-alert="\d+" data-state="\w+" data-project="([^"]*)"', alerts)) == {"churn"}
        assert client.get("/alerts?project=vision").status_code == 404


def test_an_unknown_project_is_a_404_page_with_a_clear_message(http: httpx.Client) -> None:
    answer = http.get("/projects/nope")
    assert answer.status_code == 404
    assert "unknown project &#39;nope&#39;: no project with this id is configured" in answer.text
    assert "Traceback" not in answer.text


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/?sort=size", "unknown sort &#39;size&#39;"),
        ("/?dir=up", "expected asc or desc"),
        ("/?flag=broke", "unknown flag &#39;broke&#39;"),
        ("/?per_page=7", "expected one of 25, 50, 100, 250, 1000"),
        ("/?page=zero", "page and per_page must be whole numbers"),
        ("/alerts?state=sleeping", "expected pending, firing, resolved"),
        ("/audit/export?format=xml", "expected json or csv"),
    ],
)
def test_bad_parameters_are_a_422_page_naming_them(world: World, path: str, words: str) -> None:
    with signed_in(world, "admin") as client:
        answer = client.get(path)
    assert answer.status_code == 422, answer.text
    assert words in answer.text and "Traceback" not in answer.text


def test_the_audit_page_is_for_auditors_and_admins(world: World) -> None:
    for who, status in (("anonymous", 403), ("viewer", 403), ("owner", 403), ("auditor", 200), ("admin", 200)):
        with signed_in(world, who) as client:
            answer = client.get("/audit")
            assert answer.status_code == status, who
            if status == 403:
                assert "may not read reports" in answer.text
                assert client.get("/audit/print").status_code == 403
                assert client.get("/audit/export").status_code == 403


def test_the_audit_page_and_its_downloads_come_from_the_report_builder(world: World) -> None:
    with signed_in(world, "auditor") as client:
        page = client.get("/audit")
        report = world.client().get("/api/v1/reports/audit", headers=world.headers("auditor"))
        exported = client.get("/audit/export?format=json")
        printed = client.get("/audit/print")
        csv = client.get("/audit/export?format=csv&what=findings")
        old = client.get("/audit?as_of=2026-11-01")
        future = client.get("/audit?as_of=2027-01-01")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    doc = exported.json()
    if report.status_code == 200:  # the reports API, once the lead has wired it into create_app
        assert report.json()["summary"] == doc["summary"]
    counts = doc["summary"]["counts"]
    assert f"{counts['open']} open, {counts['overdue']} overdue" in text_of(page.text)
    rows = re.findall(r'<tr data-project="(\w+)" data-status="(\w+)"', page.text)
    assert len(rows) == doc["summary"]["findings"]
    assert sum(1 for _, status in rows if status == "overdue") == counts["overdue"] > 0
    assert printed.status_code == 200 and "@page" in printed.text and "PyTorch stack audit report" in printed.text
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert old.status_code == 200 and "replayed from the history" in old.text
    assert future.status_code == 422 and "is in the future" in future.text


# --- form posts: the API's checks -----------------------------------------------------------------


@pytest.mark.parametrize("who", ROLES)
def test_ack_from_the_alerts_page_applies_the_api_permission(world: World, who: str) -> None:
    alert = firing(world, "churn")
    before = len(changes(world, "alert.ack"))
    with signed_in(world, who) as client:
        answer = client.post(f"/alerts/{alert}/ack", data={"comment": f"looking ({who})", "back": "/alerts"})
    allowed = who in ("owner", "admin")
    if who == "other_owner":  # as the API: an alert outside its scope does not exist for it
        assert answer.status_code == 404 and f"no alert with id {alert}" in answer.text
    elif not allowed:
        assert answer.status_code == 403, answer.text
    else:
        assert answer.status_code == 303 and answer.headers["location"] == "/alerts?notice=acked"
        stored = AlertStore(world.runtime.store.engine).get(alert)
        assert stored is not None and stored.acked_by == f"ui-{who}" and stored.ack_comment == f"looking ({who})"
    logged = changes(world, "alert.ack")[before:]
    assert [c.actor for c in logged] == ([f"ui-{who}"] if allowed else [])


@pytest.mark.parametrize("who", ROLES)
def test_silences_from_the_alerts_page_apply_the_api_permission(world: World, who: str) -> None:
    before = len(changes(world, "silence.create"))
    form = {
        "matchers": 'project="churn"\nalertname="feature-drift"',
        "duration": "3h",
        "comment": f"retraining ({who})",
    }
    with signed_in(world, who) as client:
        answer = client.post("/alerts/silences", data=form)
    allowed = who in ("owner", "admin")
    assert answer.status_code == (303 if allowed else 403), answer.text
    logged = changes(world, "silence.create")[before:]
    assert [c.actor for c in logged] == ([f"ui-{who}"] if allowed else [])
    if allowed:
        silence = SilenceStore(world.runtime.store.engine).get(logged[0].target)
        assert silence is not None and silence.starts_at == NOW
        assert (silence.ends_at - silence.starts_at).total_seconds() == 3 * 3600
        assert silence.created_by == f"ui-{who}" and silence.comment == f"retraining ({who})"
        with signed_in(world, "other_owner") as other:
            refused = other.post(f"/alerts/silences/{silence.id}/expire")
        assert refused.status_code == 403
        with signed_in(world, who) as client:
            expired = client.post(f"/alerts/silences/{silence.id}/expire", data={"back": "/alerts"})
        assert expired.status_code == 303
        assert changes(world, "silence.expire")[-1].target == silence.id


def test_a_scoped_owner_cannot_silence_without_its_project_matcher(world: World) -> None:
    with signed_in(world, "owner") as client:
        broad = client.post("/alerts/silences", data={"matchers": 'severity="critical"', "comment": "x"})
        other = client.post("/alerts/silences", data={"matchers": 'project="vision"', "comment": "x"})
        empty = client.post("/alerts/silences", data={"matchers": 'project="churn"', "comment": ""})
        bad = client.post("/alerts/silences", data={"matchers": 'project="churn"', "comment": "x", "duration": "soon"})
        garbled = client.post("/alerts/silences", data={"matchers": "project=", "comment": "x"})
    assert broad.status_code == 403 and "add a matcher project=" in broad.text
    assert other.status_code == 403
    assert empty.status_code == 422 and "comment" in empty.text
    assert bad.status_code == 422 and "duration" in bad.text
    assert garbled.status_code == 422 and "invalid matchers" in garbled.text


def test_a_form_posted_from_another_site_is_refused(world: World) -> None:
    alert = firing(world, "churn")
    with signed_in(world, "admin") as client:
        answer = client.post(
            f"/alerts/{alert}/ack", data={"comment": "x"}, headers={"Origin": "https://evil.example.com"}
        )
        assert answer.status_code == 403 and "is refused" in answer.text
        same = client.post(f"/alerts/{alert}/ack", data={"comment": "same site"}, headers={"Origin": world.url})
        assert same.status_code == 303


def test_acking_an_alert_that_is_not_firing_says_so(world: World) -> None:
    with signed_in(world, "admin") as client:
        answer = client.post("/alerts/999999/ack", data={"comment": "x"})
    assert answer.status_code == 404 and "no alert with id 999999" in answer.text


# --- secrets --------------------------------------------------------------------------------------


def every_page(client: httpx.Client) -> dict[str, str]:
    pages = {}
    for path in ("/", "/?per_page=1000&sort=spend", "/projects/churn", "/projects/vision", "/projects/ranker",
                 "/projects/finops", "/alerts?state=pending&state=firing&state=resolved", "/audit", "/audit/print",
                 "/audit/export?format=json", "/audit/export?format=csv&what=changes", "/login", "/projects/nope"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code in (200, 404), (path, answer.status_code)
        pages[path] = answer.text
    return pages


def test_no_secret_and_no_token_is_ever_rendered(world: World, tmp_path: Path) -> None:
    tokens = [t for who, t in world.tokens.items() if who != "expired"]
    with signed_in(world, "admin") as client:
        pages = every_page(client)
        pages["after sign-in"] = client.post(
            "/login", data={"token": world.tokens["admin"]}, follow_redirects=True
        ).text
        pages["failed sign-in"] = client.post("/login", data={"token": world.tokens["expired"]}).text
    for name, html in pages.items():
        for secret in [*SECRETS.values(), *tokens, world.tokens["expired"]]:
            if secret == SECRETS["MLMON_UI_SMTP_USER"]:
                continue  # a user name, not a secret
            assert secret not in html, f"{name} shows a secret"
    assert len(pages) == 15


def test_pages_use_only_the_sites_own_assets(world: World, http: httpx.Client) -> None:
    html = http.get("/projects/churn").text
    references = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert references and all(ref.startswith("/") and not ref.startswith("//") for ref in references), references
    # one script, the site's own: it only rewrites <time> elements into the viewer's zone
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/local-time.js" defer>']
    script = http.get("/static/local-time.js")
    assert script.status_code == 200 and "time[data-local]" in script.text and "http" not in script.text
    css = http.get("/static/mlmon.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert "@import" not in css.text and "url(" not in css.text
