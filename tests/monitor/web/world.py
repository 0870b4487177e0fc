"""A month of four projects, made the way the service makes it, for the UI tests.

NOW is 2026-11-20 12:00 UTC (a FrozenClock the server shares). Over the 30 days before it:

- finops holds the spend sources: `aws` reads a FOCUS export (real sample rows re-dated, one GPU
  charge a day per project) and `k8s` OpenCost's allocation API (a local server answering the
  documented shape; churn's GPUs are busy 25% of the time held); both run through the runner;
- churn (two owners, target accuracy >= 0.92 on model churn-classifier, budget 3,000 USD): a
  daily accuracy around 0.94, model version 7 -> 8 on day 20 after which accuracy falls to
  0.88 (the `accuracy-low` rule fires, critical); a `baseline` source (0.93) run on each
  sync; a pushed feature reference and, on day 24, a shifted batch (drift); torch 2.7.1 from a
  lock file, which the real OSV records (../shared/data/osv) make vulnerable, one fix overdue;
- vision (one owner, no target, budget 500 USD, overspent): torch 2.6.0+cu124;
- ranker (no owner, no budget, no baseline): torch 2.10.0.

Stack syncs run at START and NOW with the real advisory records and torch's real release history
(a PEP 691 index on a local server). Secrets (a webhook URL, an SMTP password) are in the
environment, named by the configuration, and must never show up in a page.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.auth.model import Role
from monitor.config.settings import Settings
from monitor.core.clock import FrozenClock
from monitor.core.types import Sample, SeriesKey, ms_from_datetime
from monitor.http import HttpFactory
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.services import build_engine, prepare_database
from monitor.stack.sync import tick
from monitor.web.routes import install
from tests.monitor.spend.focus_data import Charge, require_pyarrow, write_focus
from tests.monitor.spend.servers import QueryRecordingServer
from tests.monitor.spend.test_opencost import allocation, asked
from tests.monitor.stack.support import PackageIndex, torch_releases
from tests.support.http_server import Answer, LocalHttpServer, Seen
from tests.support.peers import free_port, shared_data, wait_until

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
START = NOW - timedelta(days=30)
VERSION_CHANGE = START + timedelta(days=20, hours=6)
DRIFT_AT = START + timedelta(days=24, hours=3)
SECRETS = {
    "MLMON_UI_WEBHOOK_URL": "https://hooks.example.com/services/T000/B000/s3cr3t-webhook-path",
    "MLMON_UI_SLACK_URL": "https://hooks.slack.example.com/services/XOXB-secret-slack",
    "MLMON_UI_SMTP_PASSWORD": "smtp-pa55word-do-not-show",
    "MLMON_UI_SMTP_USER": "mailer",
}


def config_text(tmp: Path, opencost_url: str, index_url: str, anonymous: str = "viewer") -> str:
    def lock(project: str) -> str:
        return f'{{name: deps, kind: lockfile, interval: 1h, params: {{path: "{tmp / project / "requirements.txt"}"}}}}'

    return f"""
auth: {{anonymous: {anonymous}}}
projects:
  - id: finops
    name: FinOps
    team: platform
    owners: [{{name: Fin, email: fin@example.com}}, {{name: Ops, slack: "#finops"}}]
    sources:
      - {{name: aws, kind: focus, interval: 1h, params: {{path: "{tmp / "focus"}", attribution: [{{tag: ml-project}}]}}}}
      - {{name: k8s, kind: opencost, interval: 1h, params: {{url: "{opencost_url}", aggregate: "label:ml-project",
          backfill: 30d, currency: USD}}}}
  - id: churn
    name: Churn classifier
    team: growth
    owners: [{{name: Ada, email: ada@example.com, slack: "@ada"}}, {{name: Bob, email: bob@example.com}}]
    labels: {{tier: gold}}
    quality:
      success: {{metric: accuracy, op: ">=", target: 0.92, labels: {{model: churn-classifier}}}}
    spend:
      budget: {{amount: 3000, thresholds: {{actual: ["50%", "100%"], forecast: ["100%"]}}}}
      fixed_costs: [{{name: ML engineers, category: people, monthly: 20000}}]
      accuracy: {{metric: accuracy, match: ['model="churn-classifier"']}}
    sources:
      - {lock("churn")}
      - {{name: baselines, kind: baseline, interval: 1h, params: {{baselines: [{{metric: accuracy,
          match: ['model="churn-classifier"'], value: 0.93}}]}}}}
  - id: vision
    name: Vision
    team: perception
    owners: [{{name: Grace, email: grace@example.com}}]
    spend: {{budget: {{amount: 500}}}}
    sources:
      - {lock("vision")}
  - id: ranker
    team: search
    sources:
      - {lock("ranker")}
rules:
  - name: accuracy-low
    kind: threshold
    labels: {{severity: critical}}
    annotations: {{summary: "{{{{ project.name }}}} accuracy is {{{{ value | percent }}}}"}}
    params: {{metric: accuracy, op: "<", value: 0.9}}
  - name: feature-drift
    kind: distribution
    projects: [churn]
    labels: {{severity: warning}}
    params: {{dataset: features, psi: 0.2, wasserstein: 0.2, jensen_shannon: null}}
receivers:
  - name: oncall
    webhook: {{url_env: MLMON_UI_WEBHOOK_URL}}
  - name: owners
    slack: {{url_env: MLMON_UI_SLACK_URL}}
    email: {{to: [owners], smtp: {{host: 127.0.0.1, port: 2525, from: mlmon@example.com,
             username_env: MLMON_UI_SMTP_USER, password_env: MLMON_UI_SMTP_PASSWORD}}}}
route:
  receiver: owners
  routes: [{{matchers: ['severity="critical"'], receiver: oncall, continue: true}}]
stack:
  advisories: {{path: "{shared_data("osv")}", refresh: 6h}}
  index: {{url: "{index_url}", packages: [torch], refresh: 6h}}
"""


def opencost_answer(server: QueryRecordingServer) -> Callable[[Seen], Answer]:
    """Every day the same: churn holds 24 GPU-hours busy a quarter of the time, vision 8 at 90%,
    for the window asked (OpenCost echoes it; mlmon refuses another)."""

    def answer(seen: Seen) -> Answer:
        del seen
        window = asked(server)
        sets = {
            "churn": allocation(
                "churn", "ml-churn", gpu_hours=24, gpu_cost=60, total=64, efficiency=0.25, window=window
            ),
            "vision": allocation("vision", "vision", gpu_hours=8, gpu_cost=20, total=22, efficiency=0.9, window=window),
        }
        return Answer({"code": 200, "status": "success", "data": [sets]})

    return answer


def focus_charges() -> list[Charge]:
    charges = []
    day = START.replace(hour=0)
    while day < NOW:
        for project, amount in (("churn", 85.0), ("vision", 30.0)):
            charges.append(Charge(day + timedelta(hours=1), amount + (day.day % 3), project))
        day += timedelta(days=1)
    return charges


def accuracy_samples() -> list[Sample]:
    key = SeriesKey("churn", "accuracy", (("model", "churn-classifier"),))
    examples = SeriesKey("churn", "accuracy_examples", (("model", "churn-classifier"),))
    vision = SeriesKey("vision", "accuracy", (("model", "resnet"),))
    out = []
    moment = START + timedelta(hours=2)
    while moment <= NOW:
        before = moment < VERSION_CHANGE
        days_after = (moment - VERSION_CHANGE).total_seconds() / 86400
        value = 0.94 + 0.004 * ((moment.day % 3) - 1) if before else max(0.88, 0.925 - 0.005 * days_after)
        ts = ms_from_datetime(moment)
        out += [Sample(key, ts, value), Sample(examples, ts, 5000.0), Sample(vision, ts, 0.81)]
        moment += timedelta(hours=12)
    # and a minute ago: a threshold rule reads no point older than Prometheus' 5-minute lookback
    ts = ms_from_datetime(NOW - timedelta(minutes=1))
    out += [Sample(key, ts, out[-3].value), Sample(examples, ts, 5000.0), Sample(vision, ts, 0.81)]
    return out


@dataclass
class World:
    runtime: Runtime
    clock: FrozenClock
    tmp: Path
    tokens: dict[str, str] = field(default_factory=dict)
    """role name -> token: admin, viewer, owner (churn), other_owner (vision), auditor, expired."""
    url: str = ""
    app: Any = None
    """The app the ThreadServer serves (its failed-attempt count is reset before each test)."""

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}

    def client(self, **kwargs: Any) -> TestClient:
        return TestClient(web_app(self.runtime), raise_server_exceptions=False, **kwargs)


def web_app(runtime: Runtime) -> FastAPI:
    """The service's app, with the UI installed unless `create_app` already does it."""
    app = create_app(runtime)
    if not any(getattr(route, "path", None) == "/login" for route in app.routes):
        install(app)
    return app


def _write(tmp: Path, project: str, text: str) -> None:
    path = tmp / project / "requirements.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _push(client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> None:
    answer = client.post(path, json=body, headers=headers)
    assert answer.status_code == 200, answer.text


def build_world(
    tmp: Path, opencost_url: str, index_url: str, anonymous: str = "viewer", database_url: str | None = None
) -> World:
    require_pyarrow()
    for name, value in SECRETS.items():
        os.environ[name] = value
    clock = FrozenClock(START)
    (tmp / "focus").mkdir(parents=True, exist_ok=True)
    config = tmp / "mlmon.yaml"
    config.write_text(config_text(tmp, opencost_url, index_url, anonymous))
    url = database_url or f"sqlite:///{tmp / 'mlmon.db'}"
    runtime = Runtime.create(Settings(config=config, database_url=url), clock=clock)
    prepare_database(runtime)
    world = World(runtime, clock, tmp)
    _write(tmp, "churn", "torch==2.7.1\nrequests==2.32.3\n")
    _write(tmp, "vision", "torch==2.6.0+cu124\nnumpy==2.2.6\n")
    _write(tmp, "ranker", "torch==2.10.0\n")
    tokens = runtime.tokens
    # a token that expired long before NOW
    world.tokens["expired"], _ = tokens.create("old-laptop", Role.VIEWER, (), "tests", START, START + timedelta(days=1))
    runtime.store.samples.append(accuracy_samples())
    runner = SourceRunner(runtime.store, clock, HttpFactory(timeout=10))
    stack_plans = [p for p in runtime.plans if p.kind in ("lockfile", "baseline")]
    for plan in stack_plans:
        assert runner.run(plan).ok
    assert not tick(runtime.store, runtime.config, START, HttpFactory(timeout=10), {}).reconcile.errors

    clock.set(NOW)
    for who, role, projects in (("admin", Role.ADMIN, ()), ("viewer", Role.VIEWER, ()), ("auditor", Role.AUDITOR, ()),
                                ("owner", Role.OWNER, ("churn",)), ("other_owner", Role.OWNER, ("vision",))):  # fmt: skip
        world.tokens[who], _ = tokens.create(f"ui-{who}", role, projects, "tests", NOW)
    write_focus(tmp / "focus" / "aws-2026-11.csv", focus_charges())
    for plan in runtime.plans:
        record = runner.run(plan)
        assert record.ok, f"{plan.id}: {record.error}"
    assert not tick(runtime.store, runtime.config, NOW, HttpFactory(timeout=10), {}).reconcile.errors

    engine = build_engine(runtime)
    with world.client() as client:
        admin = world.headers("admin")
        event = {"project": "churn", "kind": "model_version", "subject": "churn-classifier", "old": "7", "new": "8",
                 "timestamp": VERSION_CHANGE.isoformat(), "labels": {"model": "churn-classifier", "alias": "production"}}  # fmt: skip
        _push(client, admin, "/api/v1/events", {"events": [event]})
        reference = {"project": "churn", "dataset": "features", "role": "reference", "labels": {"model": "churn-classifier"},
                     "timestamp": (START + timedelta(days=1)).isoformat(),
                     "columns": {"age": {"values": [float(20 + i % 40) for i in range(2000)]}}}  # fmt: skip
        _push(client, admin, "/api/v1/quality/distributions", reference)
        for at, shift in ((START + timedelta(days=10), 0.0), (DRIFT_AT, 15.0)):
            batch = {"project": "churn", "dataset": "features", "labels": {"model": "churn-classifier"},
                     "timestamp": at.isoformat(),
                     "columns": {"age": {"values": [float(20 + i % 40) + shift for i in range(2000)]}}}  # fmt: skip
            _push(client, admin, "/api/v1/quality/distributions", batch)
    engine.evaluate()
    return world


class ThreadServer:
    """uvicorn serving the app in a thread of the test process (the runtime and its clock are shared)."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, name="ui-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started, 20, what="uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@contextmanager
def peers() -> Iterator[tuple[str, str]]:
    """The OpenCost and package index servers (kept up while a world is built)."""
    with QueryRecordingServer() as opencost, LocalHttpServer() as index:
        opencost.route("/allocation", opencost_answer(opencost))
        PackageIndex(index, {"torch": torch_releases()})
        yield opencost.url(""), index.url("/simple")
