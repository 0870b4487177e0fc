"""A world for the verdict matrix: one project per (sources, data, alerts) combination, and one
project whose every source fails.

- sources: an `http_json` source (a quality-family source reading `latency_seconds`) that answers
  (`ok`), answers 500 (`failing`), or is configured but never run (`never`);
- data: the declared success metric `accuracy` pushed at 0.95 against a target of 0.9
  (`present`), or nothing (`absent`);
- alerts: a threshold rule on `errors` firing (`firing`, severity warning) or not (`quiet`).

`broken`: a success target and a budget, and a quality, a stack (lock file) and a spend (FOCUS)
source that all fail, through the runner, for real reasons (HTTP 500, a missing file, no FOCUS
file matching). Everything runs at NOW on a FrozenClock, through the families' code paths.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from monitor.config.settings import Settings
from monitor.core.clock import FrozenClock
from monitor.core.types import Sample, SeriesKey, ms_from_datetime
from monitor.http import HttpFactory
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.services import build_engine, prepare_database
from monitor.views.verdicts import Status
from tests.support.http_server import Answer, LocalHttpServer

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SOURCES = ("ok", "failing", "never")
DATA = ("present", "absent")
ALERTS = ("quiet", "firing")
CASES = list(itertools.product(SOURCES, DATA, ALERTS))


def case_id(sources: str, data: str, alerts: str) -> str:
    return f"m-{sources}-{data}-{alerts}"


def expected(sources: str, data: str, alerts: str) -> Status:
    """The precedence table of docs/ui.md, written out for the matrix."""
    if alerts == "firing" or sources == "failing":
        return Status.WARN  # a warning alert, or a failing source: worth a look
    if sources == "ok" and data == "present":
        return Status.OK
    return Status.NONE  # a source never run, or a declared target without a value: not known


def config_text(tmp: Path, url: str) -> str:
    lines = ["projects:"]
    for sources, data, alerts in CASES:
        pid = case_id(sources, data, alerts)
        path = "/fails" if sources == "failing" else "/latency"
        lines += [
            f"  - id: {pid}",
            "    owners: [{name: Ada, email: ada@example.com}, {name: Bob, email: bob@example.com}]",
            '    quality: {success: {metric: accuracy, op: ">=", target: 0.9}}',
            "    sources:",
            f'      - {{name: evaluator, kind: http_json, interval: 1h, params: {{url: "{url}{path}",',
            "          metrics: [{metric: latency_seconds, path: $.latency}]}}",
        ]
    lines += [
        "  - id: broken",
        "    name: Every source fails",
        "    owners: [{name: Ada, email: ada@example.com}]",
        '    quality: {success: {metric: accuracy, op: ">=", target: 0.9}}',
        "    spend: {budget: {amount: 1000}}",
        "    sources:",
        f'      - {{name: evaluator, kind: http_json, interval: 1h, params: {{url: "{url}/fails",',
        "          metrics: [{metric: latency_seconds, path: $.latency}]}}",
        f'      - {{name: deps, kind: lockfile, interval: 1h, params: {{path: "{tmp / "missing" / "requirements.txt"}"}}}}',
        f'      - {{name: bill, kind: focus, interval: 1h, params: {{path: "{tmp / "no-focus"}",',
        "          attribution: [{tag: ml-project}]}}",
        "rules:",
        "  - name: errors-seen",
        "    kind: threshold",
        "    labels: {severity: warning}",
        '    annotations: {summary: "{{ project.name }} saw errors"}',
        '    params: {metric: errors, op: ">", value: 0}',
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def matrix_runtime(tmp: Path) -> Iterator[Runtime]:
    with LocalHttpServer() as server:
        server.route("/latency", Answer({"latency": 0.2}))
        server.route("/fails", Answer({"error": "evaluation service down"}, status=500))
        (tmp / "no-focus").mkdir(parents=True, exist_ok=True)
        config = tmp / "mlmon.yaml"
        config.write_text(config_text(tmp, server.url("")))
        clock = FrozenClock(NOW)
        runtime = Runtime.create(Settings(config=config, database_url=f"sqlite:///{tmp / 'mlmon.db'}"), clock=clock)
        prepare_database(runtime)
        runner = SourceRunner(runtime.store, clock, HttpFactory(timeout=10))
        for plan in runtime.plans:
            if plan.project.startswith("m-never"):
                continue
            runner.run(plan)
        at = ms_from_datetime(NOW)
        samples = []
        for sources, data, alerts in CASES:
            pid = case_id(sources, data, alerts)
            if data == "present":
                samples.append(Sample(SeriesKey(pid, "accuracy", ()), at, 0.95))
            samples.append(Sample(SeriesKey(pid, "errors", ()), at, 1.0 if alerts == "firing" else 0.0))
        runtime.store.samples.append(samples)
        build_engine(runtime).evaluate()
        try:
            yield runtime
        finally:
            runtime.store.close()
