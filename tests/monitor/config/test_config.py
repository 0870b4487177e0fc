"""Configuration: every error names the file, line, field and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors import REGISTRY
from collectors.checks import check_sources
from monitor.config import load_config, parse_config
from monitor.config.settings import Settings
from monitor.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bad.yaml", [check_sources(REGISTRY)])
    return [str(i) for i in info.value.issues]


def test_example_config_is_valid() -> None:
    config = load_config(REPO / "examples" / "mlmon.yaml", [check_sources(REGISTRY)])
    assert {p.id for p in config.projects} == {"mlmon-self", "churn"}
    churn = config.project("churn")
    assert churn is not None and churn.owners[0].email == "ada@example.com"
    assert churn.sources[0].interval.total_seconds() == 60


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("projects:\n  - id: Bad Id\n", "bad.yaml:2:5: projects[0].id: project id 'Bad Id' must match"),
        (
            "projects:\n  - id: a\n    ownrs: []\n",
            "bad.yaml:3:5: projects[0].ownrs: unknown key 'ownrs'; did you mean 'owners'?",
        ),
        (
            "projects:\n  - id: a\n    sources:\n      - name: s\n        kind: push\n        interval: often\n",
            "bad.yaml:6:9: projects[0].sources[0].interval: expected a duration like '30s', '5m' or '1h30m', got 'often'",
        ),
        (
            "projects:\n  - id: a\n    sources:\n      - name: s\n        kind: nope\n",
            "bad.yaml:5:9: projects[0].sources[0].kind: unknown source kind 'nope'; expected one of:",
        ),
        (
            "projects:\n  - id: a\n    sources:\n      - name: s\n        kind: http_json\n        params:\n"
            "          url: ftp://x\n          metrics: [{metric: accuracy, path: $.a}]\n",
            "bad.yaml:7:11: projects[0].sources[0].params.url: expected an http:// or https:// URL, got 'ftp://x'",
        ),
        (
            "projects:\n  - id: a\n    sources:\n      - name: s\n        kind: http_json\n        params:\n"
            "          url: http://x\n          metrics:\n            - {metric: accuracy, path: '$[?(' }\n",
            "bad.yaml:9:34: projects[0].sources[0].params.metrics[0].path: invalid JSONPath",
        ),
        (
            "projects:\n  - id: a\n    owners:\n      - name: Ada\n",
            "bad.yaml:4:9: projects[0].owners[0]: owner 'Ada' needs an email or a slack",
        ),
        (
            "projects:\n  - id: a\n    owners:\n      - {name: A, slack: 'ada'}\n",
            "projects[0].owners[0].slack: expected a Slack @handle",
        ),
        ("projects:\n  - id: a\n  - id: a\n", "project id 'a' is declared twice"),
        (
            "projects:\n  - id: a\n    labels: {project: x}\n",
            "projects[0].labels: label name 'project' is reserved",
        ),
        ("projects: [\n", "bad.yaml:2:1: invalid YAML"),
        ("projects:\n  - id: a\n  - id: b\n    id: c\n", "bad.yaml:4:5: invalid YAML"),
        ("- a\n- b\n", "bad.yaml:1: expected a mapping at the top of the file"),
        ("retention:\n  raw: 400d\n  hourly: 30d\n", "retention: retention.hourly must be at least as long"),
    ],
)
def test_errors_name_file_line_field_and_expectation(text: str, expected: str) -> None:
    errors = _errors(text)
    assert any(expected in e for e in errors), errors


def test_every_problem_is_reported_at_once() -> None:
    text = "projects:\n  - id: a\n    ownrs: []\n  - id: B\n    sources:\n      - {name: s, kind: push, interval: x}\n"
    assert len(_errors(text)) == 3


def test_non_utf8_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"projects:\n  - id: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.yaml:2: expected UTF-8"):
        load_config(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(tmp_path / "absent.yaml")


def test_empty_file_is_an_empty_configuration() -> None:
    assert parse_config("", "empty.yaml").projects == []


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLMON_DATABASE_URL", "postgresql+psycopg://u@db/mlmon")
    monkeypatch.setenv("MLMON_CONFIG", "/etc/mlmon.yaml")
    monkeypatch.setenv("MLMON_LISTEN", "0.0.0.0:9000")
    settings = Settings()
    assert (settings.database_url, str(settings.config), settings.host, settings.port) == (
        "postgresql+psycopg://u@db/mlmon",
        "/etc/mlmon.yaml",
        "0.0.0.0",
        9000,
    )
    monkeypatch.setenv("MLMON_LISTEN", "nope")
    with pytest.raises(ValueError, match="MLMON_LISTEN: expected host:port"):
        Settings()
