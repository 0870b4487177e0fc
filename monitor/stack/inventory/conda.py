"""Conda files: environment.yml (MatchSpec strings plus a `pip:` list) and conda-lock.yml.

Conda packages are matched against PyPI advisories under their PyPI name: the same upstream
release under another package manager. Only `pytorch` is spelled differently (`torch` on PyPI).
`pytorch=2.5.1` is a fuzzy MatchSpec (2.5.1*); it is read as 2.5.1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.core.yaml_guard import YamlRefused
from monitor.core.yaml_guard import load_yaml as guarded_load
from monitor.stack.inventory.model import Inventory, InventoryError, Package, package
from monitor.stack.inventory.requirements import Line, parse_lines
from monitor.stack.inventory.target import Selection, Target

CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-cpu": "torch", "pytorch-gpu": "torch"}
_MATCHSPEC = re.compile(r"^(?:(?P<channel>[^:\s]+)::)?(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<rest>.*)$")
_UNPINNED = re.compile(r"[<>!~|,*]")
_ARCHIVE = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<build>[^-]+)\.(?:tar\.bz2|conda)$")


def load_yaml(text: str, origin: str) -> Any:
    try:
        return guarded_load(text)
    except YamlRefused as exc:
        raise InventoryError(origin, f"refused: {exc.message}", exc.line, exc.column) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise InventoryError(origin, f"invalid YAML: {exc.problem or exc}", line, column) from None
    except YAMLError as exc:
        raise InventoryError(origin, f"invalid YAML: {exc}") from None


def _item_line(seq: Any, index: int) -> int | None:
    if isinstance(seq, CommentedSeq):
        return int(seq.lc.item(index)[0]) + 1
    return None


def _key_line(node: Any, key: str) -> int | None:
    if isinstance(node, CommentedMap) and key in node:
        return int(node.lc.key(key)[0]) + 1
    return None


def _raw_scalar(lines: list[str], node: Any, key: str) -> Any:
    """A value as written in the file: YAML would read `version: 1.10` as the float 1.1."""
    value = node.get(key)
    if value is None or isinstance(value, str) or not isinstance(node, CommentedMap):
        return value
    line, column = node.lc.value(key)
    token = lines[line][column:].split("#", 1)[0].strip()
    return token.strip("'\"") or str(value)


def conda_package(
    name: str, version: str, origin: str, line: int | None, build: str | None = None, channel: str | None = None
) -> Package:
    return package(
        CONDA_TO_PYPI.get(name.lower(), name),
        version,
        origin,
        line=line,
        ecosystem="conda",
        build=build,
        index=channel,
        native_name=name,
    )


def parse_matchspec(spec: str) -> tuple[str, str | None, str | None, str | None]:
    """(name, version or None when not pinned, build, channel) of a conda MatchSpec string."""
    found = _MATCHSPEC.match(spec.strip())
    if not found:
        raise ValueError(f"expected a conda package spec like 'pytorch=2.5.1', got {spec!r}")
    name, rest, channel = found.group("name"), found.group("rest").strip(), found.group("channel")
    version: str | None = None
    build: str | None = None
    if rest.startswith("=="):
        version, _, build = rest[2:].partition("=")
    elif rest.startswith("="):
        version, _, build = rest[1:].partition("=")
    elif rest and not _UNPINNED.search(rest.split()[0]):
        parts = rest.split()
        version, build = parts[0], parts[1] if len(parts) > 1 else None
    if version is not None:
        version = version.strip()
        if version.endswith(".*"):
            version = version[:-2]
        if not version or _UNPINNED.search(version):
            version = None
    return name, version, (build or None), channel


def parse_environment(text: str, origin: str, base: Path | None = None, target: Target | None = None) -> Inventory:
    doc = load_yaml(text, origin)
    if not isinstance(doc, Mapping):
        raise InventoryError(origin, "expected a mapping with `dependencies`", 1, 1)
    deps = doc.get("dependencies", [])
    if not isinstance(deps, list):
        raise InventoryError(origin, "`dependencies` must be a list", _key_line(doc, "dependencies"))
    packages: list[Package] = []
    notes: list[str] = []
    files = [origin]
    python: str | None = None
    for index, dep in enumerate(deps):
        line = _item_line(deps, index)
        if isinstance(dep, Mapping) and "pip" in dep:
            pip = dep["pip"]
            if not isinstance(pip, list):
                raise InventoryError(origin, "`pip:` must be a list of requirements", line)
            lines = [Line(_item_line(pip, i) or line or 0, str(entry)) for i, entry in enumerate(pip)]
            found = parse_lines(lines, origin, base=base, target=target)
            packages.extend(found.packages)
            notes.extend(found.notes)
            files.extend(f for f in found.files if f != origin)
            continue
        if not isinstance(dep, str):
            raise InventoryError(origin, f"dependencies[{index}]: expected a package spec string, got {dep!r}", line)
        try:
            name, version, build, channel = parse_matchspec(dep)
        except ValueError as exc:
            raise InventoryError(origin, f"dependencies[{index}]: {exc}", line) from None
        if name == "python":
            python = version
            continue
        if version is None:
            notes.append(f"{origin}:{line}: {dep} is not pinned to one version; not checked")
            continue
        packages.append(conda_package(name, version, origin, line, build, channel))
    return Inventory("lockfile", origin, tuple(packages), python_version=python, files=tuple(files), notes=tuple(notes))


def parse_conda_lock(text: str, origin: str, target: Target | None = None) -> Inventory:
    doc = load_yaml(text, origin)
    if not isinstance(doc, Mapping) or "package" not in doc:
        raise InventoryError(origin, "expected a conda-lock file with `version` and `package`", 1, 1)
    if doc.get("version") not in (1, None):
        raise InventoryError(
            origin,
            f"conda-lock file version {doc.get('version')!r} is not supported (expected 1)",
            _key_line(doc, "version"),
        )
    entries = doc["package"]
    if not isinstance(entries, list):
        raise InventoryError(origin, "`package` must be a list", _key_line(doc, "package"))
    raw_lines = text.splitlines()
    packages: list[Package] = []
    seen: set[tuple[str, str, str]] = set()
    python: str | None = None
    selection = Selection(target, origin)
    for index, entry in enumerate(entries):
        line = _item_line(entries, index)
        if not isinstance(entry, Mapping):
            raise InventoryError(origin, f"package[{index}]: expected a mapping", line)
        name, manager = entry.get("name"), entry.get("manager", "conda")
        version = _raw_scalar(raw_lines, entry, "version")
        if not isinstance(name, str) or not isinstance(version, str):
            raise InventoryError(origin, f"package[{index}]: expected string `name` and `version`", line)
        if target is not None and not target.matches_conda(entry.get("platform")):
            selection.skip(f"{name} ({entry.get('platform')})")
            continue
        if (name, version, manager) in seen:
            continue  # the same package locked for another platform
        seen.add((name, version, manager))
        if manager == "pip":
            packages.append(package(name, version, origin, line=line))
            continue
        if name == "python":
            python = version
            continue
        build = None
        url = entry.get("url")
        if isinstance(url, str):
            archive = _ARCHIVE.match(url.rsplit("/", 1)[-1])
            build = archive.group("build") if archive else None
        packages.append(conda_package(name, version, origin, line, build))
    notes = selection.notes()
    if target is not None and target.conda_subdir is None:
        notes.append(
            f"{origin}: no conda platform is known for {target.describe()}; every platform's entries are checked"
        )
    return Inventory("lockfile", origin, tuple(packages), python_version=python, files=(origin,), notes=tuple(notes))
