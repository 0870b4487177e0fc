"""Fixtures of the stack tests: the real advisories and release history, servers speaking OSV's
API and PEP 691, a real virtualenv with torch, and lock files / SBOMs made by the real tools."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.stack.advisories.index import AdvisoryIndex
from monitor.stack.advisories.model import Advisory, parse_advisory
from monitor.stack.package_index import configured_index
from tests.monitor.stack.support import CACHE, OsvApi, PackageIndex, cached_venv, osv_documents, run, torch_releases
from tests.support.http_server import LocalHttpServer
from tests.support.peers import missing, shared_data

TORCH_VENV_PACKAGES = ["torch==2.13.0"]
TOOLS = ["uv", "pip-tools", "cyclonedx-bom"]


@pytest.fixture(scope="session")
def osv_dir() -> Path:
    return shared_data("osv")


@pytest.fixture(scope="session")
def osv_docs() -> list[dict[str, Any]]:
    return osv_documents()


@pytest.fixture(scope="session")
def advisories(osv_docs: list[dict[str, Any]]) -> list[Advisory]:
    return [parse_advisory(d) for d in osv_docs]


@pytest.fixture(scope="session")
def index(advisories: list[Advisory]) -> AdvisoryIndex:
    return AdvisoryIndex(advisories)


@pytest.fixture(scope="session")
def releases() -> dict[str, dict[str, Any]]:
    return torch_releases()


@pytest.fixture
def osv_server(osv_docs: list[dict[str, Any]]) -> Iterator[OsvApi]:
    with LocalHttpServer() as server:
        yield OsvApi(server, osv_docs, page_size=7)


@pytest.fixture
def index_server(releases: dict[str, dict[str, Any]]) -> Iterator[PackageIndex]:
    with LocalHttpServer() as server:
        yield PackageIndex(server, {"torch": releases})


@pytest.fixture(scope="session")
def torch_venv() -> Path:
    """A real virtualenv with torch 2.13.0 (the CPU build from pip's configured find-links), made once."""
    return cached_venv("torch-2.13.0", TORCH_VENV_PACKAGES, "a virtualenv with torch 2.13.0")


@pytest.fixture(scope="session")
def tools_venv() -> Path:
    return cached_venv("tools", TOOLS, "uv, pip-tools and cyclonedx-bom")


@pytest.fixture(scope="session")
def tool_files(tools_venv: Path, torch_venv: Path) -> dict[str, Path]:
    """uv.lock, pylock.toml, uv's requirements export, pip-compile's hashed requirements and a
    CycloneDX SBOM of the torch virtualenv, each made by the real tool (once; kept in .cache)."""
    out = CACHE / "tool-files"
    files = {
        "uv.lock": out / "project" / "uv.lock",
        "pylock.toml": out / "project" / "pylock.toml",
        "uv-requirements.txt": out / "project" / "uv-requirements.txt",
        "requirements.txt": out / "pip-compile" / "requirements.txt",
        "env.cdx.json": out / "env.cdx.json",
    }
    if (out / ".mlmon-ready").exists():
        return files
    shutil.rmtree(out, ignore_errors=True)
    bin_dir = tools_venv / "bin"
    env = {**os.environ, "UV_INDEX_URL": configured_index(os.environ).url, "UV_CACHE_DIR": str(CACHE / "uv-cache")}
    project = out / "project"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["torch==2.13.0", "pillow==10.0.0"]\n'
    )
    compiled = out / "pip-compile"
    compiled.mkdir()
    (compiled / "requirements.in").write_text("torch==2.13.0\npillow==10.0.0\n")
    try:
        run([str(bin_dir / "uv"), "lock"], cwd=project, env=env)
        run([str(bin_dir / "uv"), "export", "--format", "pylock.toml", "-o", "pylock.toml"], cwd=project, env=env)
        run(
            [str(bin_dir / "uv"), "export", "--format", "requirements-txt", "-o", "uv-requirements.txt"],
            cwd=project,
            env=env,
        )
        run([str(bin_dir / "pip-compile"), "--generate-hashes", "--quiet", "-o", "requirements.txt", "requirements.in"],
            cwd=compiled, env=dict(os.environ))  # fmt: skip
        run([str(bin_dir / "cyclonedx-py"), "environment", "--of", "JSON", "-o", str(files["env.cdx.json"]),
             str(torch_venv / "bin" / "python")])  # fmt: skip
    except Exception as exc:
        missing("lock files made by uv / pip-compile / cyclonedx-py", f"running the tool failed: {exc}")
    (out / ".mlmon-ready").write_text("ok\n")
    return files
