"""Reading any supported input: which format a file is, and walking a repository for all of them.

A repository's inventory is every lock file, requirements file, conda file, SBOM and environment
found under it. Any file that cannot be read fails the whole read: a partial inventory would make
findings look fixed when they are not.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from monitor.stack.inventory import torch_build
from monitor.stack.inventory.conda import parse_conda_lock, parse_environment
from monitor.stack.inventory.environment import looks_like_environment, read_environment
from monitor.stack.inventory.jsonfiles import (
    is_cyclonedx,
    is_spdx,
    load_json,
    parse_cyclonedx,
    parse_pipfile_lock,
    parse_spdx,
)
from monitor.stack.inventory.model import Inventory, InventoryError, merge
from monitor.stack.inventory.requirements import parse_requirements
from monitor.stack.inventory.target import Target
from monitor.stack.inventory.tomlfiles import parse_pdm, parse_poetry, parse_pylock, parse_uv

LockFormat = Literal["auto", "requirements", "poetry", "uv", "pdm", "pipfile", "pylock", "conda_env", "conda_lock"]
SbomFormat = Literal["auto", "cyclonedx", "spdx"]
MAX_FILE_BYTES = 64 * 1024 * 1024
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def lock_format(path: Path) -> LockFormat | None:
    """The lock file format a file name says, or None."""
    name = path.name.lower()
    if name == "poetry.lock":
        return "poetry"
    if name == "uv.lock":
        return "uv"
    if name == "pdm.lock":
        return "pdm"
    if name == "pipfile.lock":
        return "pipfile"
    if name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml")):
        return "pylock"
    if name in ("conda-lock.yml", "conda-lock.yaml") or name.endswith((".conda-lock.yml", ".conda-lock.yaml")):
        return "conda_lock"
    if name in ("environment.yml", "environment.yaml") or fnmatch.fnmatch(name, "*environment*.y*ml"):
        return "conda_env"
    if name.endswith(".txt") and ("requirements" in name or path.parent.name == "requirements"):
        return "requirements"
    return None


def sbom_name(path: Path) -> bool:
    name = path.name.lower()
    return (
        name.endswith((".cdx.json", ".spdx.json", ".bom.json"))
        or name in ("bom.json", "sbom.json")
        or (name.startswith("sbom") and name.endswith(".json"))
    )


SNIFF_BYTES = 64 * 1024
_SBOM_MARK = re.compile(rb'"(?:bomFormat"\s*:\s*"CycloneDX|spdxVersion"\s*:\s*"SPDX-)')


def sbom_content(path: Path) -> bool:
    """Whether a JSON file is an SBOM by what it says, whatever its name (trivy writes
    `results.json`, syft `sbom.syft.json`, and teams keep their own names): the marker key is
    looked for in the file's first 64 KiB."""
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return False
    return _SBOM_MARK.search(head) is not None


def read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InventoryError(str(path), f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(str(path), f"expected UTF-8 text, found an invalid byte at offset {exc.start}") from None
    except OSError as exc:
        raise InventoryError(str(path), f"cannot read: {exc.strerror or exc}") from None


def read_lockfile(path: str | Path, fmt: LockFormat = "auto", target: Target | None = None) -> Inventory:
    """The packages a lock file pins; with a target, only those installed on it (see `target`)."""
    file = Path(path).expanduser()
    chosen = lock_format(file) if fmt == "auto" else fmt
    if chosen is None:
        raise InventoryError(
            str(file),
            "cannot tell the lock file format from the name; expected requirements*.txt, poetry.lock, uv.lock, "
            "pdm.lock, Pipfile.lock, pylock.toml, environment.yml or conda-lock.yml (or set `format`, or "
            "`--type PATH=FORMAT` on the command line)",
        )
    text = read_text(file)
    origin = str(file)
    parsers: dict[str, Callable[[], Inventory]] = {
        "requirements": lambda: parse_requirements(text, origin, base=file.parent, target=target),
        "poetry": lambda: parse_poetry(text, origin, target),
        "uv": lambda: parse_uv(text, origin, target),
        "pdm": lambda: parse_pdm(text, origin, target),
        "pipfile": lambda: parse_pipfile_lock(text, origin, target),
        "pylock": lambda: parse_pylock(text, origin, target),
        "conda_env": lambda: parse_environment(text, origin, base=file.parent, target=target),
        "conda_lock": lambda: parse_conda_lock(text, origin, target),
    }
    inventory = parsers[chosen]()
    if target is not None and inventory.python_version is None:
        # a lock file rarely says which Python runs it; the declared target does
        inventory = replace(inventory, python_version=target.python, _index={})
    return _with_torch(inventory, target)


def read_sbom(path: str | Path, fmt: SbomFormat = "auto") -> Inventory:
    file = Path(path).expanduser()
    text = read_text(file)
    origin = str(file)
    doc = load_json(text, origin)
    if fmt == "cyclonedx" or (fmt == "auto" and is_cyclonedx(doc)):
        return _with_torch(parse_cyclonedx(text, origin, doc))
    if fmt == "spdx" or (fmt == "auto" and is_spdx(doc)):
        return _with_torch(parse_spdx(text, origin, doc))
    raise InventoryError(origin, 'not an SBOM: expected CycloneDX ("bomFormat") or SPDX ("spdxVersion") JSON', 1, 1)


def _with_torch(inventory: Inventory, target: Target | None = None) -> Inventory:
    platform = target.sys_platform if target else None
    return inventory.with_torch(torch_build.detect(inventory.packages, platform=platform))


def _excluded(relative: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(Path(relative).name, p) for p in patterns)


def read_repo(
    path: str | Path,
    *,
    max_depth: int = 6,
    exclude: Sequence[str] = (),
    environments: bool = True,
    target: Target | None = None,
) -> Inventory:
    """Every supported file (and environment) under a directory, as one inventory."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InventoryError(str(root), "expected a directory")
    parts: list[Inventory] = []
    for current, dirs, files in os.walk(root):
        here = Path(current)
        depth = len(here.relative_to(root).parts)
        keep: list[str] = []
        for name in sorted(dirs):
            child = here / name
            relative = str(child.relative_to(root))
            if name in SKIP_DIRS or _excluded(relative, exclude) or child.is_symlink():
                continue
            if looks_like_environment(child) and ((child / "pyvenv.cfg").is_file() or (child / "conda-meta").is_dir()):
                if environments:
                    parts.append(read_environment(child))
                continue
            if depth + 1 <= max_depth:
                keep.append(name)
        dirs[:] = keep
        for name in sorted(files):
            file = here / name
            relative = str(file.relative_to(root))
            if _excluded(relative, exclude):
                continue
            if lock_format(file) is not None:
                parts.append(read_lockfile(file, target=target))
            elif name.lower().endswith(".json") and (sbom_name(file) or sbom_content(file)):
                parts.append(read_sbom(file))
    if not parts:
        raise InventoryError(str(root), "found no lock file, requirements file, conda file, SBOM or environment")
    merged = merge("repo", str(root), parts)
    return merged if merged.torch else _with_torch(merged, target)


def read_path(path: str | Path) -> Inventory:
    """Whatever `path` is: an environment, a repository, a lock file or an SBOM."""
    target = Path(path).expanduser()
    if target.is_dir():
        if (target / "pyvenv.cfg").is_file() or (target / "conda-meta").is_dir() or any(target.glob("*.dist-info")):
            return read_environment(target)
        return read_repo(target)
    if not target.exists():
        raise InventoryError(str(target), "no such file or directory")
    if lock_format(target) is not None:
        return read_lockfile(target)
    if target.name.lower().endswith(".json"):
        return read_sbom(target)
    raise InventoryError(
        str(target),
        "unsupported input: expected an environment, a directory, a lock file or an SBOM "
        "(name the format with --type PATH=FORMAT)",
    )
