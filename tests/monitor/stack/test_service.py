"""The service side on SQLite and PostgreSQL: sources run by the real runner, feeds refreshed from
the real data (offline database, OSV API server, PEP 691 index server), findings reconciled into
their history, status reproduced for past dates, rule kinds through the alert engine, the API and
/metrics (checked by promtool)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from alerts.engine import AlertEngine
from alerts.kinds import REGISTRY as RULE_KINDS
from alerts.model import AlertState
from alerts.store import AlertStore
from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.http import HttpFactory
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.stack.history import finding_doc
from monitor.stack.providers import PROVIDERS
from monitor.stack.store import StackStore
from monitor.stack.sync import TickReport, tick
from tests.conftest import RuntimeFactory, token_headers
from tests.monitor.stack.support import OsvApi, PackageIndex
from tests.support.peers import require_binary

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def config_text(tmp: Path, osv: str, index_url: str, ignore_expires: date, advisories: str = "path") -> str:
    return f"""
projects:
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - {{name: deps, kind: lockfile, interval: 1h, params: {{path: "{tmp / "churn" / "requirements.txt"}"}}}}
    stack:
      ignores:
        - {{id: GHSA-63cw-57p8-fm3p, reason: "weights_only loads come from our own registry", expires: {ignore_expires}}}
  - id: vision
    owners: [{{name: Grace, email: grace@example.com}}]
    sources:
      - {{name: image, kind: sbom, interval: 1h, params: {{path: "{tmp / "vision" / "bom.cdx.json"}"}}}}
stack:
  advisories: {{{advisories}: "{osv}", refresh: 6h}}
  index: {{url: "{index_url}", packages: [torch], refresh: 6h}}
  ignores:
    - {{id: PYSEC-2025-41, reason: accepted for vision only, expires: 2030-01-01, projects: [vision]}}
rules:
  - {{name: torch-vulnerable, kind: vulnerable, params: {{severity: high, packages: [torch], group: finding}}}}
  - {{name: vulnerable-packages, kind: vulnerable, params: {{severity: high}}}}
  - {{name: torch-stale, kind: stale, params: {{package: torch, max_minors_behind: 2}}}}
  - {{name: patch-sla, kind: patch_sla, params: {{sla: {{critical: 7d, high: 30d, medium: 90d, low: 180d}}, group: finding}}}}
"""


def sbom(version: str) -> str:
    purl = f"pkg:pypi/torch@{version.replace('+', '%2B')}"
    return (
        '{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": ['
        f'{{"type": "library", "name": "torch", "version": "{version}", "purl": "{purl}"}}]}}'
    )


@dataclass
class World:
    runtime: Runtime
    clock: FrozenClock
    runner: SourceRunner
    tmp: Path

    def write(self, project: str, name: str, text: str) -> None:
        path = self.tmp / project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def collect(self) -> list[Any]:
        return [self.runner.run(plan) for plan in self.runtime.plans]

    def tick(self, **kwargs: Any) -> TickReport:
        return tick(self.runtime.store, self.runtime.config, self.clock.now(), HttpFactory(timeout=10), {}, **kwargs)

    @property
    def stack(self) -> StackStore:
        return StackStore(self.runtime.store.engine)

    def open(self, project: str) -> dict[str, Any]:
        return {r.vuln_id: r for r in self.stack.findings(project=project)}


@pytest.fixture
def world(make_runtime: RuntimeFactory, db_url: str, tmp_path: Path, osv_dir: Path,
          index_server: PackageIndex) -> World:  # fmt: skip
    clock = FrozenClock(T0)
    runtime = make_runtime(config_text(tmp_path, str(osv_dir), index_server.url, date(2026, 11, 25)),
                           database_url=db_url, clock=clock)  # fmt: skip
    w = World(runtime, clock, SourceRunner(runtime.store, clock, HttpFactory(timeout=10)), tmp_path)
    w.write("churn", "requirements.txt", "torch==2.5.1+cu121\nnumpy==1.16.0\n")
    w.write("vision", "bom.cdx.json", sbom("2.6.0+cu124"))
    return w


def test_findings_history_from_collection_to_fix(world: World) -> None:
    assert all(r.ok for r in world.collect())
    first = world.tick()
    assert first.ingest.updated == [("churn", "deps"), ("vision", "image")]
    feed = {f.name: f for f in first.feeds}
    assert feed["advisories"].error is None and feed["advisories"].detail["added"] == 159
    assert feed["index:torch"].error is None
    assert first.reconcile.reconciled == 2 and first.reconcile.opened > 0
    churn = world.open("churn")
    critical = churn["CVE-2025-32434"]
    assert critical.severity == "critical" and critical.fixed_in == "2.6.0" and not critical.ignored
    assert critical.variant == "CUDA 12.1" and critical.versions == ["2.5.1+cu121"]
    assert critical.first_seen_at == T0 and critical.exposed_since == T0
    # published 2025-04-18, fixed release 2.6.0 uploaded 2025-01-29: the fix counts from publication
    assert critical.fix_available_at == datetime(2025, 4, 18, 15, 19, 28, tzinfo=UTC)
    ignored = churn["CVE-2026-24747"]  # ignored through an alias (the GHSA that names `pytorch`)
    assert ignored.ignored and ignored.ignore_reason == "weights_only loads come from our own registry"
    assert churn["CVE-2019-6446"].package == "numpy" and churn["CVE-2019-6446"].fixed_in == "1.16.1"
    assert world.open("vision")["CVE-2025-46149"].variant == "CUDA 12.4"
    assert "CVE-2025-32434" not in world.open("vision")  # 2.6.0 carries the fix
    # nothing changed: nothing is rewritten
    again = world.tick()
    assert again.reconcile.reconciled == 0 and not again.ingest.updated

    # two days later the project upgrades torch
    world.clock.advance(timedelta(days=2))
    upgrade_at = world.clock.now()
    world.write("churn", "requirements.txt", "torch==2.6.0\nnumpy==1.16.0\n")
    assert all(r.ok for r in world.collect())
    events = world.runtime.store.events.events(project="churn", kinds=["version_change"])
    assert [e.describe() for e in events] == ["torch 2.5.1+cu121 -> 2.6.0"]
    assert events[0].labels["change"] == "upgrade"
    report = world.tick()
    assert report.reconcile.resolved >= 1 and report.reconcile.opened >= 1
    # numpy now has a fixable finding, so its release history is wanted; the test index lacks it
    numpy_feed = world.stack.feed("index:numpy")
    assert numpy_feed is not None and not numpy_feed.up and "no JSON release data" in (numpy_feed.last_error or "")
    assert "CVE-2025-32434" not in world.open("churn")
    fixed = world.stack.findings(project="churn", vuln="CVE-2025-32434", include_resolved=True)[0]
    assert fixed.resolved_at == upgrade_at and fixed.resolution == "upgraded"
    assert world.open("churn")["CVE-2025-46149"].first_seen_at == upgrade_at  # introduced in 2.6.0
    still = world.open("churn")["CVE-2025-3730"]
    assert still.versions == ["2.6.0"] and still.first_seen_at == T0  # the same exposure continues
    kinds = [e.kind for e in world.stack.finding_events([still.id])[still.id]]
    assert kinds == ["opened", "changed"]

    # the audit view: what was open on a past date
    day1 = [finding_doc(r, []) for r in world.stack.findings(project="churn", as_of=T0 + timedelta(days=1))]
    assert {d["id"] for d in day1} >= {"CVE-2025-32434", "CVE-2026-24747"}
    day3 = {r.vuln_id for r in world.stack.findings(project="churn", as_of=T0 + timedelta(days=3))}
    assert "CVE-2025-32434" not in day3 and "CVE-2025-46149" in day3
    assert not world.stack.findings(project="churn", as_of=T0 - timedelta(seconds=1))


def test_ignores_expire_and_show_in_the_history(world: World) -> None:
    world.collect()
    world.tick()
    ignored = world.open("churn")["CVE-2026-24747"]
    assert ignored.ignored and ignored.ignore_expires == date(2026, 11, 25)
    world.clock.set(datetime(2026, 11, 26, 0, 0, 1, tzinfo=UTC))
    report = world.tick()
    assert report.reconcile.reconciled >= 1  # the set of ignores in force changed
    lapsed = world.open("churn")["CVE-2026-24747"]
    assert not lapsed.ignored
    events = world.stack.finding_events([lapsed.id])[lapsed.id]
    assert [e.kind for e in events] == ["opened", "ignored", "unignored"]
    assert events[-1].detail["reason"] == "expired"
    before = finding_doc(lapsed, events, datetime(2026, 11, 24, tzinfo=UTC))
    after = finding_doc(lapsed, events, datetime(2026, 11, 27, tzinfo=UTC))
    assert before["status"] == "ignored" and before["ignored"]["reason"].startswith("weights_only")
    assert after["status"] == "open" and after["ignored"] is None
    # a top-level ignore scoped to another project does not apply here
    assert not world.open("churn")["CVE-2025-32434"].ignored


def test_failing_sources_and_feeds_keep_the_last_good_data(world: World, tmp_path: Path) -> None:
    world.collect()
    world.tick()
    before = {k: v.id for k, v in world.open("churn").items()}
    world.write("churn", "requirements.txt", "torch==2.6.0\nnot a requirement ==\n")
    world.clock.advance(timedelta(hours=1))
    record = next(r for r in world.collect() if r.project == "churn")
    assert not record.ok and f"{tmp_path / 'churn' / 'requirements.txt'}:2" in (record.error or "")
    world.tick()
    assert {k: v.id for k, v in world.open("churn").items()} == before  # the last good inventory stands


def test_a_missing_offline_database_keeps_the_stored_advisories(make_runtime: RuntimeFactory, tmp_path: Path,
                                                                osv_dir: Path, index_server: PackageIndex) -> None:  # fmt: skip
    copy = tmp_path / "osv-copy"
    shutil.copytree(osv_dir, copy)
    clock = FrozenClock(T0)
    runtime = make_runtime(config_text(tmp_path, str(copy), index_server.url, date(2027, 1, 1)), clock=clock)
    w = World(runtime, clock, SourceRunner(runtime.store, clock, HttpFactory(timeout=10)), tmp_path)
    w.write("churn", "requirements.txt", "torch==2.5.1+cu121\n")
    w.write("vision", "bom.cdx.json", sbom("2.6.0+cu124"))
    w.collect()
    w.tick()
    opened = set(w.open("churn"))
    shutil.rmtree(copy)
    clock.advance(timedelta(hours=7))
    failed = next(f for f in w.tick().feeds if f.name == "advisories")
    assert failed.error and "no such file or directory" in failed.error
    feed = w.stack.feed("advisories")
    assert feed is not None and feed.consecutive_failures == 1 and feed.last_success_at == T0
    assert feed.age_seconds(clock.now()) == 7 * 3600 and w.stack.advisory_counts()["records"] == 159
    assert set(w.open("churn")) == opened
    clock.advance(timedelta(minutes=5))
    assert not any(f.name == "advisories" for f in w.tick().feeds if f.ran)  # retried after 10 minutes, not at once


def test_unreachable_osv_api_is_recorded_with_the_age_of_the_data(make_runtime: RuntimeFactory, tmp_path: Path,
                                                                 osv_server: OsvApi, index_server: PackageIndex) -> None:  # fmt: skip
    clock = FrozenClock(T0)
    text = config_text(tmp_path, osv_server.server.url(""), index_server.url, date(2027, 1, 1), advisories="url")
    runtime = make_runtime(text, clock=clock)
    w = World(runtime, clock, SourceRunner(runtime.store, clock, HttpFactory(timeout=10)), tmp_path)
    w.write("churn", "requirements.txt", "torch==2.5.1+cu121\npillow==10.0.0\n")
    w.write("vision", "bom.cdx.json", sbom("2.6.0+cu124"))
    w.collect()
    first = w.tick()
    assert next(f for f in first.feeds if f.name == "advisories").error is None
    queried = {
        q["package"]["name"]
        for s in osv_server.server.requests("/v1/querybatch")
        for q in __import__("json").loads(s.body)["queries"]
    }
    assert queried == {"torch", "pillow"}  # only what the projects run
    opened = set(w.open("churn"))
    assert "CVE-2025-32434" in opened and "CVE-2023-4863" in opened
    fetched = len([s for s in osv_server.server.requests() if s.path.startswith("/v1/vulns/")])
    clock.advance(timedelta(hours=7))
    w.tick()  # unchanged records are not fetched again
    assert len([s for s in osv_server.server.requests() if s.path.startswith("/v1/vulns/")]) == fetched
    osv_server.server.stop()
    clock.advance(timedelta(hours=7))
    failed = w.tick()
    outcome = next(f for f in failed.feeds if f.name == "advisories")
    assert outcome.error and "querybatch" in outcome.error
    feed = w.stack.feed("advisories")
    assert feed is not None and not feed.up and feed.consecutive_failures == 1
    assert feed.last_success_at == T0 + timedelta(hours=7) and feed.age_seconds(clock.now()) == 7 * 3600
    assert set(w.open("churn")) == opened  # findings stay as they were
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        status = client.get("/api/v1/stack/advisories").json()
    shown = next(f for f in status["feeds"] if f["name"] == "advisories")
    assert shown["up"] is False and shown["data_age_seconds"] == 7 * 3600 and "querybatch" in shown["last_error"]


def test_rule_kinds_through_the_alert_engine(world: World) -> None:
    world.collect()
    world.tick()
    engine = AlertEngine(world.runtime.store, world.clock, RULE_KINDS, lambda: world.runtime.config, PROVIDERS)
    report = engine.evaluate()
    assert not report.failures
    alerts = AlertStore(world.runtime.store.engine).list()
    firing = {(a.rule, a.project, a.labels.get("vulnerability", a.labels.get("package"))) for a in alerts
              if a.state is AlertState.FIRING}  # fmt: skip
    # vulnerable (high and above, torch only; the alias-ignored CVE-2026-24747 stays quiet)
    assert ("torch-vulnerable", "churn", "CVE-2025-32434") in firing
    assert ("torch-vulnerable", "churn", "CVE-2026-24747") not in firing
    assert ("torch-vulnerable", "vision", "CVE-2025-32434") not in firing
    assert not any(rule == "torch-vulnerable" and vid and vid.startswith("CVE-2019") for rule, _, vid in firing)
    # stale: 2.5.1 is 10 minors behind, 2.6.0 is 9
    assert ("torch-stale", "churn", "torch") in firing and ("torch-stale", "vision", "torch") in firing
    stale = next(a for a in alerts if a.rule == "torch-stale" and a.project == "churn")
    assert stale.value == 10.0 and "10 minor releases behind 2.15.0" in stale.annotations["summary"]
    # patch_sla: the fix for CVE-2025-32434 (critical) has been usable since April 2025
    sla = next(a for a in alerts if a.rule == "patch-sla" and a.labels.get("vulnerability") == "CVE-2025-32434")
    assert sla.state is AlertState.FIRING and sla.project == "churn" and (sla.value or 0) > 365 * 86400
    assert "has had a fix (2.6.0)" in sla.annotations["summary"]
    assert not any(a.rule == "patch-sla" and a.labels.get("vulnerability") == "CVE-2026-4538" for a in alerts)  # no fix

    # grouped by package (the default): one alert for churn's torch, with counts, the worst finding and a fix
    grouped = [a for a in alerts if a.rule == "vulnerable-packages" and a.project == "churn"]
    assert [(a.labels.get("package"), "vulnerability" in a.labels, a.state) for a in grouped] == [
        ("torch", False, AlertState.FIRING)
    ]
    per_finding = {a.labels["vulnerability"] for a in alerts if a.rule == "torch-vulnerable" and a.project == "churn"}
    assert grouped[0].value == len(per_finding) > 1
    summary = grouped[0].annotations["summary"]
    assert summary.startswith("torch 2.5.1+cu121: ") and "(worst CVE-2025-32434, critical 9.8)" in summary

    # the upgrade resolves what it fixes
    world.clock.advance(timedelta(hours=2))
    world.write("churn", "requirements.txt", "torch==2.15.0\nnumpy==1.16.0\n")
    world.collect()
    world.tick()
    engine.evaluate()
    after = {
        (a.rule, a.project, a.labels.get("vulnerability", a.labels.get("package"))): a
        for a in AlertStore(world.runtime.store.engine).list()
    }
    assert after[("torch-vulnerable", "churn", "CVE-2025-32434")].state is AlertState.RESOLVED
    assert after[("torch-stale", "churn", "torch")].state is AlertState.RESOLVED


def test_api_and_metrics(world: World) -> None:
    world.collect()
    world.tick()
    with TestClient(create_app(world.runtime), headers=token_headers(world.runtime)) as client:
        projects = {p["project"]: p for p in client.get("/api/v1/stack/projects").json()}
        assert projects["churn"]["torch"] == {"version": "2.5.1+cu121", "variant": "cuda", "accelerator": "12.1"}
        assert projects["vision"]["staleness"][0]["minors_behind"] == 9
        detail = client.get("/api/v1/stack/projects/churn").json()
        assert detail["inventories"][0]["torch"]["variant"] == "cuda"
        overdue = client.get("/api/v1/stack/findings", params={"overdue": "true", "severity": "critical"}).json()
        assert {(f["project"], f["id"]) for f in overdue} == {("churn", "CVE-2025-32434")}
        assert overdue[0]["due_at"].startswith("2025-04-25")
        ignored = client.get("/api/v1/stack/findings", params={"status": "ignored"}).json()
        assert {(f["project"], f["id"]) for f in ignored} == {("churn", "CVE-2026-24747")}
        one = client.get(f"/api/v1/stack/findings/{overdue[0]['finding']}").json()
        assert [e["kind"] for e in one["events"]] == ["opened"]
        past = client.get("/api/v1/stack/findings", params={"as_of": "2026-11-19T00:00:00Z"}).json()
        assert past == []
        packages = client.get("/api/v1/stack/projects/churn/packages", params={"package": "Torch"}).json()
        assert packages["packages"][0]["version"] == "2.5.1+cu121" and packages["history"][0]["removed_at"] is None
        assert client.get("/api/v1/stack/advisories/PYSEC-2025-41").json()[0]["added_revision"] == 1
        assert client.get("/api/v1/stack/projects/nope").status_code == 404
        assert client.get("/api/v1/stack/findings", params={"severity": "bad"}).status_code == 422
        assert client.get("/api/v1/stack/findings", params={"as_of": "yesterday"}).status_code == 422
        synced = client.post("/api/v1/stack/sync").json()
        assert synced["reconciled"] == 0 and synced["errors"] == {}
        text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("mlmon_stack_findings", (("ignored", "false"), ("package", "torch"), ("project", "churn"),
                                              ("severity", "critical"), ("state", "affected")))] == 1.0  # fmt: skip
    assert samples[("mlmon_stack_overdue_findings", (("project", "churn"), ("severity", "critical")))] >= 1.0
    assert (
        samples[
            ("mlmon_stack_minors_behind", (("installed", "2.5.1+cu121"), ("package", "torch"), ("project", "churn")))
        ]
        == 10.0
    )
    assert samples[("mlmon_stack_feed_up", (("feed", "advisories"), ("kind", "offline")))] == 1.0
    assert samples[("mlmon_stack_torch_build", (("accelerator", "12.1"), ("project", "churn"), ("source", "deps"),
                                                 ("variant", "cuda"), ("version", "2.5.1+cu121")))] == 1.0  # fmt: skip
    assert (
        samples[("mlmon_stack_inventory_packages", (("project", "churn"), ("source", "deps")))] == 2.0
    )  # the stored reading
    promtool = require_binary("promtool", "install the Debian package prometheus (apt-get install prometheus)")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_removed_source_resolves_its_findings(world: World, make_runtime: RuntimeFactory, tmp_path: Path,
                                             osv_dir: Path, index_server: PackageIndex) -> None:  # fmt: skip
    world.collect()
    world.tick()
    assert world.open("vision")
    text = config_text(tmp_path, str(osv_dir), index_server.url, date(2026, 11, 25)).replace(
        "      - {name: image, kind: sbom", "      - {name: image, enabled: false, kind: sbom"
    )
    path = Path(world.runtime.settings.config)
    path.write_text(text)
    assert world.runtime.reload().ok
    world.clock.advance(timedelta(minutes=5))
    report = world.tick()
    assert report.ingest.removed == [("vision", "image")]
    assert not world.open("vision")
    resolved = world.stack.findings(project="vision", include_resolved=True)
    assert resolved and all(r.resolution == "source_removed" for r in resolved)


def test_maintenance_job_for_the_scheduler(world: World) -> None:
    from monitor.jobs import maintenance_jobs

    (job,) = maintenance_jobs(world.runtime)
    assert job.name == "stack-sync" and job.seconds == 60.0
    world.collect()
    job.run()
    assert "CVE-2025-32434" in world.open("churn")
    assert world.stack.feed("advisories") is not None
