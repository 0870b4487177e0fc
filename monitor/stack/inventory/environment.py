"""Installed environments: a virtualenv, a conda environment or a site-packages directory.

Nothing from the target is run or imported: distribution metadata is read with
`importlib.metadata` pointed at the target's site-packages (it only reads METADATA files),
`torch/version.py` is parsed with `ast`, conda's `conda-meta/*.json` with `json`, and the Python
version comes from `pyvenv.cfg`, conda-meta or the site-packages path.
"""

from __future__ import annotations

import ast
import json
import re
from importlib.metadata import Distribution, distributions
from pathlib import Path

from monitor.stack.inventory import torch_build
from monitor.stack.inventory.conda import CONDA_TO_PYPI, conda_package
from monitor.stack.inventory.model import Inventory, InventoryError, Package, package
from monitor.stack.versions import canonical_name

_PYVENV_VERSION = re.compile(r"^\s*(?:version|version_info)\s*=\s*([0-9][0-9.]*\S*)\s*$", re.MULTILINE)
_SITE_PYTHON = re.compile(r"python(\d+\.\d+)")
_VERSION_PY_NAMES = ("__version__", "cuda", "hip", "rocm", "xpu", "git_version", "debug")


def looks_like_environment(path: Path) -> bool:
    """A virtualenv root, a conda environment root or a site-packages directory."""
    return (
        (path / "pyvenv.cfg").is_file()
        or (path / "conda-meta").is_dir()
        or any(path.glob("*.dist-info"))
        or bool(site_packages_dirs(path))
    )


def site_packages_dirs(root: Path) -> list[Path]:
    found = [*root.glob("lib/python3*/site-packages"), *root.glob("lib64/python3*/site-packages")]
    found += [p for p in (root / "Lib" / "site-packages",) if p.is_dir()]
    unique: list[Path] = []
    for path in found:
        resolved = path.resolve()
        if resolved.is_dir() and resolved not in unique:
            unique.append(resolved)
    return unique


def read_version_py(path: Path) -> dict[str, object]:
    """The literal assignments of torch/version.py (`__version__`, `cuda`, `hip`, ...), without importing it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(str(path), f"cannot read torch's version.py: {exc}") from None
    return parse_version_py(text, str(path))


def parse_version_py(text: str, where: str) -> dict[str, object]:
    """The literal assignments of torch/version.py's text."""
    try:
        tree = ast.parse(text, filename=where)
    except SyntaxError as exc:
        raise InventoryError(where, f"cannot read torch's version.py: {exc}") from None
    values: dict[str, object] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = list(node.targets), node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name) and target.id in _VERSION_PY_NAMES and value is not None:
                try:
                    values[target.id] = ast.literal_eval(value)
                except ValueError:
                    continue
    return values


def _python_version(root: Path, sites: list[Path]) -> str | None:
    cfg = root / "pyvenv.cfg"
    if cfg.is_file():
        found = _PYVENV_VERSION.search(cfg.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found.group(1)
    for meta in sorted((root / "conda-meta").glob("python-[0-9]*.json")):
        try:
            return str(json.loads(meta.read_text(encoding="utf-8"))["version"])
        except (OSError, ValueError, KeyError):
            continue
    for site in sites:
        found = _SITE_PYTHON.search(str(site))
        if found:
            return found.group(1)
    return None


def _dist_packages(site: Path, notes: list[str]) -> list[tuple[Package, Distribution]]:
    out: list[tuple[Package, Distribution]] = []
    for dist in distributions(path=[str(site)]):
        name = dist.metadata["Name"] if dist.metadata is not None else None
        version = dist.metadata["Version"] if dist.metadata is not None else None
        location = getattr(dist, "_path", site)
        if not name or not version:
            notes.append(f"{location}: distribution metadata without Name or Version; not checked")
            continue
        out.append((package(name, version, str(location)), dist))
    return out


def _conda_packages(root: Path, have: set[str]) -> tuple[list[Package], dict[str, str]]:
    """conda-meta records not already seen as Python distributions, and every record's build string."""
    packages: list[Package] = []
    builds: dict[str, str] = {}
    for meta in sorted((root / "conda-meta").glob("*.json")):
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
            name, version, build = str(record["name"]), str(record["version"]), str(record.get("build", ""))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InventoryError(str(meta), f"unreadable conda-meta record: {exc}") from None
        pypi = canonical_name(CONDA_TO_PYPI.get(name, name))
        builds[pypi] = build
        if name == "python" or pypi in have:
            continue
        packages.append(conda_package(name, version, str(meta), None, build or None))
    return packages, builds


def read_environment(path: str | Path) -> Inventory:
    """The packages installed in an environment (virtualenv, conda env or site-packages)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InventoryError(str(root), "expected a directory (a virtualenv, conda environment or site-packages)")
    sites = site_packages_dirs(root)
    if not sites and any(root.glob("*.dist-info")):
        sites = [root.resolve()]
    has_conda = (root / "conda-meta").is_dir()
    if not sites and not has_conda:
        raise InventoryError(
            str(root), "no site-packages (lib/python3*/site-packages), *.dist-info or conda-meta found here"
        )
    notes: list[str] = []
    found: list[Package] = []
    version_py: dict[str, object] | None = None
    for site in sites:
        for pkg, _dist in _dist_packages(site, notes):
            found.append(pkg)
        candidate = site / "torch" / "version.py"
        if version_py is None and candidate.is_file():
            version_py = read_version_py(candidate)
    builds: dict[str, str] = {}
    if has_conda:
        extra, builds = _conda_packages(root, {p.name for p in found})
        found.extend(extra)
    if "torch" in builds:
        found = [
            Package(p.name, p.version, p.origin, p.line, p.ecosystem, p.scope, p.index, builds["torch"], p.native_name)
            if p.name == "torch" and p.build is None
            else p
            for p in found
        ]
    torch = torch_build.detect(found, version_py)
    if torch is not None and version_py is not None:
        recorded = version_py.get("__version__")
        if isinstance(recorded, str) and recorded != torch.version:
            notes.append(f"torch/version.py says {recorded} but the installed metadata says {torch.version}")
    return Inventory(
        kind="python_env",
        location=str(root),
        packages=tuple(sorted(found, key=lambda p: (p.name, p.version))),
        python_version=_python_version(root, sites),
        torch=torch,
        files=tuple(str(s) for s in sites),
        notes=tuple(notes),
    )
