"""The advisory and index snapshots shipped with mlmon: facts only, and matching exactly as the
OSV export they were built from."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.stack.advisories.offline import load_offline
from monitor.stack.advisories.snapshot import (
    BUILTIN_PATH,
    TORCH_FAMILY,
    SnapshotError,
    build_snapshot,
    facts_only,
    read_snapshot,
)
from monitor.stack.index_snapshot import IndexSnapshotError, read_index_snapshot
from tests.support.peers import mlmon_command, shared_data

PROSE = ("summary", "details", "references", "credits")


def _export() -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(shared_data("osv", "PyPI").rglob("*.json"))]


def test_the_shipped_snapshot_is_the_one_the_script_builds_from_the_export() -> None:
    docs = _export()
    rebuilt = build_snapshot(docs, TORCH_FAMILY, f"OSV export of {len(docs)} records").to_doc()
    shipped = json.loads(BUILTIN_PATH.read_text())
    assert shipped == json.loads(json.dumps(rebuilt)), "run scripts/build_advisory_snapshot.py"


def test_the_snapshot_holds_no_advisory_prose() -> None:
    shipped = json.loads(BUILTIN_PATH.read_text())
    assert shipped["as_of"].startswith("2026-07-23")
    for record in shipped["records"]:
        assert not set(PROSE) & set(record), record["id"]
        assert record["id"] and record["modified"] and record["affected"]
    assert BUILTIN_PATH.stat().st_size < 0.4 * sum(p.stat().st_size for p in shared_data("osv").rglob("*.json"))


def test_matching_on_the_snapshot_equals_matching_on_the_export() -> None:
    """Every fact the matcher reads is kept: IDs, aliases, dates, ranges, versions, severities."""
    full = {a.id: a for a in load_offline(shared_data("osv", "PyPI")).advisories}
    compact = load_offline("builtin")
    assert not compact.rejected
    assert compact.advisories
    for advisory in compact.advisories:
        original = full[advisory.id]
        assert advisory.aliases == original.aliases
        assert advisory.modified == original.modified and advisory.published == original.published
        assert advisory.withdrawn == original.withdrawn
        assert advisory.affected == original.affected
        assert advisory.severity == original.severity and advisory.label == original.label
    # records without a torch-family package (or any package) are the only ones left out
    left_out = set(full) - {a.id for a in compact.advisories}
    assert all(not any(x.name in TORCH_FAMILY for x in full[i].affected) for i in left_out)


def test_facts_only_keeps_the_severity_vectors_and_drops_the_rest() -> None:
    doc = {
        "id": "GHSA-x",
        "modified": "2026-01-01T00:00:00Z",
        "summary": "s",
        "details": "d",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "database_specific": {"severity": "HIGH", "github_reviewed": True},
        "affected": [{"package": {"ecosystem": "PyPI", "name": "torch"}, "ranges": [], "database_specific": {}}],
    }
    kept = facts_only(doc)
    assert kept["severity"] == doc["severity"]
    assert kept["database_specific"] == {"severity": "HIGH"}
    assert kept["affected"] == [{"package": {"ecosystem": "PyPI", "name": "torch"}}]
    assert "summary" not in kept and "details" not in kept


def test_a_snapshot_of_nothing_is_refused() -> None:
    with pytest.raises(SnapshotError, match="no record in x affects any of torch"):
        build_snapshot([{"id": "A", "modified": "2026-01-01T00:00:00Z", "affected": []}], ["torch"], "x")


def test_a_file_that_is_not_a_snapshot_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"records": []}')
    with pytest.raises(SnapshotError, match=f"{bad}: expected a JSON object with format"):
        read_snapshot(bad)


def test_the_index_snapshot_gives_torch_release_history_as_the_index_would() -> None:
    snapshot = read_index_snapshot("builtin")
    history = snapshot.history("torch", datetime(2026, 12, 1, tzinfo=UTC))
    source = json.loads(shared_data("pypi", "torch-releases.json").read_text())["releases"]
    assert set(history.releases) == set(source)
    assert history.uploaded("1.13.1") == datetime.fromisoformat(source["1.13.1"]["upload_time"].replace("Z", "+00:00"))
    with pytest.raises(
        IndexSnapshotError, match=r"pillow: not in the index snapshot shipped with mlmon \(it holds torch\)"
    ):
        snapshot.history("pillow")


def test_scan_and_import_take_the_shipped_snapshot(tmp_path: Path) -> None:
    """`mlmon scan --advisories builtin` and `mlmon advisories import builtin` work offline."""

    lock = tmp_path / "requirements.txt"
    lock.write_text("torch==1.13.0+cu117\n")
    done = subprocess.run(
        mlmon_command("scan", str(lock), "--advisories", "builtin", "--format", "json"),
        capture_output=True,
        text=True,
        timeout=120,
        # nothing outside the machine: an index that answers nobody
        env={**os.environ, "PIP_INDEX_URL": "http://127.0.0.1:9/simple"},
    )
    assert done.returncode in (0, 1), done.stderr
    assert "CVE-2022-45907" in done.stdout

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = subprocess.run(
        mlmon_command("advisories", "import", "builtin", "--database-url", url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("revision 1: 151 added")
