"""examples/quality/push_distribution.py against a real mlmon: it sends its token, and a refusal
or an unreachable server is one line naming why, never a traceback."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.api.app import create_app
from monitor.runtime import Runtime
from tests.conftest import RuntimeFactory, token_headers
from tests.monitor.web.world import ThreadServer
from tests.support.peers import free_port

SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "quality" / "push_distribution.py"
CONFIG = """
projects:
  - id: churn
    owners: [{name: Ada, email: ada@example.com}]
  - id: vision
    owners: [{name: Grace, email: grace@example.com}]
"""


@pytest.fixture
def served(make_runtime: RuntimeFactory, sqlite_url: str) -> Iterator[tuple[Runtime, str]]:
    runtime = make_runtime(CONFIG, database_url=sqlite_url)
    with ThreadServer(create_app(runtime)) as server:
        yield runtime, server.url


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "features.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["age", "plan"])
        writer.writerows([[20 + i % 50, "pro" if i % 3 else "free"] for i in range(300)])
    return path


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env=env or {}
    )


def test_the_token_from_the_option_or_the_environment_is_sent(served: tuple[Runtime, str], tmp_path: Path) -> None:
    runtime, url = served
    token = token_headers(runtime, "owner", ("churn",))["Authorization"].removeprefix("Bearer ")
    data = str(_csv(tmp_path))

    done = _run(data, "--role", "reference", "--url", url, "--token", token)
    assert done.returncode == 0, done.stderr
    assert "age: reference" in done.stdout and "plan: reference" in done.stdout

    done = _run(data, "--role", "current", "--url", url, env={"MLMON_TOKEN": token})
    assert done.returncode == 0, done.stderr
    assert "age: " in done.stdout and "reference" not in done.stdout.split("\n")[0]


def test_a_refusal_says_why_without_a_traceback(served: tuple[Runtime, str], tmp_path: Path) -> None:
    runtime, url = served
    other = token_headers(runtime, "owner", ("vision",))["Authorization"].removeprefix("Bearer ")
    done = _run(str(_csv(tmp_path)), "--role", "reference", "--url", url, "--token", other)
    assert done.returncode == 1
    assert done.stderr.startswith(f"{url} refused the push: 403")
    assert "churn" in done.stderr and "Traceback" not in done.stderr


def test_no_token_and_no_server_are_said_plainly(tmp_path: Path) -> None:
    data = str(_csv(tmp_path))
    done = _run(data, "--role", "reference")
    assert done.returncode == 2 and "a token that may push for the project is needed" in done.stderr
    done = _run(data, "--role", "reference", "--url", f"http://127.0.0.1:{free_port()}", "--token", "x")
    assert done.returncode == 1 and done.stderr.startswith("cannot reach http://127.0.0.1:")
