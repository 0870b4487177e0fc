"""Silences side by side with a real Alertmanager (API v2 and amtool): the same matcher sets are
accepted or refused, accepted ones mute the same alerts, and a POST naming an existing silence
edits or replaces it the same way."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from alerts.store import SilenceStore
from monitor.api.app import create_app
from tests.conftest import RuntimeFactory, token_headers
from tests.support.alertmanager import Alertmanager, amtool_binary, running_alertmanager

pytestmark = pytest.mark.peer

AM_CONFIG = """
route: {receiver: none}
receivers: [{name: none}]
"""
MLMON_CONFIG = """
projects:
  - id: p
    owners: [{name: Ada, email: ada@example.com}]
"""


def m(name: str, value: str, regex: bool = False, equal: bool = True) -> dict[str, Any]:
    return {"name": name, "value": value, "isRegex": regex, "isEqual": equal}


MATCHER_SETS: list[tuple[str, list[dict[str, Any]]]] = [
    ("regex matching everything", [m("model", ".*", regex=True)]),
    ("empty equality", [m("foo", "")]),
    ("regex with an empty alternative", [m("foo", "a|", regex=True)]),
    ("empty equality with a real matcher", [m("foo", ""), m("alertname", "acc")]),
    ("negative only", [m("foo", "bar", equal=False)]),
    ("negative regex only", [m("foo", "bar", regex=True, equal=False)]),
    ("not empty", [m("foo", "", equal=False)]),
    ("case-insensitive regex", [m("model", "(?i)A", regex=True)]),
    ("anchored regex", [m("model", "a", regex=True)]),
    ("lookahead", [m("model", "a(?=b)", regex=True)]),
    ("backreference", [m("model", "(a)\\1", regex=True)]),
    ("repeat over 1000", [m("model", "a{1001}", regex=True)]),
    ("unbalanced parenthesis", [m("model", "(", regex=True)]),
    ("ASCII digit class", [m("model", "\\d", regex=True)]),
    ("two matchers", [m("alertname", "acc"), m("model", "a|b", regex=True)]),
    ("dot does not match a newline", [m("model", "a.", regex=True)]),
    ("negative regex with a positive one", [m("model", "a", regex=True, equal=False), m("project", "p")]),
]

ALERTS = [
    {"alertname": "acc", "project": "p", "model": "a", "severity": "critical"},
    {"alertname": "acc", "project": "p", "model": "b", "severity": "warning"},
    {"alertname": "acc", "project": "p", "model": "A"},
    {"alertname": "acc", "project": "p", "model": "ab"},
    {"alertname": "acc", "project": "q", "model": "٣"},
    {"alertname": "acc", "project": "q", "model": "7"},
    {"alertname": "acc", "project": "q", "model": "a\n"},
    {"alertname": "other", "project": "p", "foo": "bar"},
    {"alertname": "other", "project": "p"},
]


@pytest.fixture
def am(tmp_path: Path) -> Iterator[Alertmanager]:
    with running_alertmanager(tmp_path, AM_CONFIG) as alertmanager:
        yield alertmanager


@pytest.fixture
def mlmon(make_runtime: RuntimeFactory) -> Iterator[tuple[TestClient, SilenceStore]]:
    runtime = make_runtime(MLMON_CONFIG)
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        yield client, SilenceStore(runtime.store.engine)


def body(matchers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "matchers": matchers,
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "tests",
        "comment": "parity",
        **extra,
    }


def test_the_same_matcher_sets_are_accepted_and_mute_the_same_alerts(
    am: Alertmanager, mlmon: tuple[TestClient, SilenceStore]
) -> None:
    client, silences = mlmon
    now = datetime.now(UTC)
    am.post_alerts(
        [
            {"labels": labels, "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
            for labels in ALERTS
        ]
    )
    fingerprints = {a["fingerprint"]: a["labels"] for a in am.alerts()}
    assert len(fingerprints) == len(ALERTS)
    accepted = 0
    for name, matchers in MATCHER_SETS:
        theirs = am.post_silence(body(matchers))
        ours = client.post("/api/v1/silences", json=body(matchers))
        assert (theirs.status_code == 200) == (ours.status_code == 200), (
            f"{name}: Alertmanager {theirs.status_code} {theirs.text.strip()}, mlmon {ours.status_code} {ours.text}"
        )
        if theirs.status_code != 200:
            continue
        accepted += 1
        am_id = theirs.json()["silenceID"]
        muted_by_am = {a["fingerprint"] for a in am.alerts(silenced="true") if am_id in a["status"]["silencedBy"]}
        silence = silences.get(ours.json()["id"])
        assert silence is not None
        muted_by_mlmon = {fp for fp, labels in fingerprints.items() if silence.mutes(labels, datetime.now(UTC))}
        assert muted_by_mlmon == muted_by_am, f"{name}: muted sets differ"
        # expire both, so the next set is judged alone
        assert client.delete(f"/api/v1/silences/{ours.json()['id']}").status_code == 200
        httpx.delete(f"{am.url}/api/v2/silence/{am_id}", timeout=5).raise_for_status()
    assert 0 < accepted < len(MATCHER_SETS)


STRING_MATCHERS = [
    ['model=~".*"'],
    ['foo=""'],
    ['foo!="bar"'],
    ['alertname="acc"', 'model=~"a|b"'],
    ['model=~"a(?=b)"'],
    ['model=~"(?i)A"'],
]


def test_amtool_and_mlmon_accept_the_same_string_matchers(
    am: Alertmanager, mlmon: tuple[TestClient, SilenceStore]
) -> None:
    client, _ = mlmon
    amtool = amtool_binary()
    for matchers in STRING_MATCHERS:
        theirs = subprocess.run(
            [
                amtool,
                f"--alertmanager.url={am.url}",
                "silence",
                "add",
                "--comment=parity",
                "--duration=1h",
                "--author=tests",
                *matchers,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        ours = client.post("/api/v1/silences", json=body(matchers))  # type: ignore[arg-type]
        assert (theirs.returncode == 0) == (ours.status_code == 200), (
            f"{matchers}: amtool {theirs.returncode} {theirs.stderr.strip()}, mlmon {ours.status_code} {ours.text}"
        )


def test_posting_an_existing_id_edits_or_replaces_as_alertmanager_does(
    am: Alertmanager, mlmon: tuple[TestClient, SilenceStore]
) -> None:
    client, _ = mlmon
    matchers = [m("alertname", "acc")]

    def post_am(payload: dict[str, Any]) -> str:
        response = am.post_silence(payload)
        assert response.status_code == 200, response.text
        return str(response.json()["silenceID"])

    def post_mlmon(payload: dict[str, Any]) -> str:
        response = client.post("/api/v1/silences", json=payload)
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def state_am(silence_id: str) -> str:
        return str(am.silence(silence_id)["status"]["state"])

    def state_mlmon(silence_id: str) -> str:
        [found] = [s for s in client.get("/api/v1/silences").json() if s["id"] == silence_id]
        return str(found["status"]["state"])

    for post, get_start, state in (
        (post_am, lambda i: am.silence(i)["startsAt"], state_am),
        (
            post_mlmon,
            lambda i: next(s for s in client.get("/api/v1/silences").json() if s["id"] == i)["startsAt"],
            state_mlmon,
        ),
    ):
        first = post(body(matchers))
        starts = get_start(first)
        later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
        # same matchers, same start, a later end and a new comment: edited in place
        edited = post(body(matchers, id=first, startsAt=starts, endsAt=later, comment="longer"))
        assert edited == first, post.__name__
        # other matchers: the old one expires, a new one takes its place
        replaced = post(body([m("alertname", "other")], id=first, startsAt=starts, endsAt=later))
        assert replaced != first and state(first) == "expired" and state(replaced) == "active", post.__name__
        # a hundred years is accepted: there is no longest duration
        century = post(body(matchers, endsAt=(datetime.now(UTC) + timedelta(days=36525)).isoformat()))
        assert state(century) == "active", post.__name__
    unknown = body(matchers, id="00000000-0000-0000-0000-000000000000")
    assert am.post_silence(unknown).status_code == 404
    assert client.post("/api/v1/silences", json=unknown).status_code == 404
