"""Database-backed commands: `mlmon advisories import|status|refresh`, `mlmon stack sync|findings`,
advisory revisions kept for the record, and the stack configuration's checks."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config.loader import parse_config
from monitor.core.errors import ConfigError
from monitor.runtime import config_checks
from monitor.stack.store import StackStore
from monitor.store.store import Store
from tests.monitor.stack.support import PackageIndex


def test_import_keeps_every_revision_of_a_record(osv_dir: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/mlmon.db"
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(osv_dir.rglob("*.json")):
            zf.write(path, path.name)
    first = CliRunner().invoke(main, ["advisories", "import", str(archive), "--database-url", db])
    assert first.exit_code == 0, first.output
    assert "revision 1: 159 added, 0 updated, 0 unchanged, 0 rejected" in first.stdout
    again = CliRunner().invoke(main, ["advisories", "import", str(osv_dir), "--database-url", db])
    assert "revision 2: 0 added, 0 updated, 159 unchanged" in again.stdout
    changed = tmp_path / "newer"
    changed.mkdir()
    record = json.loads((osv_dir / "PyPI" / "torch" / "GHSA-887c-mr87-cxwp.json").read_text())
    record["modified"] = "2026-08-01T00:00:00Z"
    record["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"fixed": "2.8.0"}]
    (changed / "GHSA-887c-mr87-cxwp.json").write_text(json.dumps(record))
    (changed / "broken.json").write_text("{")
    third = CliRunner().invoke(main, ["advisories", "import", str(changed), "--database-url", db])
    assert "revision 3: 0 added, 1 updated, 0 unchanged, 1 rejected" in third.stdout
    store = Store.open(db)
    stack = StackStore(store.engine)
    history = stack.advisory_history("GHSA-887c-mr87-cxwp")
    assert [(h["added_revision"], h["replaced_revision"]) for h in history] == [(1, 3), (3, None)]
    as_of_2 = {d["id"]: d for d in stack.advisory_documents(revision=2)}
    assert as_of_2["GHSA-887c-mr87-cxwp"]["affected"][0]["ranges"][0]["events"][1] == {"last_affected": "2.7.1"}
    assert len(stack.advisory_documents()) == 159 and stack.content_revision() == 3
    store.close()
    status = CliRunner().invoke(main, ["advisories", "status", "--database-url", db])
    assert "159 records (1 withdrawn), content revision 3" in status.stdout
    assert "rejected" in status.stdout and "broken.json" in status.stdout
    missing = CliRunner().invoke(main, ["advisories", "import", str(tmp_path / "empty.zip"), "--database-url", db])
    assert missing.exit_code == 2


def _config(tmp_path: Path, osv_dir: Path, index_url: str) -> Path:
    (tmp_path / "requirements.txt").write_text("torch==2.5.1+cu121\n")
    path = tmp_path / "mlmon.yaml"
    path.write_text(f"""
projects:
  - id: churn
    sources:
      - {{name: deps, kind: lockfile, params: {{path: "{tmp_path / "requirements.txt"}"}}}}
stack:
  advisories: {{path: "{osv_dir}"}}
  index: {{url: "{index_url}"}}
""")
    return path


def test_collect_sync_and_findings_commands(osv_dir: Path, tmp_path: Path, index_server: PackageIndex) -> None:
    config = _config(tmp_path, osv_dir, index_server.url)
    db = f"sqlite:///{tmp_path}/mlmon.db"
    env = {"MLMON_CONFIG": str(config), "MLMON_DATABASE_URL": db}
    runner = CliRunner(env=env)
    collected = runner.invoke(main, ["collect", "--once"])
    assert collected.exit_code == 0, collected.output
    synced = runner.invoke(main, ["stack", "sync"])
    assert synced.exit_code == 0, synced.output
    assert "inventories updated: 1" in synced.stdout and "advisories: refreshed" in synced.stdout
    assert "index:torch: refreshed" in synced.stdout
    listed = runner.invoke(main, ["stack", "findings", "--project", "churn", "--format", "json"])
    docs = json.loads(listed.stdout)
    assert {d["id"] for d in docs} >= {"CVE-2025-32434", "CVE-2025-3730"}
    assert all(d["status"] == "open" and d["variant"] == "CUDA 12.1" for d in docs)
    table = runner.invoke(main, ["stack", "findings", "--package", "torch"])
    assert "CVE-2025-32434" in table.stdout and "critical" in table.stdout
    before = runner.invoke(main, ["stack", "findings", "--as-of", "2001-01-01T00:00:00Z", "--format", "json"])
    assert json.loads(before.stdout) == []
    assert runner.invoke(main, ["stack", "findings", "--as-of", "last week"]).exit_code == 2
    refreshed = runner.invoke(main, ["advisories", "refresh"])
    assert refreshed.exit_code == 0 and "advisories: ok" in refreshed.stdout


def test_sync_without_advisories_says_so(tmp_path: Path, index_server: PackageIndex) -> None:
    empty = tmp_path / "empty-db"
    empty.mkdir()
    (empty / "x.json").write_text("{}")
    config = _config(tmp_path, empty, index_server.url)
    runner = CliRunner(env={"MLMON_CONFIG": str(config), "MLMON_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"})
    result = runner.invoke(main, ["stack", "sync"])
    assert result.exit_code == 1 and "no advisories stored yet" in result.stdout


BASE = """
projects:
  - id: churn
    owners: [{name: Ada, email: ada@example.com}]
"""


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (
            "stack:\n  ignores:\n    - {id: CVE-2025-3000, expires: 2027-01-01}\n",
            "stack.ignores[0].reason: required field is missing",
        ),
        (
            "stack:\n  ignores:\n    - {id: CVE-2025-3000, reason: x}\n",
            "stack.ignores[0].expires: required field is missing",
        ),
        (
            "stack:\n  ignores:\n    - {id: CVE-1, reason: x, expires: 2027-01-01, projects: [nope]}\n",
            "unknown project 'nope'",
        ),
        ("stack:\n  advisories: {url: 'https://osv.example', path: /tmp/x}\n", "not both"),
        ("stack:\n  advisories: {refresh: 10s}\n", "at least 1m"),
        ("stack:\n  index: {packages: [torch, Torch]}\n", "listed twice"),
        ("rules:\n  - {name: v, kind: vulnerable, params: {severity: severe}}\n", "rules[0].params.severity"),
        ("rules:\n  - {name: s, kind: stale, params: {yanked: false}}\n", "give at least one of"),
        ("rules:\n  - {name: p, kind: patch_sla, params: {sla: {critical: soon}}}\n", "rules[0].params.sla.critical"),
    ],
)
def test_configuration_errors_name_the_line(extra: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(BASE + extra, "mlmon.yaml", config_checks())
    text = str(raised.value)
    assert fragment in text and "mlmon.yaml:" in text


def test_a_full_stack_configuration_is_accepted() -> None:
    config = parse_config(BASE + f"""
    sources:
      - {{name: env, kind: python_env, params: {{path: /srv/envs/churn}}}}
      - {{name: lock, kind: lockfile, params: {{path: /srv/churn/uv.lock, include_dev: false}}}}
      - {{name: bom, kind: sbom, params: {{path: /srv/churn/bom.cdx.json, format: cyclonedx}}}}
      - {{name: repo, kind: repo, params: {{path: /srv/churn, exclude: ["docs/*"], max_depth: 4}}}}
    stack:
      ignores: [{{id: GHSA-rrmf-rvhw-rf47, reason: no TorchScript, expires: 2027-03-31, packages: [torch]}}]
stack:
  advisories: {{path: /srv/osv/PyPI/all.zip, refresh: 12h}}
  index: {{packages: [torch, torchvision]}}
  sla: {{critical: 3d}}
  ignores: [{{id: CVE-2025-3000, reason: accepted, expires: {date(2027, 1, 1)}, projects: [churn]}}]
rules:
  - {{name: vuln, kind: vulnerable, params: {{severity: critical, fixable_only: true}}}}
  - {{name: stale, kind: stale, params: {{max_minors_behind: 2, max_behind: 120d}}}}
  - {{name: sla, kind: patch_sla}}
""", "mlmon.yaml", config_checks())  # fmt: skip
    assert config.stack.sla.critical.days == 3 and config.stack.advisories.api_url is None
    assert config.projects[0].stack.ignores[0].packages == ["torch"]
    assert datetime(2027, 1, 1, tzinfo=UTC).date() == config.stack.ignores[0].expires
