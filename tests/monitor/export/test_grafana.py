"""The Grafana dashboards: valid dashboard JSON wired to the provisioned datasource, every query
valid PromQL (promtool), and every metric a panel reads really exported by mlmon: a real
`mlmon serve` over a store filled by the families' own sources and APIs (OpenCost, lock file,
OSV database, package index, pushed distributions, alerts and notifications), scraped by a real
Prometheus that must answer every panel query with data."""

from __future__ import annotations

import json
import random
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from alerts.dispatcher import Dispatcher
from alerts.kinds import REGISTRY as RULE_KINDS
from alerts.store import OutboxStore
from monitor.auth.model import Role
from monitor.auth.tokens import TokenStore
from monitor.config.loader import load_config
from monitor.config.settings import Settings
from monitor.core.types import Sample, SeriesKey, ms_from_datetime
from monitor.export.prometheus_rules import export_rules
from monitor.http import HttpFactory
from monitor.quality.distributions import ReferenceCache, ingest, parse_push
from monitor.runner import SourceRunner
from monitor.runtime import Runtime, config_checks
from monitor.services import build_engine, prepare_database
from monitor.stack.sync import tick
from tests.monitor.spend.servers import QueryRecordingServer
from tests.monitor.spend.test_opencost import echoing
from tests.monitor.stack.support import PackageIndex, torch_releases
from tests.support.http_server import LocalHttpServer
from tests.support.peers import (
    REPO,
    free_port,
    mlmon_command,
    require_binary,
    shared_data,
    stop_process,
    wait_http,
    wait_until,
)
from tests.support.prometheus import Prometheus, run_prometheus
from tests.support.sinks import WebhookSink

GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
OVERVIEW, PROJECT = "mlmon-overview", "mlmon-project"
PROMTOOL_HOW = "install the Debian package prometheus (apt-get install prometheus)"

# What each Grafana variable stands for when a query is checked outside Grafana.
VARIABLES = {
    "project": "churn",
    "metric": "accuracy",
    "currency": "usd",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MLMON_NAME = re.compile(r"\bmlmon_[a-zA-Z0-9_]+\b")


def dashboard(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DASHBOARDS / f"{name}.json").read_text())
    return data


def substitute(text: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in VARIABLES:
            raise AssertionError(f"unknown Grafana variable ${name} in {text!r}")
        return VARIABLES[name]

    return _VARIABLE.sub(value, text)


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref: str
    expr: str
    """With the Grafana variables substituted."""


def queries(name: str) -> list[Query]:
    return [
        Query(name, panel["title"], target["refId"], substitute(target["expr"]))
        for panel in dashboard(name)["panels"]
        for target in panel.get("targets", [])
    ]


def all_queries() -> list[Query]:
    return queries(OVERVIEW) + queries(PROJECT)


def variable_selectors(name: str) -> dict[str, str]:
    """Each query variable as the PromQL selector Grafana sends (label_values / metrics helpers)."""
    out = {}
    for var in dashboard(name)["templating"]["list"]:
        text = substitute(var["query"]["query"])
        if found := re.fullmatch(r"label_values\((.*),\s*(\w+)\)", text):
            out[var["name"]] = found.group(1)
        elif found := re.fullmatch(r"metrics\((.*)\)", text):
            out[var["name"]] = f'{{__name__=~"{found.group(1).strip("^$")}"}}'
        else:
            raise AssertionError(f"{name}: variable {var['name']} has an unexpected query {text!r}")
    return out


def metric_names(expr: str) -> set[str]:
    return set(_MLMON_NAME.findall(_STRING.sub('""', expr)))


# --- the dashboards as files -----------------------------------------------------------------------


def test_dashboards_use_the_provisioned_datasource_and_grafana_layout() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [datasource] = provisioned["datasources"]
    assert datasource["type"] == "prometheus" and datasource["uid"]
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "mlmon.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"  # where compose mounts them
    for name in (OVERVIEW, PROJECT):
        board = dashboard(name)
        assert board["uid"] == name and board["title"] and "mlmon" in board["tags"]
        assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
        panels = board["panels"]
        assert len({p["id"] for p in panels}) == len(panels), f"{name}: panel ids repeat"
        targets = 0
        for panel in panels:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, (name, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == datasource["uid"] and target["expr"], (name, panel["title"])
                targets += 1
        assert targets >= 30, f"{name}: only {targets} queries"
        for var in board["templating"]["list"]:
            assert var["datasource"]["uid"] == datasource["uid"]


def test_the_drill_down_has_a_project_variable_and_the_overview_links_to_it() -> None:
    project = dashboard(PROJECT)
    variables = {v["name"]: v for v in project["templating"]["list"]}
    assert variables["project"]["query"]["query"] == "label_values(mlmon_project_info, project)"
    assert variables["project"]["type"] == "query" and not variables["project"]["multi"]
    # every project panel is scoped to the chosen project
    for panel in project["panels"]:
        for target in panel.get("targets", []):
            assert "$project" in target["expr"], (panel["title"], target["expr"])
    titles = {p["title"] for p in project["panels"]}
    for wanted in ("${metric} and its baseline", "Spend this period vs budget (${currency})", "GPU efficiency",
                   "Open findings by severity", "Sources"):  # fmt: skip
        assert wanted in titles
    assert any(link["url"].startswith(f"/d/{OVERVIEW}/") for link in project["links"])

    overview = dashboard(OVERVIEW)
    [health] = [p for p in overview["panels"] if p["title"] == "Project health"]
    links = [
        link
        for override in health["fieldConfig"]["overrides"]
        if override["matcher"]["options"] == "project"
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert links and all(f"/d/{PROJECT}/" in ln["url"] and "var-project=${__value.raw}" in ln["url"] for ln in links)
    shown = set(health["transformations"][1]["options"]["renameByName"].values())
    for column in ("quality", "vs baseline", "budget used", "torch", "open findings", "owners", "firing alerts"):
        assert column in shown
    overview_titles = {p["title"] for p in overview["panels"]}
    for wanted in ("Firing alerts by severity", "Sources", "Outbox by integration and status",
                   "Oldest waiting notification", "Samples pushed", "Rule evaluation"):  # fmt: skip
        assert wanted in overview_titles


def _promtool_check(tmp_path: Path, exprs: list[str]) -> subprocess.CompletedProcess[str]:
    promtool = require_binary("promtool", PROMTOOL_HOW)
    rules = {
        "groups": [
            {"name": "grafana", "rules": [{"record": f"grafana:query_{i}", "expr": e} for i, e in enumerate(exprs)]}
        ]
    }
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as the expression of a recording rule (variables substituted)."""
    found = all_queries()
    selectors = [s for name in (OVERVIEW, PROJECT) for s in variable_selectors(name).values()]
    done = _promtool_check(tmp_path, [q.expr for q in found] + selectors)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(found) + len(selectors)} rules found" in done.stdout
    # the check does catch a broken query
    broken = _promtool_check(tmp_path, ["sum by (project (mlmon_alerts)"])
    assert broken.returncode != 0 and "parse error" in broken.stdout + broken.stderr


# --- a real mlmon, and a real Prometheus scraping it -----------------------------------------------


CONFIG = """
alerting: {{evaluation_interval: 2s, external_url: "http://mlmon.test"}}
retention: {{raw: 30d, hourly: 400d}}
stack:
  advisories: {{path: "{osv}", refresh: 6h}}
  index: {{url: "{index}", packages: [torch], refresh: 6h}}
  sync_interval: 10s
projects:
  - id: platform
    name: ML platform
    team: platform
    owners: [{{name: Ops, email: ops@example.com}}]
    sources:
      - name: opencost
        kind: opencost
        interval: 1h
        params: {{url: "{opencost}", aggregate: "label:ml-project", projects: {{vision-team: vision}}, backfill: 10d}}
  - id: churn
    name: Churn classifier
    team: growth
    owners:
      - {{name: Ada, email: ada@example.com}}
      - {{name: Grace, email: grace@example.com}}
    labels: {{tier: gold}}
    sources:
      - name: nightly-eval
        kind: push
        interval: 1m
        params: {{expect: [{{metric: accuracy, labels: {{model: churn-v2}}, max_age: 1d}}]}}
      - {{name: deps, kind: lockfile, interval: 1h, params: {{path: "{requirements}"}}}}
      - name: status-page
        kind: http_json
        interval: 1h
        params: {{url: "http://127.0.0.1:{closed}/status", metrics: [{{metric: up_flag, path: $.up}}]}}
    spend:
      currency: USD
      budget: {{amount: 1000, forecast: {{lookback: 14d, min_days: 3}}}}
      fixed_costs: [{{name: ML engineers, category: people, monthly: 3000}}]
      accuracy: {{metric: accuracy, match: ['model="churn-v2"']}}
      predictions: {{metric: predictions_served, aggregation: sum}}
  - id: vision
    owners: [{{name: Linus, email: linus@example.com}}]
rules:
  - {{name: accuracy-low, kind: threshold, projects: [churn], labels: {{severity: critical}}, sources: [nightly-eval],
     params: {{metric: accuracy, op: "<", value: 0.9}}}}
  - {{name: source-down, kind: source_down, labels: {{severity: warning}}, params: {{failures: 1}}}}
  - {{name: torch-vulnerable, kind: vulnerable, labels: {{severity: high}}, sources: [deps], params: {{severity: high}}}}
  - {{name: torch-stale, kind: stale, sources: [deps], params: {{max_minors_behind: 2}}}}
  - {{name: accuracy-drop, kind: drop, sources: [nightly-eval],
     params: {{metric: accuracy, min_drop: 0.02, examples_metric: accuracy_examples}}}}
  - {{name: feature-drift, kind: distribution, sources: [nightly-eval], params: {{dataset: features, correction: bonferroni}}}}
receivers:
  - {{name: hook, webhook: {{url: "{hook}"}}}}
  - {{name: pager, webhook: {{url: "http://127.0.0.1:{closed}/pager"}}}}
route:
  receiver: hook
  group_by: [project, alertname]
  group_wait: 0s
  routes:
    - {{matchers: ['severity="critical"'], receiver: pager}}
"""


def _distribution(role: str, shift: float, now: datetime) -> bytes:
    rng = random.Random(7 if role == "reference" else 8)
    body = {
        "project": "churn",
        "dataset": "features",
        "labels": {"model": "churn-v2"},
        "role": role,
        "timestamp": now.isoformat(),
        "columns": {
            "age": {"values": [rng.gauss(40 + shift, 10) for _ in range(2000)]},
            "plan": {"values": [rng.choice(["basic", "pro", "team"]) for _ in range(2000)]},
        },
    }
    return json.dumps(body).encode()


def _populate(runtime: Runtime) -> None:
    """Fill the store the way the service does: the sources run, the stack sync, pushed quality
    series and distributions, an evaluation that fires alerts, and a dispatch into the outbox."""
    now = runtime.clock.now()
    runner = SourceRunner(runtime.store, runtime.clock, HttpFactory(timeout=10))
    outcomes = {plan.config.name: runner.run(plan) for plan in runtime.plans if plan.config.name != "nightly-eval"}
    assert outcomes["opencost"].ok and outcomes["deps"].ok, {k: v.error for k, v in outcomes.items()}
    assert not outcomes["status-page"].ok
    report = tick(runtime.store, runtime.config, now, HttpFactory(timeout=10), {})
    assert report.reconcile.opened > 0

    ts = ms_from_datetime(now)
    model = (("model", "churn-v2"),)
    series = {
        "accuracy": 0.86,
        "accuracy_examples": 5000.0,
        "accuracy_baseline": 0.92,
        "accuracy_baseline_examples": 20000.0,
        "predictions_served": 120000.0,
        "model_version": 8.0,
        "model_promotion_age_seconds": 86400.0 * 40,
    }
    runtime.store.samples.append(
        [
            Sample(SeriesKey("churn", name, (*model, ("alias", "production")) if name.startswith("model_") else model),
                   ts - minutes * 60_000, value)
            for name, value in series.items()
            for minutes in (30, 0)
        ]
    )  # fmt: skip
    settings = runtime.config.quality.distributions
    cache = ReferenceCache()
    for role, shift in (("reference", 0.0), ("current", 5.0)):
        push = parse_push(_distribution(role, shift, now), runtime.config.project_ids, settings.max_columns)
        ingest(runtime.store, cache, push, now, settings.bins, settings.max_values_per_column)
    [nightly] = [p for p in runtime.plans if p.config.name == "nightly-eval"]
    assert runner.run(nightly).ok

    engine = build_engine(runtime)
    engine.evaluate()
    Dispatcher(runtime.store, runtime.clock, lambda: runtime.config, "http://mlmon.test").tick()
    counts, _oldest = OutboxStore(runtime.store.engine).stats()
    assert counts.get(("webhook", "pending"), 0) >= 3, counts  # source-down, torch-vulnerable; accuracy-low twice


def _push_through_the_api(mlmon: str, token: str) -> None:
    """A job pushing with its owner token: one accepted batch, one refused (counted as rejected)."""
    headers = {"Authorization": f"Bearer {token}"}
    good = {"samples": [{"project": "churn", "metric": "accuracy", "labels": {"model": "churn-v2"}, "value": 0.86}]}
    assert httpx.post(f"{mlmon}/api/v1/samples", json=good, headers=headers, timeout=10).status_code == 200
    bad = {"samples": [{"project": "churn", "metric": "Accuracy!", "value": "high"}]}
    assert httpx.post(f"{mlmon}/api/v1/samples", json=bad, headers=headers, timeout=10).status_code == 422


@dataclass(frozen=True)
class World:
    mlmon: str
    prometheus: Prometheus
    exposition: str
    config: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_binary("prometheus", PROMTOOL_HOW)
    tmp = tmp_path_factory.mktemp("grafana")
    requirements = tmp / "requirements.txt"
    requirements.write_text("torch==2.5.1+cu121\nnumpy==1.16.0\n")
    with QueryRecordingServer() as opencost, LocalHttpServer() as index_server:
        opencost.route("/allocation", echoing(opencost))
        index = PackageIndex(index_server, {"torch": torch_releases()})
        hook = WebhookSink().open()
        config = tmp / "mlmon.yaml"
        config.write_text(
            CONFIG.format(
                osv=shared_data("osv"),
                index=index.url,
                opencost=opencost.url("").rstrip("/"),
                requirements=requirements,
                closed=free_port(),
                hook=hook.url,
            )
        )
        database = f"sqlite:///{tmp / 'mlmon.db'}"
        runtime = Runtime.create(Settings(config=config, database_url=database))
        try:
            prepare_database(runtime)
            _populate(runtime)
            token, _info = TokenStore(runtime.store.engine).create(
                "nightly-eval", Role.OWNER, ["churn"], "test", runtime.clock.now()
            )
        finally:
            runtime.store.close()
        port = free_port()
        log = (tmp / "serve.log").open("wb")
        serve = subprocess.Popen(
            mlmon_command(
                "serve", "--config", str(config), "--database-url", database, "--listen", f"127.0.0.1:{port}"
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            mlmon = f"http://127.0.0.1:{port}"
            wait_http(f"{mlmon}/readyz")
            _push_through_the_api(mlmon, token)
            with run_prometheus(tmp / "prometheus", [f"127.0.0.1:{port}"], job="mlmon") as prom:
                prom.wait_for("mlmon_project_info")
                # per-process figures appear once the serving process has evaluated and delivered
                prom.wait_for("mlmon_rule_evaluation_duration_seconds > 0", timeout=60)
                prom.wait_for("mlmon_notifications_total", timeout=60)
                prom.wait_for("mlmon_notification_requests_failed_total", timeout=60)
                wait_until(lambda: len(prom.query("count_over_time(mlmon_project_info[1m]) >= 3")) > 0, 30)
                exposition = httpx.get(f"{mlmon}/metrics", timeout=10).text
                yield World(mlmon, prom, exposition, config)
        finally:
            stop_process(serve)
            log.close()
            hook.close()


@pytest.mark.peer
@pytest.mark.slow
def test_every_metric_a_panel_reads_is_exported(world: World) -> None:
    exported = {s.name for f in text_string_to_metric_families(world.exposition) for s in f.samples}
    used: dict[str, set[str]] = {}
    for q in all_queries():
        for name in metric_names(q.expr):
            used.setdefault(name, set()).add(f"{q.dashboard}/{q.panel}")
    for name in (OVERVIEW, PROJECT):
        for selector in variable_selectors(name).values():
            for metric in metric_names(selector):
                used.setdefault(metric, set()).add(f"{name} variables")
    missing = {name: sorted(where) for name, where in used.items() if name not in exported}
    assert not missing, f"panels read metrics mlmon does not export: {missing}"
    assert len(used) >= 50


@pytest.mark.peer
@pytest.mark.slow
def test_prometheus_answers_every_panel_query_with_data(world: World) -> None:
    """Scraping a real `mlmon serve`, every query of both dashboards (project churn) returns series."""
    empty = [
        f"{q.dashboard} / {q.panel} / {q.ref}: {q.expr}" for q in all_queries() if not world.prometheus.query(q.expr)
    ]
    assert not empty, "queries without data:\n" + "\n".join(empty)


@pytest.mark.peer
@pytest.mark.slow
def test_the_variables_offer_the_configured_values(world: World) -> None:
    def values(selector: str, label: str) -> set[str]:
        response = httpx.get(f"{world.prometheus.url}/api/v1/series", params={"match[]": selector}, timeout=10)
        response.raise_for_status()
        return {series.get(label, "") for series in response.json()["data"]}

    project = variable_selectors(PROJECT)
    assert values(project["project"], "project") == {"platform", "churn", "vision"}
    assert values(project["metric"], "__name__") == {"mlmon_accuracy_baseline"}  # regex keeps "accuracy"
    assert values(variable_selectors(OVERVIEW)["currency"], "__name__") == {"mlmon_spend_budget_usd"}
    # the table's link target resolves in the drill-down's variable
    assert "churn" in values(project["project"], "project")


@pytest.mark.peer
@pytest.mark.slow
def test_the_overview_table_shows_each_projects_health(world: World) -> None:
    """The figures behind the health table are the ones mlmon computed for the data above."""
    [health] = [p for p in dashboard(OVERVIEW)["panels"] if p["title"] == "Project health"]
    by_ref = {t["refId"]: substitute(t["expr"]) for t in health["targets"]}

    def churn(ref: str) -> list[dict[str, Any]]:
        return [r for r in world.prometheus.query(by_ref[ref]) if r["metric"].get("project") == "churn"]

    assert float(churn("B")[0]["value"][1]) == pytest.approx(0.86)  # accuracy
    assert float(churn("C")[0]["value"][1]) == pytest.approx(0.86 - 0.92)  # vs baseline
    assert float(churn("D")[0]["value"][1]) > 0  # budget used
    assert churn("F")[0]["metric"]["version"] == "2.5.1+cu121"  # torch
    assert float(churn("G")[0]["value"][1]) > 0  # open findings
    assert float(churn("I")[0]["value"][1]) == 2  # owners
    assert float(churn("J")[0]["value"][1]) >= 2  # accuracy-low, source-down, torch-vulnerable firing
    assert float(churn("K")[0]["value"][1]) == 1  # status-page is down


@pytest.mark.peer
@pytest.mark.slow
def test_the_exported_rules_select_what_mlmon_fires_on_the_same_data(world: World) -> None:
    """Each exported rule's expression, asked of the Prometheus scraping this mlmon, returns the
    series of the alerts mlmon itself has firing (compared on mlmon's alert labels)."""
    config = load_config(world.config, config_checks())
    exported = export_rules(config, RULE_KINDS)
    assert not exported.skipped
    response = httpx.get(f"{world.mlmon}/api/v1/alerts", params={"state": "firing"}, timeout=10)
    response.raise_for_status()
    items = response.json()
    for rule in exported.rules:
        own = {"alertname", *next(r.labels for r in config.rules if r.name == rule.rule)}
        fired = [{k: v for k, v in a["labels"].items() if k not in own} for a in items if a["rule"] == rule.rule]
        assert fired, f"mlmon fires no {rule.rule} alert: the comparison would prove nothing"
        names = set().union(*fired)
        if rule.kind == "vulnerable":  # `group: finding` adds the vulnerability; the default (package) matches
            names.discard("vulnerability")
        wanted = {tuple(sorted((k, v) for k, v in labels.items() if k in names)) for labels in fired}
        answered = world.prometheus.query(rule.alert["expr"])
        got = {tuple(sorted((k, v) for k, v in r["metric"].items() if k in names)) for r in answered}
        assert got == wanted, (rule.rule, rule.alert["expr"])
        assert len(answered) == len(got), (rule.rule, answered)
