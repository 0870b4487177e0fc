"""Configuration reload: `POST /-/reload` through the app, and SIGHUP to a real `mlmon serve`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.runtime import Runtime
from tests.conftest import BASIC_CONFIG, token_headers
from tests.support.peers import REPO, free_port, mlmon_command, stop_process, wait_http, wait_until

WITH_NLP = (
    BASIC_CONFIG
    + """
  - id: nlp
    name: Support ticket router
    owners:
      - {name: Alan, email: alan@example.com}
"""
)

BROKEN = (
    BASIC_CONFIG
    + """
  - id: nlp
    sources:
      - {name: eval, kind: push, interval: often}
"""
)


def reload_gauge(client: TestClient) -> float:
    body = client.get("/metrics").text
    found = re.search(r"^mlmon_config_last_reload_successful (\S+)$", body, re.MULTILINE)
    assert found, "the reload gauge is exported"
    return float(found.group(1))


def project_ids(client: TestClient) -> list[str]:
    response = client.get("/api/v1/projects")
    assert response.status_code == 200
    return [p["id"] for p in response.json()]


def test_reload_valid_then_broken_then_fixed(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime(BASIC_CONFIG)
    path = runtime.settings.config
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        assert project_ids(client) == ["churn", "vision"]
        assert reload_gauge(client) == 1

        path.write_text(WITH_NLP)
        response = client.post("/-/reload")
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "reloaded", "changed_projects": ["nlp"]}
        assert project_ids(client) == ["churn", "vision", "nlp"]
        [event] = runtime.store.events.events(kinds=["config_change"])
        assert (event.project, event.subject) == ("nlp", "configuration")
        assert event.labels["actor"].startswith("test-admin"), "the event names who reloaded"
        changes = runtime.store.changes.entries(actions=["config.reload", "project.create"])
        assert [(c.action, c.project) for c in changes] == [("config.reload", None), ("project.create", "nlp")]
        assert {c.actor for c in changes} == {event.labels["actor"]}
        assert "project added" in event.message

        path.write_text(BROKEN)
        response = client.post("/-/reload")
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["message"] == "configuration refused"
        line = BROKEN.splitlines().index("      - {name: eval, kind: push, interval: often}") + 1
        [issue] = error["issues"]
        assert issue["where"].startswith(f"{path}:{line}:"), "each problem keeps its own file:line"
        assert issue["message"].startswith("projects[2].sources[0].interval: expected a duration")
        assert project_ids(client) == ["churn", "vision", "nlp"], "the running configuration stays"
        assert reload_gauge(client) == 0
        assert len(runtime.store.events.events(kinds=["config_change"])) == 1

        path.write_text(WITH_NLP.replace("Support ticket router", "Ticket router"))
        response = client.post("/-/reload")
        assert response.status_code == 200, response.text
        assert response.json()["changed_projects"] == ["nlp"]
        assert reload_gauge(client) == 1
        assert client.get("/api/v1/projects/nlp").json()["name"] == "Ticket router"
        newest = runtime.store.events.events(kinds=["config_change"])[0]
        assert newest.message == "configuration reloaded: changed name"


def test_reload_of_an_unchanged_file_records_nothing(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime(BASIC_CONFIG)
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        response = client.post("/-/reload")
        assert response.status_code == 200
        assert response.json()["changed_projects"] == []
    assert runtime.store.events.events(kinds=["config_change"]) == []


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    config = tmp_path / "mlmon.yaml"
    config.write_text(BASIC_CONFIG)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLMON_")},
        "MLMON_CONFIG": str(config),
        "MLMON_DATABASE_URL": f"sqlite:///{tmp_path / 'mlmon.db'}",
        "MLMON_LISTEN": f"127.0.0.1:{port}",
    }
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(mlmon_command("serve"), cwd=REPO, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz")
        yield base, config, proc
    finally:
        stop_process(proc)


def test_sighup_reloads_a_running_server(served: tuple[str, Path, subprocess.Popen[bytes]]) -> None:
    base, config, proc = served

    def ids() -> list[str]:
        return [p["id"] for p in httpx.get(f"{base}/api/v1/projects", timeout=5).json()]

    def gauge() -> float:
        found = re.search(r"^mlmon_config_last_reload_successful (\S+)$", httpx.get(f"{base}/metrics").text, re.M)
        assert found
        return float(found.group(1))

    assert ids() == ["churn", "vision"]

    config.write_text(WITH_NLP)
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: ids() == ["churn", "vision", "nlp"], timeout=15, what="the new project after SIGHUP")
    assert gauge() == 1

    config.write_text(BROKEN)
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: gauge() == 0, timeout=15, what="the refused reload to show on /metrics")
    assert ids() == ["churn", "vision", "nlp"]
    assert proc.poll() is None, "a refused file does not stop the server"
