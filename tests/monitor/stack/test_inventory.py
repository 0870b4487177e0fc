"""Inventories from every input kind: hand-written files in each documented format, lock files and
an SBOM made by the real tools (uv, pip-compile, cyclonedx-py), and a real virtualenv with torch
read without importing anything from it. Malformed inputs name the file and the position."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from monitor.stack.inventory import InventoryError, read_environment, read_lockfile, read_path, read_repo, read_sbom
from monitor.stack.inventory.changes import changes
from monitor.stack.inventory.conda import parse_matchspec
from monitor.stack.inventory.environment import read_version_py
from monitor.stack.inventory.model import Inventory, package
from monitor.stack.inventory.torch_build import from_conda_build, from_label


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def pairs(inv: Inventory) -> dict[str, str]:
    return {p.name: p.version for p in inv.packages}


# --- requirements.txt ------------------------------------------------------------------------------

REQUIREMENTS = """
--index-url https://download.example/whl/cu121
--extra-index-url https://mirror.example/simple
-r base.txt
-c constraints.txt
# the GPU stack
torch==2.5.1+cu121 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
Pillow==8.0.0 ; python_version < "3.12"  # inline comment
numpy>=1.20
torchvision===0.20.1+cu121
-e ./local-package
transformers @ https://files.example/transformers-4.30.0-py3-none-any.whl
requests==2.*
"""


def test_requirements_with_pins_hashes_options_includes_and_local_versions(tmp_path: Path) -> None:
    write(tmp_path / "base.txt", "numpy==1.21.0\n")
    inv = read_lockfile(write(tmp_path / "requirements.txt", REQUIREMENTS))
    assert pairs(inv) == {"numpy": "1.21.0", "torch": "2.5.1+cu121", "pillow": "8.0.0",
                          "torchvision": "0.20.1+cu121", "transformers": "4.30.0"}  # fmt: skip
    torch = next(p for p in inv.packages if p.name == "torch")
    assert torch.line == 6 and torch.index == "https://download.example/whl/cu121"
    assert inv.torch is not None and (inv.torch.variant, inv.torch.accelerator) == ("cuda", "12.1")
    notes = "\n".join(inv.notes)
    assert "numpy>=1.20 is not pinned" in notes and "requests==2.* is not pinned" in notes
    assert "editable requirement" in notes and "constraints file" in notes
    assert str(tmp_path / "base.txt") in " ".join(inv.files)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("torch==2.5.1\nnot a == requirement ==\n", 2, "invalid requirement"),
        ("torch==2.5.1\n--no-such-option x\n", 2, "unknown option '--no-such-option'"),
        ("-r missing.txt\n", 1, "-r missing.txt: cannot read"),
    ],
)
def test_malformed_requirements_name_the_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path / "requirements.txt", text)
    with pytest.raises(InventoryError) as raised:
        read_lockfile(path)
    assert raised.value.path == str(path) and raised.value.line == line
    assert fragment in str(raised.value) and str(raised.value).startswith(f"{path}:{line}")


# --- TOML lock files ------------------------------------------------------------------------------------

POETRY = """
[[package]]
name = "torch"
version = "2.5.1+cu121"
description = ""
optional = false
python-versions = ">=3.8"
groups = ["main"]
files = []

[package.source]
type = "legacy"
url = "https://download.example/whl/cu121"
reference = "pytorch-cu121"

[[package]]
name = "pytest"
version = "8.3.0"
description = ""
optional = false
python-versions = ">=3.8"
groups = ["dev"]
files = []

[metadata]
lock-version = "2.1"
python-versions = ">=3.11,<3.13"
content-hash = "abc"
"""


def test_poetry_lock(tmp_path: Path) -> None:
    inv = read_lockfile(write(tmp_path / "poetry.lock", POETRY))
    assert pairs(inv) == {"torch": "2.5.1+cu121", "pytest": "8.3.0"}
    torch, pytest_pkg = inv.packages
    assert torch.line == 1 and torch.index == "https://download.example/whl/cu121" and torch.scope is None
    assert pytest_pkg.scope == "dev" and pytest_pkg.line == 15
    assert inv.torch is not None and inv.torch.accelerator == "12.1"


def test_uv_lock_skips_the_project_itself(tmp_path: Path) -> None:
    inv = read_lockfile(write(tmp_path / "uv.lock", """
        version = 1
        revision = 5
        requires-python = ">=3.11"

        [[package]]
        name = "demo"
        version = "0.1.0"
        source = { virtual = "." }

        [[package]]
        name = "torch"
        version = "2.5.1"
        source = { registry = "https://pypi.example/simple" }

        [[package]]
        name = "nvidia-cuda-runtime-cu12"
        version = "12.4.127"
        source = { registry = "https://pypi.example/simple" }
    """))  # fmt: skip
    assert pairs(inv) == {"torch": "2.5.1", "nvidia-cuda-runtime-cu12": "12.4.127"}
    # a default-index wheel has no local label: the pinned CUDA runtime names the build
    assert inv.torch is not None and (inv.torch.variant, inv.torch.accelerator) == ("cuda", "12.4")
    assert "nvidia-cuda-runtime-cu12==12.4.127" in inv.torch.evidence


def test_pylock_toml(tmp_path: Path) -> None:
    inv = read_lockfile(write(tmp_path / "pylock.toml", """
        lock-version = "1.0"
        created-by = "hand"
        requires-python = ">=3.11"

        [[packages]]
        name = "torch"
        version = "2.6.0+cpu"
        index = "https://download.example/whl/cpu"
        wheels = [{ url = "https://download.example/whl/cpu/torch-2.6.0%2Bcpu-cp311-cp311-linux_x86_64.whl", hashes = { sha256 = "aa" } }]

        [[packages]]
        name = "local-thing"
        directory = { path = "./local" }
    """))  # fmt: skip
    assert pairs(inv) == {"torch": "2.6.0+cpu"}
    assert inv.packages[0].line == 5 and inv.torch is not None and inv.torch.variant == "cpu"
    assert any("local-thing has no version" in n for n in inv.notes)


@pytest.mark.parametrize(
    ("name", "text", "line", "fragment"),
    [
        ("poetry.lock", '[[package]]\nname = "torch"\nversion = "2.5\n', 3, "invalid TOML"),
        ("poetry.lock", '[[package]]\nname = "a"\nversion = "1"\n\n[[package]]\nname = "torch"\n', 5,
         "package[1] (torch): expected a string `version`"),
        ("uv.lock", 'version = 1\n[[package]]\nname = "torch"\nsource = "pypi"\n', 2, "expected a `source` table"),
        ("pylock.toml", 'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "a"\ndirectory = { path = "." }\n'
                        '[[packages]]\nname = "torch"\nversion = "2.5.1 final"\ndirectory = { path = "." }\n', 6,
         "Invalid version"),
    ],
)  # fmt: skip
def test_malformed_toml_lock_files_name_the_position(
    tmp_path: Path, name: str, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(InventoryError) as raised:
        read_lockfile(path)
    assert raised.value.line == line and fragment in str(raised.value) and str(path) in str(raised.value)


# --- Pipfile.lock, conda ---------------------------------------------------------------------------------


def test_pipfile_lock(tmp_path: Path) -> None:
    doc = {
        "_meta": {"hash": {"sha256": "x"}, "pipfile-spec": 6, "requires": {"python_version": "3.11"},
                  "sources": [{"name": "pytorch", "url": "https://download.example/whl/cu121", "verify_ssl": True}]},
        "default": {"torch": {"hashes": ["sha256:aa"], "index": "pytorch", "version": "==2.5.1+cu121"},
                    "numpy": {"hashes": [], "version": "==1.21.0"}},
        "develop": {"pytest": {"hashes": [], "version": "==8.3.0"}, "black": {"editable": True, "path": "."}},
    }  # fmt: skip
    inv = read_lockfile(write(tmp_path / "Pipfile.lock", json.dumps(doc, indent=4)))
    assert pairs(inv) == {"torch": "2.5.1+cu121", "numpy": "1.21.0", "pytest": "8.3.0"}
    torch = next(p for p in inv.packages if p.name == "torch")
    assert torch.index == "https://download.example/whl/cu121" and torch.line is not None
    assert inv.python_version == "3.11" and any("black has no `==` version" in n for n in inv.notes)
    with pytest.raises(InventoryError) as raised:
        read_lockfile(write(tmp_path / "bad" / "Pipfile.lock", '{"_meta": {}, "default": {\n  "torch": [1,]\n}}'))
    assert (raised.value.line, raised.value.column) == (2, 15) and "invalid JSON" in str(raised.value)


def test_conda_environment_yml(tmp_path: Path) -> None:
    inv = read_lockfile(write(tmp_path / "environment.yml", """
        name: train
        channels: [pytorch, nvidia, conda-forge]
        dependencies:
          - python=3.11
          - pytorch::pytorch=2.5.1=py3.11_cuda12.1_cudnn9.1.0_0
          - pytorch-cuda=12.1
          - numpy>=1.24
          - pip
          - pip:
              - transformers==4.30.0
              - --extra-index-url https://mirror.example/simple
    """))  # fmt: skip
    assert pairs(inv) == {"torch": "2.5.1", "pytorch-cuda": "12.1", "transformers": "4.30.0"}
    torch = next(p for p in inv.packages if p.name == "torch")
    assert torch.ecosystem == "conda" and torch.build == "py3.11_cuda12.1_cudnn9.1.0_0" and torch.line == 5
    assert inv.python_version == "3.11"
    assert inv.torch is not None and (inv.torch.variant, inv.torch.accelerator) == ("cuda", "12.1")
    assert next(p for p in inv.packages if p.name == "transformers").line == 10
    assert any("numpy>=1.24 is not pinned" in n for n in inv.notes)


def test_conda_lock_yml_keeps_version_text(tmp_path: Path) -> None:
    inv = read_lockfile(write(tmp_path / "conda-lock.yml", """
        version: 1
        metadata:
          platforms: [linux-64, osx-arm64]
        package:
          - name: pytorch
            version: 2.5.1
            manager: conda
            platform: linux-64
            url: https://conda.example/pytorch/linux-64/pytorch-2.5.1-py3.11_cuda12.4_cudnn9.1.0_0.tar.bz2
            hash: {md5: a}
          - name: pytorch
            version: 2.5.1
            manager: conda
            platform: osx-arm64
            url: https://conda.example/pytorch/osx-arm64/pytorch-2.5.1-py3.11_0.tar.bz2
            hash: {md5: b}
          - name: libfoo
            version: 1.10
            manager: conda
            platform: linux-64
            url: https://conda.example/libfoo-1.10-0.conda
            hash: {md5: c}
          - name: requests
            version: 2.32.0
            manager: pip
            platform: linux-64
            url: https://files.example/requests-2.32.0-py3-none-any.whl
            hash: {sha256: d}
    """))  # fmt: skip
    assert pairs(inv) == {"torch": "2.5.1", "libfoo": "1.10", "requests": "2.32.0"}
    assert inv.torch is not None and inv.torch.accelerator == "12.4"


def test_matchspecs_and_build_strings() -> None:
    assert parse_matchspec("pytorch=2.5.1=py3.11_cuda12.1_cudnn9.1.0_0") == (
        "pytorch",
        "2.5.1",
        "py3.11_cuda12.1_cudnn9.1.0_0",
        None,
    )
    assert parse_matchspec("conda-forge::numpy==1.26.4") == ("numpy", "1.26.4", None, "conda-forge")
    assert parse_matchspec("numpy 1.26.4 py311h1") == ("numpy", "1.26.4", "py311h1", None)
    assert parse_matchspec("numpy=1.26.*") == ("numpy", "1.26", None, None)
    assert parse_matchspec("numpy>=1.2")[1] is None and parse_matchspec("numpy")[1] is None
    conda_forge = from_conda_build("2.5.1", "cuda126_py311h1234_300")
    assert conda_forge is not None and conda_forge.accelerator == "12.6"
    cpu = from_conda_build("2.5.1", "cpu_generic_py311h")
    assert cpu is not None and cpu.variant == "cpu"


@pytest.mark.parametrize(
    ("version", "variant", "accelerator"),
    [("2.5.1+cu121", "cuda", "12.1"), ("2.3.0+cu118", "cuda", "11.8"), ("2.9.0+cu130", "cuda", "13.0"),
     ("2.6.0+cpu", "cpu", None), ("2.5.1+rocm6.2", "rocm", "6.2"), ("2.4.0+cpu.cxx11.abi", "cpu", None),
     ("2.7.0+xpu", "xpu", None), ("2.5.1+mybuild", "unknown", None)],
)  # fmt: skip
def test_local_labels_name_the_build(version: str, variant: str, accelerator: str | None) -> None:
    build = from_label(version)
    assert build is not None and (build.variant, build.accelerator) == (variant, accelerator)
    assert from_label("2.5.1") is None


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "environment.yml", "dependencies:\n  - pytorch=2.5.1\n   - bad: [\n")
    with pytest.raises(InventoryError) as raised:
        read_lockfile(path)
    assert raised.value.line == 3 and "invalid YAML" in str(raised.value)


# --- SBOMs -------------------------------------------------------------------------------------------------


def test_cyclonedx_with_percent_encoded_purls_nested_components_and_no_purl(tmp_path: Path) -> None:
    doc = {
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "metadata": {"component": {"type": "application", "name": "svc", "version": "1"}},
        "components": [
            {"type": "library", "name": "torch", "version": "2.5.1+cu121", "purl": "pkg:pypi/torch@2.5.1%2Bcu121",
             "components": [{"type": "library", "name": "Pillow", "version": "9.0.0", "purl": "pkg:pypi/pillow@9.0.0"}]},
            {"type": "library", "name": "local-wheel", "version": "0.3.0"},
            {"type": "library", "name": "lodash", "version": "4.17.0", "purl": "pkg:npm/lodash@4.17.0"},
        ],
    }  # fmt: skip
    inv = read_sbom(write(tmp_path / "bom.cdx.json", json.dumps(doc, indent=2)))
    assert pairs(inv) == {"torch": "2.5.1+cu121", "pillow": "9.0.0", "local-wheel": "0.3.0"}
    assert inv.kind == "sbom" and inv.torch is not None and inv.torch.accelerator == "12.1"
    assert any("local-wheel 0.3.0 has no purl" in n for n in inv.notes)
    with pytest.raises(InventoryError) as raised:
        read_sbom(write(tmp_path / "bad.cdx.json", json.dumps({**doc, "components": [{"purl": "pkg:pypi"}]})))
    assert "components[0]: invalid package URL" in str(raised.value)


def test_spdx_json(tmp_path: Path) -> None:
    doc = {
        "spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "svc", "dataLicense": "CC0-1.0",
        "documentDescribes": ["SPDXRef-root"],
        "packages": [
            {"SPDXID": "SPDXRef-root", "name": "svc", "versionInfo": "1.0"},
            {"SPDXID": "SPDXRef-torch", "name": "torch", "versionInfo": "2.6.0+cu124",
             "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                               "referenceLocator": "pkg:pypi/torch@2.6.0%2Bcu124"}]},
            {"SPDXID": "SPDXRef-np", "name": "numpy", "versionInfo": "1.16.0"},
        ],
    }  # fmt: skip
    inv = read_sbom(write(tmp_path / "sbom.spdx.json", json.dumps(doc, indent=2)))
    assert pairs(inv) == {"torch": "2.6.0+cu124", "numpy": "1.16.0"}
    with pytest.raises(InventoryError) as raised:
        read_sbom(write(tmp_path / "v3.spdx.json", json.dumps({"@context": "x", "@graph": []})))
    assert "not supported" in str(raised.value)
    with pytest.raises(InventoryError) as raised:
        read_sbom(write(tmp_path / "other.json", '{"hello": 1}'))
    assert "not an SBOM" in str(raised.value)


# --- environments -----------------------------------------------------------------------------------------


def _dist(site: Path, name: str, version: str) -> None:
    write(site / f"{name.replace('-', '_')}-{version}.dist-info" / "METADATA",
          f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")  # fmt: skip


def test_environment_is_read_without_running_anything(tmp_path: Path) -> None:
    root = tmp_path / "venv"
    site = root / "lib" / "python3.11" / "site-packages"
    write(root / "pyvenv.cfg", "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.9\n")
    _dist(site, "torch", "2.5.1")
    _dist(site, "nvidia-cuda-runtime-cu12", "12.4.127")
    marker = tmp_path / "executed"
    write(site / "torch" / "__init__.py", f"open({str(marker)!r}, 'w').write('imported')\n")
    write(site / "torch" / "version.py", f"""
        from typing import Optional
        open({str(marker)!r}, 'w').write('version.py ran')
        __version__ = '2.5.1'
        debug = False
        cuda: Optional[str] = '12.4'
        git_version = 'abc'
        hip: Optional[str] = None
    """)  # fmt: skip
    write(site / "evil.pth", f"import os; open({str(marker)!r}, 'w').write('pth ran')\n")
    (site / "broken-1.0.dist-info").mkdir()
    inv = read_environment(root)
    assert pairs(inv) == {"torch": "2.5.1", "nvidia-cuda-runtime-cu12": "12.4.127"}
    assert inv.python_version == "3.11.9"
    assert inv.torch is not None and (inv.torch.variant, inv.torch.accelerator) == ("cuda", "12.4")
    assert "version.py" in inv.torch.evidence
    assert not marker.exists()
    assert any("without Name or Version" in n for n in inv.notes)


def test_conda_environment_directory(tmp_path: Path) -> None:
    root = tmp_path / "conda-env"
    meta = root / "conda-meta"
    for name, version, build in [("python", "3.11.9", "h0"), ("pytorch", "2.5.1", "py3.11_cuda12.1_cudnn9.1.0_0"),
                                 ("cudatoolkit", "11.8.0", "h1"), ("numpy", "1.26.4", "py311h")]:  # fmt: skip
        write(meta / f"{name}-{version}-{build}.json", json.dumps({"name": name, "version": version, "build": build}))
    site = root / "lib" / "python3.11" / "site-packages"
    _dist(site, "torch", "2.5.1")
    _dist(site, "numpy", "1.26.4")
    inv = read_environment(root)
    assert pairs(inv) == {"torch": "2.5.1", "numpy": "1.26.4", "cudatoolkit": "11.8.0"}
    assert inv.python_version == "3.11.9"
    assert inv.torch is not None and (inv.torch.variant, inv.torch.accelerator) == ("cuda", "12.1")
    write(meta / "broken.json", "{")
    with pytest.raises(InventoryError) as raised:
        read_environment(root)
    assert "broken.json" in str(raised.value)


def test_not_an_environment(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as raised:
        read_environment(tmp_path)
    assert "no site-packages" in str(raised.value)


def test_real_virtualenv_with_torch_read_without_importing_it(torch_venv: Path) -> None:
    code = (
        "import sys, json; from monitor.stack.inventory import read_environment; "
        f"inv = read_environment({str(torch_venv)!r}); "
        "print(json.dumps({'torch': inv.torch.to_doc(), 'python': inv.python_version, "
        "'pkgs': {p.name: p.version for p in inv.packages}, 'imported': 'torch' in sys.modules}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["imported"] is False
    assert result["pkgs"]["torch"] == "2.13.0+cpu"
    assert result["torch"]["variant"] == "cpu" and result["python"].startswith("3.11")
    assert {"filelock", "sympy", "networkx", "jinja2", "fsspec"} <= set(result["pkgs"])
    version_py = read_version_py(next(torch_venv.glob("lib/python3*/site-packages/torch/version.py")))
    assert version_py["__version__"] == "2.13.0+cpu" and version_py["cuda"] is None


# --- files made by the real tools ----------------------------------------------------------------------


def test_lock_files_and_sbom_made_by_the_real_tools(tool_files: dict[str, Path], torch_venv: Path) -> None:
    uv = read_lockfile(tool_files["uv.lock"])
    pylock = read_lockfile(tool_files["pylock.toml"])
    exported = read_lockfile(tool_files["uv-requirements.txt"])
    for inv in (uv, pylock, exported):
        assert pairs(inv)["torch"] == "2.13.0" and pairs(inv)["pillow"] == "10.0.0"
        # the default index's Linux wheel is a CUDA build without a local label
        assert inv.torch is not None and inv.torch.variant == "cuda" and inv.torch.accelerator
    assert pairs(uv) == pairs(pylock) == pairs(exported)
    compiled = read_lockfile(tool_files["requirements.txt"])
    # pip-compile picked the CPU wheel from pip's find-links: a local label, hashes and option lines
    assert pairs(compiled)["torch"] == "2.13.0+cpu" and compiled.torch is not None and compiled.torch.variant == "cpu"
    text = tool_files["requirements.txt"].read_text()
    torch_line = next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith("torch=="))
    assert next(p for p in compiled.packages if p.name == "torch").line == torch_line
    sbom = read_sbom(tool_files["env.cdx.json"])
    assert pairs(sbom) == pairs(read_environment(torch_venv)) | {}
    assert sbom.torch is not None and sbom.torch.version == "2.13.0+cpu"


# --- repositories and dispatch ---------------------------------------------------------------------------


def test_repo_reads_every_file_and_environment(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / "requirements.txt", "torch==2.5.1+cu121\n")
    write(repo / "services" / "api" / "poetry.lock", POETRY)
    write(repo / "node_modules" / "x" / "requirements.txt", "bad == ==\n")
    write(repo / "docs" / "requirements.txt", "sphinx==7.0.0\n")
    _dist(repo / ".venv" / "lib" / "python3.11" / "site-packages", "numpy", "1.16.0")
    write(repo / ".venv" / "pyvenv.cfg", "version = 3.11.9\n")
    write(repo / "sbom.cdx.json", json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [
        {"type": "library", "name": "pillow", "version": "9.0.0", "purl": "pkg:pypi/pillow@9.0.0"}]}))  # fmt: skip
    inv = read_repo(repo, exclude=["docs/*"])
    assert sorted((p.name, p.version) for p in inv.packages) == [
        ("numpy", "1.16.0"), ("pillow", "9.0.0"), ("pytest", "8.3.0"), ("torch", "2.5.1+cu121"), ("torch", "2.5.1+cu121")]  # fmt: skip
    assert inv.kind == "repo" and inv.python_version == "3.11.9"
    assert inv.versions("torch") == ("2.5.1+cu121",)
    assert read_path(repo).kind == "repo" and read_path(repo / ".venv").kind == "python_env"
    write(repo / "broken" / "uv.lock", "version = [\n")
    with pytest.raises(InventoryError) as raised:
        read_repo(repo)
    assert "broken/uv.lock:1" in str(raised.value)
    with pytest.raises(InventoryError):
        read_repo(tmp_path / "empty-dir-that-does-not-exist")


def test_version_changes_between_inventories() -> None:
    def inv(**versions: str) -> Inventory:
        return Inventory("lockfile", "x", tuple(package(n, v, "x") for n, v in versions.items()))

    old = inv(torch="2.14.1", numpy="1.26.0", pillow="10.0.0")
    new = inv(torch="2.15.0", numpy="1.25.0", transformers="4.40.0")
    found = changes(old, new)
    assert [c.message() for c in found] == [
        "torch 2.14.1 -> 2.15.0", "numpy 1.26.0 -> 1.25.0", "pillow 10.0.0 removed", "transformers 4.40.0 added"]  # fmt: skip
    assert [c.kind for c in found] == ["upgrade", "downgrade", "removed", "added"]
    assert changes(None, new) == []
    assert changes(inv(torch="2.5.1+cu121"), inv(torch="2.5.1+cu124"))[0].kind == "rebuild"


def test_includes_are_followed_only_inside_the_lock_files_directory(tmp_path: Path) -> None:
    secret = "DB_PASSWORD=hunter2"
    write(tmp_path / ".env", secret + "\n")
    write(tmp_path / "app" / "common" / "base.txt", "numpy==2.1.0\n")
    write(tmp_path / "app" / "common" / "broken.txt", f"{secret}\n")
    inside = write(tmp_path / "app" / "requirements.txt", "-r common/base.txt\ntorch==2.5.1\n")
    assert {p.name for p in read_lockfile(inside).packages} == {"numpy", "torch"}
    for include in ("../.env", "/etc/passwd", "common/../../.env"):
        path = write(tmp_path / "app" / "requirements.txt", f"torch==2.5.1\n-r {include}\n")
        with pytest.raises(InventoryError) as raised:
            read_lockfile(path)
        assert raised.value.line == 2 and "includes must stay inside" in str(raised.value)
    path = write(tmp_path / "app" / "requirements.txt", "-r common/broken.txt\n")
    with pytest.raises(InventoryError) as raised:
        read_lockfile(path)
    message = str(raised.value)
    assert f"{tmp_path / 'app' / 'common' / 'broken.txt'} line 1 is not a valid requirements line" in message
    assert "hunter2" not in message and "DB_PASSWORD" not in message


def test_repeated_requirement_lines_stay_linear(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", "torch==2.5.1\n" * 50_000 + "numpy==2.1.0\n")
    inventory = read_lockfile(path)
    assert len(inventory.packages) == 50_001
    assert inventory.versions("torch") == ("2.5.1",) and len(inventory.locations("torch")) == 50_000
