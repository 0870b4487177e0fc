"""/metrics: stored series as gauges, source health from the store, clean for promtool."""

from __future__ import annotations

import subprocess
from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.core.types import Sample, SeriesKey, ms_from_datetime
from monitor.store.sources import RunRecord
from tests.conftest import BASIC_CONFIG, RuntimeFactory, token_headers
from tests.support.peers import require_binary


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_metrics_reflect_the_store_and_pass_promtool(make_runtime: RuntimeFactory, clock: FrozenClock) -> None:
    runtime = make_runtime(BASIC_CONFIG, clock=clock)
    now = ms_from_datetime(clock.now())
    runtime.store.samples.append(
        [
            Sample(SeriesKey("churn", "accuracy", (("model", "v7"),)), now - 1000, 0.80),
            Sample(SeriesKey("churn", "accuracy", (("model", "v7"),)), now, 0.91),
            Sample(SeriesKey("vision", "accuracy", ()), now, 0.75),
            Sample(SeriesKey("vision", "gpu_spend_usd", (("sku", 'a"b\\c'),)), now, 1234.5),
        ]
    )
    start = clock.now() - timedelta(seconds=3)
    runtime.store.sources.record(RunRecord("churn", "eval", "http_json", start, 1.5, "ok", samples=2))
    runtime.store.sources.record(RunRecord("churn", "eval", "http_json", clock.now(), 0.5, "failed", "boom"))
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        client.get("/healthz")
        text = client.get("/metrics").text
    metrics = _families(text)
    assert metrics["mlmon_accuracy"][(("model", "v7"), ("project", "churn"))] == 0.91
    assert metrics["mlmon_accuracy"][(("project", "vision"),)] == 0.75
    assert metrics["mlmon_gpu_spend_usd"][(("project", "vision"), ("sku", 'a"b\\c'))] == 1234.5
    source = (("kind", "http_json"), ("project", "churn"), ("source", "eval"))
    assert metrics["mlmon_source_up"][source] == 0.0
    assert metrics["mlmon_source_last_success_timestamp_seconds"][source] == start.timestamp()
    assert metrics["mlmon_source_consecutive_failures"][source] == 1.0
    assert metrics["mlmon_source_run_duration_seconds_count"][source] == 2.0
    assert metrics["mlmon_source_run_duration_seconds_sum"][source] == 2.0
    assert metrics["mlmon_source_failures_total"][source] == 1.0
    assert metrics["mlmon_project_owners"][(("project", "churn"),)] == 1.0
    assert metrics["mlmon_config_last_reload_successful"][()] == 1.0
    assert metrics["mlmon_scrape_store_readable"][()] == 1.0
    assert any(name == "mlmon_http_requests_total" for name in metrics)

    promtool = require_binary("promtool", "install the Debian package prometheus (apt-get install prometheus)")
    check = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    assert check.returncode == 0, check.stderr.decode()
    assert check.stderr == b""


def test_two_apps_on_one_store_agree(make_runtime: RuntimeFactory, clock: FrozenClock) -> None:
    """Like two web workers: the store's view is identical whichever one is scraped."""
    first = make_runtime(BASIC_CONFIG, clock=clock)
    second = make_runtime(BASIC_CONFIG, database_url=str(first.store.engine.url), clock=clock)
    first.store.samples.append([Sample(SeriesKey("churn", "accuracy", ()), ms_from_datetime(clock.now()), 0.9)])
    with TestClient(create_app(first)) as a, TestClient(create_app(second)) as b:
        assert (
            _families(a.get("/metrics").text)["mlmon_accuracy"] == _families(b.get("/metrics").text)["mlmon_accuracy"]
        )
