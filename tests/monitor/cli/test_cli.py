"""The `mlmon` command line, run as a real subprocess: check-config, collect --once, migrate."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from monitor.core.types import SeriesKey
from monitor.store import migrate
from monitor.store.db import make_engine
from monitor.store.store import Store
from tests.support.http_server import Answer, LocalHttpServer
from tests.support.peers import REPO, mlmon_command

EXAMPLE = REPO / "examples" / "mlmon.yaml"


def mlmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLMON_")}
    return subprocess.run(
        mlmon_command(*args),
        cwd=REPO,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- check-config ---------------------------------------------------------------------------------


def test_check_config_accepts_the_example() -> None:
    done = mlmon("check-config", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rf"{re.escape(str(EXAMPLE))}: OK \(\d+ projects, \d+ sources.*\)", done.stdout.strip())
    assert done.stderr == ""


@pytest.mark.parametrize(
    "example",
    sorted({*REPO.glob("examples/*/mlmon.yaml"), REPO / "examples" / "compose.yaml"}),
    ids=lambda path: str(path.relative_to(REPO)),
)
def test_every_example_configuration_is_accepted(example: Path) -> None:
    """The family examples the docs point at (stack, quality, spend) and compose's copy stay valid."""
    done = mlmon("check-config", str(example))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().startswith(f"{example}: OK (")


@pytest.mark.parametrize(
    "example",
    sorted({*REPO.glob("examples/*.yaml"), *REPO.glob("examples/*/mlmon.yaml")}),
    ids=lambda path: str(path.relative_to(REPO)),
)
def test_every_example_says_whether_it_runs_or_is_a_template(example: Path) -> None:
    """A newcomer must not start a template expecting data: its first lines say which it is."""
    head = " ".join(line.lstrip("# ") for line in example.read_text().splitlines()[:4])
    assert ("Runs on a fresh machine" in head) != ("Production template" in head), head


SOURCE_HEAD = """\
projects:
  - id: churn
    sources:
      - name: eval
"""

BAD_FILES = [
    (
        "unknown-kind",
        SOURCE_HEAD + "        kind: prometheus_scrape\n",
        [
            (
                "kind: prometheus_scrape",
                "projects[0].sources[0].kind: unknown source kind 'prometheus_scrape'; expected one of: ",
            )
        ],
    ),
    (
        "bad-params",
        SOURCE_HEAD + "        kind: http_json\n        params:\n          uri: http://eval.internal/x.json\n"
        "          metrics: [{metric: accuracy, path: $.accuracy}]\n",
        [
            ("params:", "projects[0].sources[0].params.url: required field is missing"),
            ("uri:", "projects[0].sources[0].params.uri: unknown key 'uri'"),
        ],
    ),
    (
        "bad-push-params",
        SOURCE_HEAD + "        kind: push\n        params:\n          expect:\n            - metric: trainAcc\n"
        "              max_age: soon\n",
        [
            (
                "- metric: trainAcc",
                "projects[0].sources[0].params.expect[0].metric: metric name 'trainAcc' must be snake_case",
            ),
            ("max_age: soon", "projects[0].sources[0].params.expect[0].max_age: expected a duration like"),
        ],
    ),
    (
        "bad-duration",
        SOURCE_HEAD + "        kind: push\n        interval: 5 minutes\n",
        [
            (
                "interval: 5 minutes",
                "projects[0].sources[0].interval: expected a duration like '30s', '5m' or '1h30m', got '5 minutes'",
            )
        ],
    ),
    (
        "interval-too-short",
        SOURCE_HEAD + "        kind: push\n        interval: 500ms\n",
        [("interval: 500ms", "projects[0].sources[0].interval: interval must be at least 1s")],
    ),
    (
        "invalid-jsonpath",
        SOURCE_HEAD + "        kind: http_json\n        params:\n          url: http://eval.internal/x.json\n"
        "          metrics:\n            - metric: accuracy\n              path: $.[[[\n",
        [("path: $.[[[", "projects[0].sources[0].params.metrics[0].path: invalid JSONPath '$.[[['")],
    ),
    (
        "invalid-yaml",
        SOURCE_HEAD + "        kind: push: now\n        interval: 1m\n",
        [("kind: push: now", "invalid YAML: mapping values are not allowed here")],
    ),
    (
        "duplicate-key",
        SOURCE_HEAD + "        kind: push\n        kind: http_json\n",
        [("kind: http_json", 'invalid YAML: found duplicate key "kind"')],
    ),
]


def _line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.strip().startswith(marker))


@pytest.mark.parametrize(("text", "problems"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_check_config_names_file_line_and_field(tmp_path: Path, text: str, problems: list[tuple[str, str]]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)

    done = mlmon("check-config", str(path))

    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    for marker, message in problems:
        prefix = f"{path}:{_line_of(text, marker)}:"
        assert any(line.startswith(prefix) and message in line for line in lines), (prefix, message, lines)
    assert len(lines) == len(problems), lines


def test_check_config_of_a_missing_file(tmp_path: Path) -> None:
    done = mlmon("check-config", str(tmp_path / "nope.yaml"))
    assert done.returncode == 1
    assert "cannot read the configuration" in done.stderr


# --- collect --once -------------------------------------------------------------------------------

COLLECT_CONFIG = """
projects:
  - id: alpha
    sources:
      - name: eval
        kind: http_json
        timeout: 5s
        params:
          url: {url}/alpha.json
          metrics:
            - {{metric: accuracy, path: $.accuracy, labels: {{model: m1}}}}
  - id: beta
    sources:
      - name: eval
        kind: http_json
        timeout: 5s
        params:
          url: {url}/beta.json
          metrics:
            - {{metric: accuracy, path: $.accuracy}}
      - name: nightly
        kind: push
        params:
          expect:
            - {{metric: accuracy, labels: {{model: m2}}}}
"""


@pytest.fixture
def evaluations() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as server:
        server.route("/alpha.json", Answer({"accuracy": 0.93}))
        server.route("/beta.json", Answer("evaluation store is down", status=500))
        yield server


@pytest.fixture
def collect_env(tmp_path: Path, evaluations: LocalHttpServer) -> dict[str, str]:
    config = tmp_path / "mlmon.yaml"
    config.write_text(COLLECT_CONFIG.format(url=evaluations.url("").rstrip("/")))
    # A database file that does not exist yet: collect creates its schema.
    return {"MLMON_CONFIG": str(config), "MLMON_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh' / 'mlmon.db'}"}


def table(stdout: str) -> list[list[str]]:
    """Rows of the printed table, split into the six fixed columns and the error text."""
    lines = stdout.strip().splitlines()
    assert lines[0].split() == ["PROJECT", "SOURCE", "KIND", "OUTCOME", "SAMPLES", "TIME", "ERROR"]
    rows = []
    for line in lines[1:]:
        parts = line.split(maxsplit=6)
        rows.append(parts + [""] * (7 - len(parts)))
    return rows


def test_collect_once_exits_1_when_a_source_fails(collect_env: dict[str, str], evaluations: LocalHttpServer) -> None:
    done = mlmon("collect", "--once", env=collect_env)

    assert done.returncode == 1, done.stderr
    rows = {(r[0], r[1]): r for r in table(done.stdout)}
    assert set(rows) == {("alpha", "eval"), ("beta", "eval"), ("beta", "nightly")}
    assert rows["alpha", "eval"][2:5] == ["http_json", "ok", "1"]
    assert rows["alpha", "eval"][6] == ""
    assert rows["beta", "eval"][2:5] == ["http_json", "failed", "0"]
    assert "answered 500: evaluation store is down" in rows["beta", "eval"][6]
    assert rows["beta", "nightly"][2:5] == ["push", "failed", "0"]
    assert 'no sample of accuracy{project="beta",model="m2"} has been pushed yet' in rows["beta", "nightly"][6]

    store = Store.open(collect_env["MLMON_DATABASE_URL"])
    try:
        point = store.samples.latest(SeriesKey("alpha", "accuracy", (("model", "m1"),)))
        assert point is not None and point.value == 0.93
        assert {(s.project, s.source, s.last_outcome) for s in store.sources.statuses()} == {
            ("alpha", "eval", "ok"),
            ("beta", "eval", "failed"),
            ("beta", "nightly", "failed"),
        }
    finally:
        store.close()


def test_collect_once_for_one_project_exits_0_when_all_succeed(
    collect_env: dict[str, str], evaluations: LocalHttpServer
) -> None:
    done = mlmon("collect", "--once", "--project", "alpha", env=collect_env)

    assert done.returncode == 0, done.stdout + done.stderr
    [row] = table(done.stdout)
    assert row[:5] == ["alpha", "eval", "http_json", "ok", "1"]
    assert evaluations.requests("/beta.json") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["collect"], "pass --once"),
        (["collect", "--once", "--project", "nope"], "unknown project 'nope'"),
    ],
)
def test_collect_usage_errors_exit_2(collect_env: dict[str, str], args: list[str], message: str) -> None:
    done = mlmon(*args, env=collect_env)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_collect_with_a_refused_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(SOURCE_HEAD + "        kind: nope\n")
    done = mlmon("collect", "--once", env={"MLMON_CONFIG": str(config), "MLMON_DATABASE_URL": "sqlite://"})
    assert done.returncode == 2
    assert "configuration refused" in done.stderr
    assert f"{config}:5:" in done.stderr


# --- migrate ---------------------------------------------------------------------------------------


def test_migrate_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'mlmon.db'}"
    engine = make_engine(url)
    head = migrate.head_revision(engine)

    first = mlmon("migrate", "--database-url", url)
    second = mlmon("migrate", env={"MLMON_DATABASE_URL": url})

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"database at revision {head} (was empty)"
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"database at revision {head} (was {head})"
    try:
        assert migrate.current_revision(engine) == head
        assert {"series", "samples", "events", "source_runs", "source_state"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_check_config_refuses_an_empty_configuration_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("retention: {raw: 30d}\n")
    refused = mlmon("check-config", str(path))
    assert refused.returncode == 1
    assert (
        refused.stderr.startswith(f"{path}:1:1: projects: no projects are configured")
        and "--allow-empty" in refused.stderr
    )
    allowed = mlmon("check-config", "--allow-empty", str(path))
    assert allowed.returncode == 0 and "OK (0 projects" in allowed.stdout


def test_check_config_warns_of_unset_env_variables_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(
        SOURCE_HEAD
        + "        kind: push\n        params: {expect: [{metric: accuracy, max_age: 1h}]}\n"
        + "receivers:\n  - name: hook\n    webhook: {url_env: H16_NOT_SET_URL}\n"
        + "  - name: chat\n    slack: {url_env: H16_SET_URL}\n"
    )
    done = mlmon("check-config", str(path), env={"H16_SET_URL": "https://chat.example/hook"})
    assert done.returncode == 0, done.stderr
    line = path.read_text().splitlines().index("    webhook: {url_env: H16_NOT_SET_URL}") + 1
    assert done.stderr.strip().splitlines() == [
        f"warning: {path}:{line}:15: receivers[0].webhook.url_env: environment variable H16_NOT_SET_URL is not set"
    ]
