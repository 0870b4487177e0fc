"""The http_json source against a real local HTTP(S) server."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collectors import REGISTRY
from collectors.base import CollectContext, CollectResult, Reading
from collectors.checks import check_sources
from collectors.http_json import KIND
from monitor.config.loader import parse_config
from monitor.config.models import SourceConfig
from monitor.core.clock import SystemClock
from monitor.core.errors import ConfigError, SourceError, SourceUnavailable
from monitor.core.types import SeriesKey, ms_from_datetime
from monitor.http import USER_AGENT, HttpFactory
from monitor.plans import SourcePlan
from monitor.runner import SourceRunner
from monitor.store.store import Store
from tests.support.http_server import Answer, LocalHttpServer, require_auth, self_signed_cert
from tests.support.peers import free_port


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as running:
        yield running


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    opened = Store.open(sqlite_url)
    yield opened
    opened.close()


def collect(store: Store, params: Mapping[str, Any], env: Mapping[str, str] | None = None) -> CollectResult:
    ctx = CollectContext(
        project="churn",
        source="eval",
        now=datetime.now(UTC),
        timeout=5.0,
        reader=store.samples,
        events=store.events,
        checkpoint={},
        http=HttpFactory(timeout=5.0),
        env=env or {},
    )
    return KIND.create(params).collect(ctx)


def accuracy(url: str, path: str = "$.accuracy", **extra: Any) -> dict[str, Any]:
    return {"url": url, "metrics": [{"metric": "accuracy", "path": path, **extra}]}


def test_simple_paths(server: LocalHttpServer, sqlite_store: Store) -> None:
    server.route("/eval.json", Answer({"eval": {"accuracy": 0.93, "samples": 1200}}))
    params = {
        "url": server.url("/eval.json"),
        "metrics": [
            {"metric": "accuracy", "path": "$.eval.accuracy", "labels": {"split": "test"}},
            {"metric": "eval_examples", "path": "$.eval.samples"},
        ],
    }

    result = collect(sqlite_store, params)

    assert result.readings == [
        Reading("accuracy", 0.93, {"split": "test"}, None),
        Reading("eval_examples", 1200.0, {}, None),
    ]
    [request] = server.requests("/eval.json")
    assert request.method == "GET"
    assert request.header("User-Agent") == USER_AGENT


def test_wildcard_with_value_label_paths_and_timestamps(server: LocalHttpServer, sqlite_store: Store) -> None:
    server.route(
        "/models.json",
        Answer(
            {
                "models": [
                    {"name": "churn-v7", "scores": {"acc": 0.91}, "evaluated_at": "2026-11-20T11:00:00Z"},
                    {"name": "churn-v8", "scores": {"acc": "0.94"}, "evaluated_at": 1795690800},
                    {"name": "churn-v9", "scores": {"acc": 0.95}, "evaluated_at": 1795690800250},
                ]
            }
        ),
    )
    params = accuracy(
        server.url("/models.json"),
        path="$.models[*]",
        value="scores.acc",
        labels={"split": "test"},
        label_paths={"model": "name"},
        timestamp="evaluated_at",
    )

    result = collect(sqlite_store, params)

    assert [(r.metric, r.value, dict(r.labels)) for r in result.readings] == [
        ("accuracy", 0.91, {"split": "test", "model": "churn-v7"}),
        ("accuracy", 0.94, {"split": "test", "model": "churn-v8"}),
        ("accuracy", 0.95, {"split": "test", "model": "churn-v9"}),
    ]
    assert [r.ts for r in result.readings] == [
        datetime(2026, 11, 20, 11, 0, tzinfo=UTC),
        datetime.fromtimestamp(1795690800, UTC),
        datetime.fromtimestamp(1795690800.25, UTC),
    ]


def test_headers_are_filled_from_the_environment(server: LocalHttpServer, sqlite_store: Store) -> None:
    server.route("/eval.json", require_auth({"Authorization": "Bearer s3cret"}, Answer({"accuracy": 0.9})))
    params = {**accuracy(server.url("/eval.json")), "headers": {"Authorization": "Bearer ${EVAL_TOKEN}"}}

    assert collect(sqlite_store, params, {"EVAL_TOKEN": "s3cret"}).readings[0].value == 0.9

    with pytest.raises(SourceError, match=r"answered 401: .*header Authorization is 'Bearer wrong'"):
        collect(sqlite_store, params, {"EVAL_TOKEN": "wrong"})

    before = len(server.requests())
    with pytest.raises(SourceError, match=r"environment variable EVAL_TOKEN \(used in header Authorization\)"):
        collect(sqlite_store, params, {})
    assert len(server.requests()) == before, "no request without the credential"


def test_the_url_names_the_listen_address_from_the_environment(server: LocalHttpServer, sqlite_store: Store) -> None:
    """How the example's self-polling source follows `mlmon serve --listen` (MLMON_LISTEN)."""
    server.route("/api/v1/status", Answer({"accuracy": 0.8}))
    address = server.url("/").removeprefix("http://").rstrip("/")
    params = accuracy("http://${MLMON_LISTEN}/api/v1/status")

    assert collect(sqlite_store, params, {"MLMON_LISTEN": address}).readings[0].value == 0.8

    before = len(server.requests())
    with pytest.raises(SourceError, match=r"environment variable MLMON_LISTEN \(used in url\) is not set"):
        collect(sqlite_store, params, {})
    assert len(server.requests()) == before


def test_basic_auth_from_the_environment(server: LocalHttpServer, sqlite_store: Store) -> None:
    token = base64.b64encode(b"ada:hunter2").decode()
    server.route("/eval.json", require_auth({"Authorization": f"Basic {token}"}, Answer({"accuracy": 0.9})))
    params = {
        **accuracy(server.url("/eval.json")),
        "basic_auth": {"username_env": "EVAL_USER", "password_env": "EVAL_PASSWORD"},
    }

    result = collect(sqlite_store, params, {"EVAL_USER": "ada", "EVAL_PASSWORD": "hunter2"})
    assert result.readings[0].value == 0.9

    with pytest.raises(SourceError, match="answered 401"):
        collect(sqlite_store, params, {"EVAL_USER": "ada", "EVAL_PASSWORD": "wrong"})
    with pytest.raises(SourceError, match=r"EVAL_PASSWORD \(basic auth password\) is not set"):
        collect(sqlite_store, params, {"EVAL_USER": "ada"})


FAILURES: list[tuple[str, Answer, dict[str, Any], type[SourceError], str]] = [
    (
        "path-matches-nothing",
        Answer({"eval": {}}),
        {"path": "$.eval.accuracy"},
        SourceError,
        r"JSONPath '\$\.eval\.accuracy' matched nothing in the answer of http://127\.0\.0\.1:\d+/doc",
    ),
    (
        "value-path-matches-nothing",
        Answer({"models": [{"acc": 1}, {"f1": 2}]}),
        {"path": "$.models[*]", "value": "acc"},
        SourceError,
        r"value path acc matched nothing inside \$\.models\[\*\]\[1\]",
    ),
    (
        "string",
        Answer({"accuracy": "high"}),
        {},
        SourceError,
        r"\$\.accuracy: expected a number for accuracy, got 'high'",
    ),
    ("null", Answer({"accuracy": None}), {}, SourceError, "expected a number for accuracy, got NoneType"),
    ("bool", Answer({"accuracy": True}), {}, SourceError, "expected a number for accuracy, got bool"),
    ("object", Answer({"accuracy": {"v": 1}}), {}, SourceError, "expected a number for accuracy, got dict"),
    ("nan-literal", Answer(b'{"accuracy": NaN}'), {}, SourceError, r"accuracy is nan, not a finite number"),
    ("nan-string", Answer({"accuracy": "NaN"}), {}, SourceError, r"accuracy is 'NaN', not a finite number"),
    ("infinity", Answer(b'{"accuracy": Infinity}'), {}, SourceError, "not a finite number"),
    (
        "bad-timestamp",
        Answer({"m": [{"v": 1, "at": "yesterday"}]}),
        {"path": "$.m[*]", "value": "v", "timestamp": "at"},
        SourceError,
        "timestamp 'yesterday' is neither epoch seconds nor ISO 8601",
    ),
    (
        "status-500",
        Answer("database is down", status=500),
        {},
        SourceUnavailable,
        r"GET http://127\.0\.0\.1:\d+/doc answered 500: database is down",
    ),
    ("status-503", Answer({"error": "warming up"}, status=503), {}, SourceUnavailable, "answered 503"),
    ("status-404", Answer("no such evaluation", status=404), {}, SourceError, "answered 404: no such evaluation"),
    (
        "not-json",
        Answer("<html><body>maintenance</body></html>"),
        {},
        SourceError,
        r"GET http://127\.0\.0\.1:\d+/doc did not return JSON .*<html><body>maintenance",
    ),
    ("empty-body", Answer(b""), {}, SourceError, "did not return JSON"),
]


@pytest.mark.parametrize(
    ("answer", "spec", "error", "pattern"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_failures_name_the_problem(
    server: LocalHttpServer,
    sqlite_store: Store,
    answer: Answer,
    spec: dict[str, Any],
    error: type[SourceError],
    pattern: str,
) -> None:
    server.route("/doc", answer)
    with pytest.raises(error, match=pattern) as raised:
        collect(sqlite_store, accuracy(server.url("/doc"), **spec))
    if error is SourceError:
        assert not isinstance(raised.value, SourceUnavailable), "only unreachable sources are 'unavailable'"


def test_credentials_in_the_url_are_not_shown_in_errors(server: LocalHttpServer, sqlite_store: Store) -> None:
    server.route("/doc", Answer("boom", status=500))
    url = server.url("/doc").replace("http://", "http://ada:hunter2@")
    with pytest.raises(SourceUnavailable) as raised:
        collect(sqlite_store, accuracy(url))
    assert "answered 500" in str(raised.value)
    assert "hunter2" not in str(raised.value)
    assert server.requests("/doc")[0].header("Authorization") == "Basic " + base64.b64encode(b"ada:hunter2").decode()


def test_connection_refused_is_unavailable(sqlite_store: Store) -> None:
    url = f"http://127.0.0.1:{free_port()}/doc"
    with pytest.raises(SourceUnavailable, match=rf"GET {url} failed"):
        collect(sqlite_store, accuracy(url))


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LocalHttpServer, Path]]:
    cert = self_signed_cert(tmp_path)
    with LocalHttpServer(tls=cert.server_context()) as running:
        running.route("/doc", Answer({"accuracy": 0.9}))
        yield running, cert.cert


def test_https_with_a_self_signed_certificate(tls_server: tuple[LocalHttpServer, Path], sqlite_store: Store) -> None:
    server, cert = tls_server
    params = accuracy(server.url("/doc"))

    with pytest.raises(
        SourceUnavailable, match=r"GET https://127\.0\.0\.1:\d+/doc failed: .*CERTIFICATE_VERIFY_FAILED"
    ):
        collect(sqlite_store, params)

    assert collect(sqlite_store, {**params, "ca_file": str(cert)}).readings[0].value == 0.9
    assert collect(sqlite_store, {**params, "verify_tls": False}).readings[0].value == 0.9
    with pytest.raises(SourceError, match=r"cannot load the CA file .*missing\.pem"):
        collect(sqlite_store, {**params, "ca_file": str(cert.with_name("missing.pem"))})


def test_runner_stores_readings_and_records_failures(server: LocalHttpServer, store: Store) -> None:
    server.route("/models.json", Answer({"models": [{"name": "a", "acc": 0.8}, {"name": "b", "acc": 0.9}]}))
    runner = SourceRunner(store, SystemClock())
    params = accuracy(server.url("/models.json"), path="$.models[*]", value="acc", label_paths={"model": "name"})
    config = SourceConfig(name="eval", kind="http_json", timeout="5s", params=params)
    plan = SourcePlan("churn", config, KIND.create(params))

    record = runner.run(plan)

    assert (record.outcome, record.samples) == ("ok", 2)
    for model, value in (("a", 0.8), ("b", 0.9)):
        point = store.samples.latest(SeriesKey("churn", "accuracy", (("model", model),)))
        assert point is not None and point.value == value
        assert abs(point.ts_ms - ms_from_datetime(record.started_at)) < 1000

    server.route("/models.json", Answer({"models": []}))
    failed = runner.run(plan)
    assert failed.outcome == "failed"
    assert failed.error is not None and "JSONPath '$.models[*]' matched nothing" in failed.error
    status = store.sources.status("churn", "eval")
    assert status is not None and status.last_error == failed.error


CONFIG_ERRORS = [
    ("path", {"path": "$.[[["}, "metrics[0].path", "invalid JSONPath '$.[[['"),
    ("filter", {"path": "$.models[?(@.x >)]"}, "metrics[0].path", "invalid JSONPath"),
    ("value", {"path": "$.m[*]", "value": "a..["}, "metrics[0].value", "invalid JSONPath 'a..['"),
    ("timestamp", {"path": "$.m[*]", "value": "v", "timestamp": "(("}, "metrics[0].timestamp", "invalid JSONPath"),
    (
        "label-path",
        {"path": "$.m[*]", "value": "v", "label_paths": {"model": "]"}},
        "metrics[0].label_paths",
        "label 'model': invalid JSONPath",
    ),
    (
        "label-name",
        {"path": "$.m[*]", "value": "v", "label_paths": {"project": "name"}},
        "metrics[0].label_paths",
        "label name 'project' is reserved",
    ),
]


@pytest.mark.parametrize(
    ("spec", "field", "message"), [c[1:] for c in CONFIG_ERRORS], ids=[c[0] for c in CONFIG_ERRORS]
)
def test_invalid_jsonpath_is_a_config_error_with_its_line(spec: dict[str, str], field: str, message: str) -> None:
    lines = [
        "projects:",
        "  - id: churn",
        "    sources:",
        "      - name: eval",
        "        kind: http_json",
        "        params:",
        "          url: http://eval.internal/latest.json",
        "          metrics:",
        "            - metric: accuracy",
        *[
            f"              {key}: {value!r}" if isinstance(value, str) else f"              {key}: {value}"
            for key, value in spec.items()
        ],
    ]
    text = "\n".join(lines) + "\n"
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "mlmon.yaml", [check_sources(REGISTRY)])
    [issue] = raised.value.issues
    key = field.rsplit(".", 1)[-1]
    line = next(i for i, text_line in enumerate(lines, 1) if text_line.strip().startswith(f"{key}:"))
    assert issue.where.startswith(f"mlmon.yaml:{line}:")
    assert issue.field == f"projects[0].sources[0].params.{field}"
    assert message in issue.message


def test_an_answer_over_the_size_limit_fails_the_run_while_it_is_read(
    server: LocalHttpServer, sqlite_store: Store
) -> None:
    import gzip
    import json as json_module

    big = {"accuracy": 0.9, "padding": "x" * 300_000}
    server.route("/big.json", Answer(big))
    # 300 kB of JSON sent as a 1 kB gzip body: only counting while decoding catches it
    packed = gzip.compress(json_module.dumps(big).encode())
    server.route("/packed.json", Answer(packed, headers={"Content-Encoding": "gzip"}))
    for path in ("/big.json", "/packed.json"):
        with pytest.raises(SourceError, match="the limit is 100,000"):
            collect(sqlite_store, {**accuracy(server.url(path)), "max_response_bytes": 100_000})
    # the default (8 MiB) reads it
    assert collect(sqlite_store, accuracy(server.url("/packed.json"))).readings[0].value == 0.9


def test_json_nested_too_deeply_is_a_clear_error(server: LocalHttpServer, sqlite_store: Store) -> None:
    server.route("/deep.json", Answer("[" * 100_000 + "]" * 100_000))
    with pytest.raises(SourceError, match="nested too deeply"):
        collect(sqlite_store, accuracy(server.url("/deep.json")))
