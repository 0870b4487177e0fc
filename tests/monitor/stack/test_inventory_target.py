"""A lock file read for the environment it is installed into: PEP 508 markers evaluated per entry
(requirements, Pipfile.lock, poetry.lock, pylock.toml), uv.lock's dependency graph walked along
the edges whose markers hold, conda-lock's platforms; the real uv.lock, pylock.toml and
requirements export of torch agree for each target. Without a target every pin stays."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from collectors.stack.inventory import LOCKFILE
from monitor.config.loader import parse_config
from monitor.core.errors import ConfigError
from monitor.runtime import config_checks
from monitor.stack.inventory import Inventory, read_lockfile, read_repo
from monitor.stack.inventory.target import Target

LINUX = Target.declare(python_version="3.11")
MAC = Target.declare(python_version="3.10", sys_platform="darwin", platform_machine="arm64")
WINDOWS = Target.declare(python_version="3.12", sys_platform="win32", platform_machine="AMD64")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def pairs(inv: Inventory) -> set[tuple[str, str]]:
    return {(p.name, p.version) for p in inv.packages}


def skipped_note(inv: Inventory) -> str:
    return next(n for n in inv.notes if "not installed on the target" in n)


def test_the_declared_environment_is_complete_and_nothing_comes_from_this_machine() -> None:
    env = WINDOWS.environment
    assert env["platform_system"] == "Windows" and env["os_name"] == "nt" and env["python_full_version"] == "3.12.0"
    assert (
        WINDOWS.python == "3.12"
        and Target.declare(python_version="3.12", python_full_version="3.12.7").python == "3.12.7"
    )
    assert WINDOWS.conda_subdir == "win-64" and MAC.conda_subdir == "osx-arm64" and LINUX.conda_subdir == "linux-64"
    # every PEP 508 variable is declared, so `packaging` never fills one in from the machine running mlmon
    assert set(env) >= {
        "implementation_version",
        "platform_release",
        "platform_version",
        "platform_python_implementation",
    }
    assert WINDOWS.holds("os_name == 'nt' and python_version >= '3.12'") is True
    assert LINUX.holds("platform_system == 'Darwin'") is False and MAC.holds("platform_system == 'Darwin'") is True
    # an extra the marker names may be requested: kept; an unreadable marker is neither true nor false
    assert LINUX.holds("sys_platform == 'linux' and extra == 'extra-4-demo-cu124'") is True
    assert LINUX.holds("sys_platform == 'darwin' and extra == 'cpu'") is False
    assert LINUX.holds("group == 'group-4-demo-dev'") is None


REQUIREMENTS = """
torch==2.5.1+cu121 ; sys_platform == "linux"
torch==2.5.1 ; sys_platform == "darwin"
pywin32==306 ; sys_platform == "win32"
tomli==2.0.1 ; python_version < "3.11"
nvidia-cublas-cu12==12.1.3.1 ; platform_machine == "x86_64" and platform_system == "Linux"
numpy==1.26.4
colorama==0.4.6 ; extra == "cli"
https://files.example/triton-3.1.0-cp311-cp311-linux_x86_64.whl ; sys_platform == "linux"
"""


def test_requirements_keep_the_lines_whose_markers_hold(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", REQUIREMENTS)
    everything = read_lockfile(path)
    assert len(everything.packages) == 8 and everything.versions("torch") == ("2.5.1+cu121", "2.5.1")
    assert not any("not installed" in n for n in everything.notes)

    linux = read_lockfile(path, target=LINUX)
    assert pairs(linux) == {
        ("torch", "2.5.1+cu121"), ("nvidia-cublas-cu12", "12.1.3.1"), ("numpy", "1.26.4"),
        ("colorama", "0.4.6"), ("triton", "3.1.0"),
    }  # fmt: skip
    assert linux.torch is not None and (linux.torch.variant, linux.torch.accelerator) == ("cuda", "12.1")
    note = skipped_note(linux)
    assert (
        "3 entries" in note
        and "Python 3.11 on linux x86_64" in note
        and "pywin32==306, tomli==2.0.1, torch==2.5.1" in note
    )
    assert str(path) in note
    # a requirements file names no Python: the inventory's is the declared one
    assert linux.python_version == "3.11" and everything.python_version is None

    mac = read_lockfile(path, target=MAC)
    assert pairs(mac) == {("torch", "2.5.1"), ("tomli", "2.0.1"), ("numpy", "1.26.4"), ("colorama", "0.4.6")}
    # the lines keep their own line numbers after others are left out
    assert next(p for p in mac.packages if p.name == "numpy").line == 6


def test_includes_and_the_pip_list_of_a_conda_environment_follow_the_target(tmp_path: Path) -> None:
    write(tmp_path / "base.txt", 'pywin32==306 ; sys_platform == "win32"\nnumpy==1.26.4\n')
    top = write(tmp_path / "requirements.txt", "-r base.txt\ntorch==2.5.1\n")
    assert pairs(read_lockfile(top, target=LINUX)) == {("numpy", "1.26.4"), ("torch", "2.5.1")}
    assert pairs(read_lockfile(top, target=WINDOWS)) == {("numpy", "1.26.4"), ("torch", "2.5.1"), ("pywin32", "306")}
    env = write(tmp_path / "environment.yml", """
        dependencies:
          - python=3.11
          - pip:
            - torch==2.5.1 ; sys_platform == "darwin"
            - numpy==1.26.4
    """)  # fmt: skip
    assert pairs(read_lockfile(env, target=LINUX)) == {("numpy", "1.26.4")}
    assert pairs(read_lockfile(env, target=MAC)) == {("numpy", "1.26.4"), ("torch", "2.5.1")}


def test_pipfile_lock_markers_and_a_marker_that_cannot_be_read(tmp_path: Path) -> None:
    doc = {
        "_meta": {"hash": {"sha256": "x"}, "pipfile-spec": 6, "requires": {"python_version": "3.11"}, "sources": []},
        "default": {
            "torch": {"hashes": [], "version": "==2.5.1"},
            "pywin32": {"hashes": [], "markers": "sys_platform == 'win32'", "version": "==306"},
            "odd": {"hashes": [], "markers": "sys_platform = 'linux'", "version": "==1.0"},
        },
        "develop": {"pytest": {"hashes": [], "markers": "python_version >= '3.8'", "version": "==8.3.0"}},
    }
    path = write(tmp_path / "Pipfile.lock", json.dumps(doc, indent=4))
    inv = read_lockfile(path, target=LINUX)
    assert pairs(inv) == {("torch", "2.5.1"), ("odd", "1.0"), ("pytest", "8.3.0")}
    assert "pywin32==306" in skipped_note(inv)
    assert any(
        "marker of odd==1.0 (sys_platform = 'linux') could not be read; the entry is checked" in n for n in inv.notes
    )
    assert ("pywin32", "306") in pairs(read_lockfile(path, target=WINDOWS))


def test_poetry_lock_markers_as_one_string_or_one_per_group(tmp_path: Path) -> None:
    path = write(tmp_path / "poetry.lock", """
        [[package]]
        name = "torch"
        version = "2.5.1"
        optional = false
        python-versions = ">=3.9"
        groups = ["main"]

        [[package]]
        name = "colorama"
        version = "0.4.6"
        optional = false
        python-versions = ">=3.7"
        groups = ["main", "dev"]
        markers = {main = "platform_system == \\"Windows\\"", dev = "sys_platform == \\"win32\\""}

        [[package]]
        name = "exceptiongroup"
        version = "1.2.2"
        optional = false
        python-versions = ">=3.7"
        groups = ["dev"]
        markers = "python_version < \\"3.11\\""

        [metadata]
        lock-version = "2.1"
        python-versions = ">=3.10"
    """)  # fmt: skip
    assert pairs(read_lockfile(path, target=LINUX)) == {("torch", "2.5.1")}
    assert pairs(read_lockfile(path, target=MAC)) == {("torch", "2.5.1"), ("exceptiongroup", "1.2.2")}
    windows = read_lockfile(path, target=WINDOWS)
    assert pairs(windows) == {("torch", "2.5.1"), ("colorama", "0.4.6")}
    assert pairs(read_lockfile(path)) == pairs(windows) | {("exceptiongroup", "1.2.2")}


def test_pylock_toml_package_markers(tmp_path: Path) -> None:
    path = write(tmp_path / "pylock.toml", """
        lock-version = "1.0"
        created-by = "hand"

        [[packages]]
        name = "torch"
        version = "2.5.1"
        marker = "sys_platform == 'darwin'"
        wheels = [{ url = "https://files.example/torch-2.5.1-cp311-none-macosx_11_0_arm64.whl", hashes = { sha256 = "aa" } }]

        [[packages]]
        name = "torch"
        version = "2.5.1+cu121"
        marker = "sys_platform == 'linux'"
        wheels = [{ url = "https://download.example/whl/cu121/torch-2.5.1%2Bcu121-cp311-cp311-linux_x86_64.whl", hashes = { sha256 = "bb" } }]
    """)  # fmt: skip
    assert pairs(read_lockfile(path, target=LINUX)) == {("torch", "2.5.1+cu121")}
    assert pairs(read_lockfile(path, target=MAC)) == {("torch", "2.5.1")}


UV_LOCK = """
version = 1
revision = 2
requires-python = ">=3.10"
resolution-markers = ["sys_platform == 'darwin'", "sys_platform != 'darwin'"]

[[package]]
name = "demo"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "torch", version = "2.5.1", source = { registry = "https://pypi.example/simple" }, marker = "sys_platform == 'darwin'" },
    { name = "torch", version = "2.5.1+cu121", source = { registry = "https://download.example/whl/cu121" }, marker = "sys_platform != 'darwin'" },
    { name = "extra-thing", marker = "extra == 'extra-4-demo-gpu'" },
]

[package.optional-dependencies]
viz = [{ name = "matplotlib" }]

[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "torch"
version = "2.5.1"
source = { registry = "https://pypi.example/simple" }
resolution-markers = ["sys_platform == 'darwin'"]
dependencies = [{ name = "filelock" }]

[[package]]
name = "torch"
version = "2.5.1+cu121"
source = { registry = "https://download.example/whl/cu121" }
resolution-markers = ["sys_platform != 'darwin'"]
dependencies = [
    { name = "filelock" },
    { name = "nvidia-cublas-cu12", marker = "platform_machine == 'x86_64' and sys_platform == 'linux'" },
]

[[package]]
name = "nvidia-cublas-cu12"
version = "12.1.3.1"
source = { registry = "https://pypi.example/simple" }

[[package]]
name = "filelock"
version = "3.16.1"
source = { registry = "https://pypi.example/simple" }

[[package]]
name = "extra-thing"
version = "1.0.0"
source = { registry = "https://pypi.example/simple" }

[[package]]
name = "matplotlib"
version = "3.9.2"
source = { registry = "https://pypi.example/simple" }
dependencies = [{ name = "packaging" }, { name = "pillow", extra = ["fonts"] }]

[[package]]
name = "pillow"
version = "11.0.0"
source = { registry = "https://pypi.example/simple" }

[package.optional-dependencies]
fonts = [{ name = "fonttools", marker = "python_full_version >= '3.11'" }]
docs = [{ name = "sphinx" }]

[[package]]
name = "fonttools"
version = "4.55.0"
source = { registry = "https://pypi.example/simple" }

[[package]]
name = "sphinx"
version = "8.1.3"
source = { registry = "https://pypi.example/simple" }

[[package]]
name = "pytest"
version = "8.3.3"
source = { registry = "https://pypi.example/simple" }
dependencies = [
    { name = "packaging" },
    { name = "iniconfig" },
    { name = "colorama", marker = "sys_platform == 'win32'" },
]

[[package]]
name = "packaging"
version = "24.2"
source = { registry = "https://pypi.example/simple" }

[[package]]
name = "iniconfig"
version = "2.0.0"
source = { registry = "https://pypi.example/simple" }

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.example/simple" }
"""


def test_uv_lock_is_walked_from_the_project_along_edges_whose_markers_hold(tmp_path: Path) -> None:
    path = write(tmp_path / "uv.lock", UV_LOCK)
    linux = read_lockfile(path, target=LINUX)
    scopes = {p.name: p.scope for p in linux.packages}
    assert pairs(linux) == {
        ("torch", "2.5.1+cu121"), ("filelock", "3.16.1"), ("nvidia-cublas-cu12", "12.1.3.1"),
        ("extra-thing", "1.0.0"), ("matplotlib", "3.9.2"), ("packaging", "24.2"), ("pillow", "11.0.0"),
        ("fonttools", "4.55.0"), ("pytest", "8.3.3"), ("iniconfig", "2.0.0"),
    }  # fmt: skip
    # pytest and what only it brings are dev; packaging is needed by matplotlib too, so it is not
    assert scopes["pytest"] == scopes["iniconfig"] == "dev" and scopes["packaging"] is None
    assert scopes["torch"] is None and linux.torch is not None and linux.torch.accelerator == "12.1"
    # sphinx hangs off an extra of pillow nobody asks for; colorama only on Windows; torch for macOS
    assert "colorama==0.4.6, sphinx==8.1.3, torch==2.5.1" in skipped_note(linux)

    mac = read_lockfile(path, target=MAC)
    assert mac.versions("torch") == ("2.5.1",) and not mac.versions("nvidia-cublas-cu12")
    assert not mac.versions("fonttools"), "fonttools needs Python >= 3.11; the target is 3.10"
    assert WINDOWS.holds("sys_platform == 'win32'") and read_lockfile(path, target=WINDOWS).versions("colorama")

    everything = read_lockfile(path)
    assert len(everything.packages) == 13 and not any("not installed" in n for n in everything.notes)
    assert {p.name for p in everything.packages if p.scope == "dev"} == {"pytest", "iniconfig", "colorama"}


def test_conda_lock_keeps_the_targets_platform(tmp_path: Path) -> None:
    path = write(tmp_path / "conda-lock.yml", """
        version: 1
        metadata: {platforms: [linux-64, osx-arm64]}
        package:
          - {name: pytorch, version: 2.5.1, manager: conda, platform: linux-64,
             url: "https://conda.example/pytorch/linux-64/pytorch-2.5.1-py3.11_cuda12.1_cudnn9.1.0_0.tar.bz2"}
          - {name: pytorch, version: 2.5.0, manager: conda, platform: osx-arm64,
             url: "https://conda.example/pytorch/osx-arm64/pytorch-2.5.0-py3.11_0.tar.bz2"}
          - {name: tqdm, version: 4.66.5, manager: conda, platform: noarch}
          - {name: numpy, version: 1.26.4, manager: pip, platform: osx-arm64}
    """)  # fmt: skip
    linux = read_lockfile(path, target=LINUX)
    assert pairs(linux) == {("torch", "2.5.1"), ("tqdm", "4.66.5")}
    assert "pytorch (osx-arm64)" in skipped_note(linux)
    assert pairs(read_lockfile(path, target=MAC)) == {("torch", "2.5.0"), ("tqdm", "4.66.5"), ("numpy", "1.26.4")}
    assert len(read_lockfile(path).packages) == 4


def test_a_repository_reads_its_lock_files_for_the_target(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "requirements.txt", REQUIREMENTS)
    write(tmp_path / "repo" / "svc" / "uv.lock", UV_LOCK)
    inv = read_repo(tmp_path / "repo", target=MAC)
    assert inv.versions("torch") == ("2.5.1",) and not inv.versions("nvidia-cublas-cu12")


def test_the_real_lock_files_of_torch_agree_for_each_target(tool_files: dict[str, Path]) -> None:
    """uv lock, uv's pylock.toml export and uv's requirements export of torch 2.13.0 + pillow:
    three ways of writing the markers (graph edges, per package, per line), one answer per target."""
    by_target: dict[str, set[tuple[str, str]]] = {}
    for label, target in (("linux", LINUX), ("mac", MAC), ("windows", WINDOWS)):
        found = [
            pairs(read_lockfile(tool_files[name], target=target))
            for name in ("uv.lock", "pylock.toml", "uv-requirements.txt")
        ]
        assert found[0] == found[1] == found[2], label
        by_target[label] = found[0]
    linux_only = {name for name, _ in by_target["linux"] - by_target["mac"]}
    # torch's CUDA wheels come only on Linux x86_64
    assert any(name.startswith("nvidia-") for name in linux_only), linux_only
    assert not any(name.startswith("nvidia-") for name, _ in by_target["mac"] | by_target["windows"])
    assert ("torch", "2.13.0") in by_target["mac"] and ("pillow", "10.0.0") in by_target["windows"]
    # the same torch 2.13.0 is a CUDA build on Linux and a CPU one on macOS and Windows
    builds = {
        label: read_lockfile(tool_files["uv.lock"], target=target).torch
        for label, target in (("linux", LINUX), ("mac", MAC), ("windows", WINDOWS))
    }
    assert builds["linux"] is not None and builds["linux"].variant == "cuda" and builds["linux"].accelerator
    assert builds["mac"] is not None and builds["mac"].variant == "cpu" and "macOS" in builds["mac"].evidence
    assert builds["windows"] is not None and builds["windows"].variant == "cpu"
    assert by_target["linux"] <= pairs(read_lockfile(tool_files["uv.lock"]))


def test_the_lockfile_source_takes_a_target_environment(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", REQUIREMENTS)
    params = LOCKFILE.params.model_validate(
        {
            "path": str(path),
            "environment": {"python_version": "3.10", "sys_platform": "darwin", "platform_machine": "arm64"},
        }
    )
    assert params.environment is not None and params.environment.target() == MAC


@pytest.mark.parametrize(
    ("environment", "fragment"),
    [
        ("{python_version: '3.11', sys_platform: windows}", "params.environment.sys_platform"),
        ("{sys_platform: linux}", "params.environment.python_version: required field is missing"),
        ("{python_version: '3.11', python_full_version: '3.12.1'}", "is not a 3.11 release"),
        ("{python_version: 3.11.2}", "params.environment.python_version"),
        ("{python_version: '3.11', os: linux}", "params.environment.os"),
    ],
)
def test_a_bad_target_environment_is_named_in_the_configuration(environment: str, fragment: str) -> None:
    text = f"""
projects:
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - {{name: lock, kind: lockfile, params: {{path: /srv/churn/uv.lock, environment: {environment}}}}}
"""
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "mlmon.yaml", config_checks())
    assert fragment in str(raised.value) and "mlmon.yaml:" in str(raised.value)
