"""`mlmon scan` for CI: SARIF as GitHub code scanning documents it, exact purls, exit codes,
`--type`, `--environment`, pdm.lock, SBOMs found by content, and honest messages."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.stack.inventory.reader import read_lockfile, read_repo, read_sbom
from monitor.stack.report.line_hash import line_hashes
from tests.monitor.stack.test_scan import sarif_schema  # noqa: F401  (the fixture)
from tests.support.peers import free_port

GITHUB_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def scan(*args: str) -> Result:
    return CliRunner().invoke(main, ["scan", *args], catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _dist(site: Path, name: str, version: str) -> Path:
    return write(
        site / f"{name.replace('-', '_')}-{version}.dist-info" / "METADATA",
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test\n\nlong text\n",
    )


# --- SARIF for GitHub code scanning ----------------------------------------------------------------------


def test_sarif_meets_code_scanning_rules_with_relative_uris(
    tmp_path: Path,
    osv_dir: Path,
    sarif_schema: dict[str, Any],  # noqa: F811
) -> None:
    repo = tmp_path / "checkout"
    reqs = write(repo / "deploy" / "requirements.txt", "# pinned\nnumpy==1.26.4\n  torch==2.5.1+cu121\n")
    site = repo / ".venv" / "lib" / "python3.11" / "site-packages"
    write(repo / ".venv" / "pyvenv.cfg", "version = 3.11.9\n")
    metadata = _dist(site, "torch", "2.5.1")
    out = tmp_path / "scan.sarif"
    result = scan(str(reqs), str(repo / ".venv"), "--advisories", str(osv_dir), "--index", "none",
                  "--format", "sarif", "--sarif-root", str(repo), "-o", str(out))  # fmt: skip
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, sarif_schema)
    assert doc["$schema"] == GITHUB_SCHEMA and doc["version"] == "2.1.0"
    run = doc["runs"][0]
    root_uri = repo.resolve().as_uri() + "/"
    assert run["invocations"][0]["workingDirectory"]["uri"] == root_uri
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == root_uri
    rules = run["tool"]["driver"]["rules"]
    for rule in rules:
        assert rule["help"]["text"].strip() and rule["shortDescription"]["text"].strip()
        assert rule["fullDescription"]["text"].strip() and len(rule["fullDescription"]["text"]) <= 1024
        score = float(rule["properties"]["security-severity"])
        assert 0.1 <= score <= 10.0 and "security" in rule["properties"]["tags"]
    hashes = {
        "deploy/requirements.txt": line_hashes(reqs.read_text()),
        ".venv/lib/python3.11/site-packages/torch-2.5.1.dist-info/METADATA": line_hashes(metadata.read_text()),
    }
    by_uri: dict[str, list[dict[str, Any]]] = {}
    for res in run["results"]:
        assert res["message"]["text"].strip()
        location = res["locations"][0]["physicalLocation"]
        artifact, region = location["artifactLocation"], location["region"]
        assert artifact["uriBaseId"] == "%SRCROOT%" and not artifact["uri"].startswith(("/", "file:"))
        assert set(region) == {"startLine", "startColumn", "endLine", "endColumn"}
        assert res["partialFingerprints"]["primaryLocationLineHash"] == hashes[artifact["uri"]][region["startLine"]]
        by_uri.setdefault(artifact["uri"], []).append(region)
    lock_regions = by_uri["deploy/requirements.txt"]
    assert {
        "startLine": 3,
        "startColumn": 1,
        "endLine": 3,
        "endColumn": len("  torch==2.5.1+cu121") + 1,
    } in lock_regions
    # an installed package points at its METADATA's Version line, not at a directory
    env_regions = by_uri[".venv/lib/python3.11/site-packages/torch-2.5.1.dist-info/METADATA"]
    assert {"startLine": 3, "startColumn": 1, "endLine": 3, "endColumn": len("Version: 2.5.1") + 1} in env_regions


def test_unknown_severity_is_never_shown_below_medium(tmp_path: Path, osv_dir: Path) -> None:
    from monitor.stack.report.sarif import security_severity

    reqs = write(tmp_path / "requirements.txt", "torch==2.15.0\n")
    doc = json.loads(
        scan(
            str(reqs), "--advisories", str(osv_dir), "--index", "none", "--format", "json", "--fail-on", "never"
        ).stdout
    )
    from monitor.stack.findings import Finding

    finding = Finding(
        package="x", versions=("1",), key="OSV-1", ids=("OSV-1",), state="affected", rating="unknown", score=None,
        scores=(), summary="", fix_versions=(), fixed_in=None, fix_hint=None, fix_available_at=None, published=None,
        modified=None, members=(), notes=(),
    )  # fmt: skip
    assert float(security_severity(finding)) >= 4.0
    assert doc["targets"][0]["packages"] == 1


# Inputs and the fingerprints the upload action computes for them, from its own test suite
# (github/codeql-action:src/fingerprints.test.ts): the values are the peer's, not recomputed here.
ACTION_VECTORS = [
    ("", ["c129715d7a2bc9a3:1"]),
    (" a\nb\n  \t\tc\n d", ["271789c17abda88f:1", "54703d4cd895b18:1", "180aee12dab6264:1", "a23a3dc5e078b07b:1"]),
    (
        " hello; \t\nworld!!!\n\n\n  \t\tGreetings\n End",
        ["8b7cf3e952e7aeb2:1", "b1ae1287ec4718d9:1", "bff680108adb0fcc:1", "c6805c5e1288b612:1",
         "b86d3392aea1be30:1", "e6ceba753e1a442:1"],
    ),
    (
        " hello; \t\r\nworld!!!\r\n\r\n\r\n  \t\tGreetings\r\n End\r\n",
        ["e9496ae3ebfced30:1", "fb7c023a8b9ccb3f:1", "ce8ba1a563dcdaca:1", "e20e36e16fcb0cc8:1",
         "b3edc88f2938467e:1", "c8e28b0b4002a3a0:1", "c129715d7a2bc9a3:1"],
    ),
    (
        " hello; \t\nworld!!!\r\n\n\r  \t\tGreetings\r End\r\n",
        ["e9496ae3ebfced30:1", "fb7c023a8b9ccb3f:1", "ce8ba1a563dcdaca:1", "e20e36e16fcb0cc8:1",
         "b3edc88f2938467e:1", "c8e28b0b4002a3a0:1", "c129715d7a2bc9a3:1"],
    ),
    (
        "Lorem ipsum dolor sit amet.\n" * 10,
        [*(f"a7f2ff13bc495cf2:{n}" for n in range(1, 7)), "a7f2ff1481e87703:1", "a9cf91f7bbf1862b:1",
         "55ec222b86bcae53:1", "cc97dc7b1d7d8f7b:1", "c129715d7a2bc9a3:1"],
    ),
    (
        "x = 2\nx = 1\nprint(x)\nx = 3\nprint(x)\nx = 4\nprint(x)\n",
        ["e54938cc54b302f1:1", "bb609acbe9138d60:1", "1131fd5871777f34:1", "5c482a0f8b35ea28:1",
         "54517377da7028d2:1", "2c644846cb18d53e:1", "f1b89f20de0d133:1", "c129715d7a2bc9a3:1"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), ACTION_VECTORS)
def test_line_hashes_equal_the_upload_actions(text: str, expected: list[str]) -> None:
    hashes = line_hashes(text)
    assert [hashes[n] for n in range(1, len(expected) + 1)] == expected
    assert len(hashes) == len(expected)


# --- exact formats -------------------------------------------------------------------------------------


def test_cyclonedx_conda_purls_use_condas_own_names(tmp_path: Path, osv_dir: Path) -> None:
    env = write(
        tmp_path / "environment.yml",
        "name: train\nchannels: [pytorch, conda-forge]\ndependencies:\n"
        "  - pytorch=2.5.1\n  - _libgcc_mutex=0.1=conda_forge\n  - numpy=1.26.4\n",
    )
    result = scan(str(env), "--advisories", str(osv_dir), "--index", "none", "--format", "cyclonedx",
                  "--fail-on", "never")  # fmt: skip
    assert result.exit_code == 0, result.output
    purls = {c["purl"] for c in json.loads(result.stdout)["components"]}
    assert "pkg:conda/pytorch@2.5.1" in purls
    assert "pkg:conda/_libgcc_mutex@0.1?build=conda_forge" in purls
    assert not any(p.startswith(("pkg:conda/torch@", "pkg:conda/-libgcc-mutex")) for p in purls)


def test_spdx_operating_system_package_is_not_read_as_pypi(tmp_path: Path) -> None:
    doc = {
        "spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "img", "dataLicense": "CC0-1.0",
        "packages": [
            {"SPDXID": "SPDXRef-os", "name": "debian", "versionInfo": "11.11", "primaryPackagePurpose": "OPERATING-SYSTEM"},
            {"SPDXID": "SPDXRef-t", "name": "torch", "versionInfo": "2.5.1",
             "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                               "referenceLocator": "pkg:pypi/torch@2.5.1"}]},
        ],
    }  # fmt: skip
    inventory = read_sbom(write(tmp_path / "sbom.spdx.json", json.dumps(doc, indent=2)))
    assert [(p.name, p.version) for p in inventory.packages] == [("torch", "2.5.1")]


def test_pdm_lock(tmp_path: Path) -> None:
    lock = write(
        tmp_path / "pdm.lock",
        '[metadata]\ngroups = ["default", "dev"]\nlock_version = "4.5.0"\n\n[[metadata.targets]]\n'
        'requires_python = ">=3.10"\n\n'
        '[[package]]\nname = "torch"\nversion = "2.5.1"\ngroups = ["default"]\n\n'
        '[[package]]\nname = "pywin32"\nversion = "306"\ngroups = ["default"]\nmarker = "sys_platform == \\"win32\\""\n\n'
        '[[package]]\nname = "pytest"\nversion = "8.3.3"\ngroups = ["dev"]\n',
    )
    everything = read_lockfile(lock)
    assert {(p.name, p.version, p.line, p.scope) for p in everything.packages} == {
        ("torch", "2.5.1", 8, None), ("pywin32", "306", 13, None), ("pytest", "8.3.3", 19, "dev"),
    }  # fmt: skip
    from monitor.stack.inventory.target import Target

    linux = read_lockfile(lock, target=Target.parse("python_version=3.11,sys_platform=linux"))
    assert {p.name for p in linux.packages} == {"torch", "pytest"}


# --- CLI behaviour ---------------------------------------------------------------------------------------


def test_unwritable_output_is_an_input_error_not_a_policy_failure(tmp_path: Path, osv_dir: Path) -> None:
    reqs = write(tmp_path / "requirements.txt", "torch==2.5.1\n")
    missing_dir = scan(str(reqs), "--advisories", str(osv_dir), "--index", "none", "-o", str(tmp_path / "no" / "x"))
    assert missing_dir.exit_code == 2 and "cannot write the report" in missing_dir.output
    assert "Traceback" not in missing_dir.output
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        # root may write anywhere a mode allows nothing; /proc/version refuses even root
        where = "/proc/version" if os.access(locked, os.W_OK) else str(locked / "r.sarif")
        denied = scan(str(reqs), "--advisories", str(osv_dir), "--index", "none", "-o", where)
        assert denied.exit_code == 2 and "cannot write the report" in denied.output, denied.output
        assert "Traceback" not in denied.output
    finally:
        locked.chmod(0o700)


def test_fail_on_undetermined_respects_fail_on_and_says_what_failed(tmp_path: Path, osv_dir: Path) -> None:
    latest = write(tmp_path / "requirements.txt", "torch==2.15.0\n")
    base = [str(latest), "--advisories", str(osv_dir), "--index", "none", "--format", "json"]
    doc = json.loads(scan(*base, "--fail-on", "never").stdout)
    undetermined = [f for f in doc["targets"][0]["findings"] if f["state"] == "undetermined"]
    assert undetermined and not any(f["severity"] == "critical" for f in undetermined)
    strict = scan(*base, "--fail-on", "critical", "--fail-on-undetermined")
    assert strict.exit_code == 0, strict.stderr  # none of them is critical
    loose = scan(*base, "--fail-on", "any", "--fail-on-undetermined")
    assert loose.exit_code == 1
    assert "undetermined finding(s)" in loose.stderr and "at or above --fail-on" not in loose.stderr


def test_nothing_to_check_has_its_own_exit_code(tmp_path: Path, osv_dir: Path) -> None:
    unpinned = write(tmp_path / "requirements.txt", "torch>=2.0\nnumpy\n")
    result = scan(str(unpinned), "--advisories", str(osv_dir), "--index", "none")
    assert result.exit_code == 3 and "nothing to check" in result.output


def test_offline_error_suggests_an_offline_database(tmp_path: Path) -> None:
    reqs = write(tmp_path / "requirements.txt", "torch==2.5.1\n")
    result = scan(str(reqs), "--advisories", f"http://127.0.0.1:{free_port()}", "--index", "none")
    assert result.exit_code == 2 and "--advisories DIR|ZIP" in result.output


def test_without_an_index_no_claim_about_releases(tmp_path: Path, osv_dir: Path) -> None:
    reqs = write(tmp_path / "requirements.txt", "torch==2.10.0\n")
    result = scan(str(reqs), "--advisories", str(osv_dir), "--index", "none", "--fail-on", "never")
    assert "no release above last_affected" not in result.output
    assert "not looked up" in result.output


def test_directory_scan_finds_sboms_by_content(tmp_path: Path) -> None:
    cdx = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [
        {"type": "library", "name": "torch", "version": "2.5.1", "purl": "pkg:pypi/torch@2.5.1"}]}  # fmt: skip
    write(tmp_path / "results.json", json.dumps(cdx, indent=2))
    write(tmp_path / "package.json", '{"name": "web", "version": "1.0.0"}')
    inventory = read_repo(tmp_path)
    assert [(p.name, p.version) for p in inventory.packages] == [("torch", "2.5.1")]


def test_type_override_and_target_environment(tmp_path: Path, osv_dir: Path) -> None:
    locked = write(tmp_path / "locked.txt", 'torch==2.5.1\npywin32==306 ; sys_platform == "win32"\n')
    untyped = scan(str(locked), "--advisories", str(osv_dir), "--index", "none")
    assert untyped.exit_code == 2 and "--type PATH=FORMAT" in untyped.output
    for typed in (f"{locked}=requirements", f"requirements:{locked}"):
        doc = json.loads(scan("--type", typed, "--advisories", str(osv_dir), "--index", "none", "--format", "json",
                              "--fail-on", "never").stdout)  # fmt: skip
        assert doc["targets"][0]["packages"] == 2
    linux = json.loads(scan("--type", f"{locked}=requirements", "--environment", "python_version=3.11,sys_platform=linux",
                            "--advisories", str(osv_dir), "--index", "none", "--format", "json",
                            "--fail-on", "never").stdout)  # fmt: skip
    assert linux["targets"][0]["packages"] == 1
    bad = scan(str(locked), "--environment", "python=3.11", "--advisories", str(osv_dir))
    assert bad.exit_code == 2 and "python_version" in bad.output
    assert scan("--type", f"{locked}=rpm").exit_code == 2
