"""TOML lock files: poetry.lock, uv.lock, pdm.lock and pylock.toml (PEP 751).

`tomllib` parses them; pylock.toml is validated by `packaging.pylock`. Each package keeps the line
of its `[[package]]` table so errors and SARIF results can point at it.

With a target environment, poetry.lock's and pylock.toml's per-package markers are evaluated; a
uv.lock states markers on its dependency edges instead, so its packages are the ones reached from
the project's own entries along edges whose markers hold (`uv_graph`, which also tells the
packages only the dev groups bring in).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from packaging.pylock import Pylock, PylockUnsupportedVersionError, PylockValidationError

from monitor.stack.inventory.model import Inventory, InventoryError, Package, package
from monitor.stack.inventory.target import Selection, Target
from monitor.stack.inventory.uv_graph import UvGraph

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def load_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.search(str(exc))
        message = _TOML_POSITION.sub("", str(exc)).strip()
        if found:
            raise InventoryError(origin, f"invalid TOML: {message}", int(found.group(1)), int(found.group(2))) from None
        if "end of document" in message:
            raise InventoryError(origin, f"invalid TOML: {message}", max(1, len(text.splitlines()))) from None
        raise InventoryError(origin, f"invalid TOML: {message}") from None
    except RecursionError:
        raise InventoryError(origin, "refused: TOML nested too deeply") from None
    except ValueError as exc:
        # e.g. an integer of thousands of digits (Python's int conversion limit)
        raise InventoryError(origin, f"refused: {str(exc)[:200]}") from None


def table_lines(text: str, header: str) -> list[int]:
    """Line numbers (1-based) of each `[[header]]` array-of-tables entry, in order."""
    pattern = re.compile(rf"^\s*\[\[\s*{re.escape(header)}\s*\]\]\s*(#.*)?$")
    return [n for n, line in enumerate(text.splitlines(), start=1) if pattern.match(line)]


def _entries(doc: Mapping[str, Any], key: str, origin: str) -> list[Mapping[str, Any]]:
    entries = doc.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise InventoryError(origin, f"expected `[[{key}]]` tables, got {type(entries).__name__}")
    return entries


def _string(entry: Mapping[str, Any], field: str, origin: str, where: str, line: int | None) -> str:
    value = entry.get(field)
    if not isinstance(value, str) or not value:
        raise InventoryError(origin, f"{where}: expected a string `{field}`, got {value!r}", line)
    return value


def parse_poetry(text: str, origin: str, target: Target | None = None) -> Inventory:
    doc = load_toml(text, origin)
    lines = table_lines(text, "package")
    packages: list[Package] = []
    selection = Selection(target, origin)
    for index, entry in enumerate(_entries(doc, "package", origin)):
        line = lines[index] if index < len(lines) else None
        where = f"package[{index}]"
        name = _string(entry, "name", origin, where, line)
        version = _string(entry, "version", origin, f"{where} ({name})", line)
        if not selection.keeps(f"{name}=={version}", _poetry_markers(entry.get("markers"))):
            continue
        source = entry.get("source")
        index_url = source.get("url") if isinstance(source, Mapping) else None
        groups = entry.get("groups")
        category = entry.get("category")
        dev = category == "dev" or (isinstance(groups, list) and groups and "main" not in groups)
        packages.append(package(name, version, origin, line=line, index=index_url, scope="dev" if dev else None))
    metadata = doc.get("metadata", {})
    notes = []
    if isinstance(metadata, Mapping) and metadata.get("python-versions"):
        notes.append(f"{origin}: python-versions {metadata['python-versions']} (a constraint, not one version)")
    notes.extend(selection.notes())
    return Inventory("lockfile", origin, tuple(packages), files=(origin,), notes=tuple(notes))


def _poetry_markers(value: object) -> list[str] | None:
    """Poetry 2 writes one marker, or one per dependency group (`{main = "...", dev = "..."}`)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [str(v) for v in value.values() if isinstance(v, str)] or None
    return None


_LOCAL_SOURCES = ("virtual", "editable", "directory")


def parse_uv(text: str, origin: str, target: Target | None = None) -> Inventory:
    doc = load_toml(text, origin)
    if "version" in doc and not isinstance(doc["version"], int):
        raise InventoryError(origin, f"expected an integer lock `version`, got {doc['version']!r}", 1)
    lines = table_lines(text, "package")
    entries = _entries(doc, "package", origin)
    roots: set[int] = set()
    for index, entry in enumerate(entries):
        line = lines[index] if index < len(lines) else None
        name = _string(entry, "name", origin, f"package[{index}]", line)
        source = entry.get("source", {})
        if not isinstance(source, Mapping):
            raise InventoryError(origin, f"package[{index}] ({name}): expected a `source` table", line)
        if any(key in source for key in _LOCAL_SOURCES):
            roots.add(index)
    selection = Selection(target, origin)
    scopes = UvGraph(entries, origin, lines, selection).scopes(roots) if roots else None
    packages: list[Package] = []
    notes: list[str] = []
    for index, entry in enumerate(entries):
        if index in roots:
            continue  # the project itself or a workspace member: no published version to check
        line = lines[index] if index < len(lines) else None
        name, source = entry["name"], entry.get("source", {})
        if scopes is not None and target is not None and index not in scopes:
            selection.skip(f"{name}=={entry['version']}" if "version" in entry else name)
            continue
        if scopes is None and not selection.keeps(
            f"{name}=={entry.get('version')}", _string_list(entry.get("resolution-markers"))
        ):
            continue
        if "version" not in entry:
            notes.append(f"{origin}:{line}: {name} has no version (source {dict(source)}); not checked")
            continue
        version = _string(entry, "version", origin, f"package[{index}] ({name})", line)
        registry = source.get("registry") or source.get("url") or source.get("git") or source.get("path")
        scope = scopes.get(index) if scopes is not None else None
        packages.append(package(name, version, origin, line=line, index=registry, scope=scope))
    notes.extend(selection.notes())
    return Inventory("lockfile", origin, tuple(packages), files=(origin,), notes=tuple(notes))


def _string_list(value: object) -> list[str] | None:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None


def parse_pylock(text: str, origin: str, target: Target | None = None) -> Inventory:
    doc = load_toml(text, origin)
    lines = table_lines(text, "packages")
    try:
        lock = Pylock.from_dict(doc)
    except (PylockValidationError, PylockUnsupportedVersionError) as exc:
        context = getattr(exc, "context", None) or ""
        found = re.match(r"packages\[(\d+)\]", context)
        line = lines[int(found.group(1))] if found and int(found.group(1)) < len(lines) else None
        raise InventoryError(origin, f"invalid pylock.toml: {exc}", line) from None
    packages: list[Package] = []
    notes: list[str] = []
    selection = Selection(target, origin)
    for index, entry in enumerate(lock.packages):
        line = lines[index] if index < len(lines) else None
        if not selection.keeps(f"{entry.name}=={entry.version}", entry.marker):
            continue
        if entry.version is None:
            notes.append(f"{origin}:{line}: {entry.name} has no version (VCS, directory or archive); not checked")
            continue
        packages.append(package(str(entry.name), str(entry.version), origin, line=line, index=entry.index))
    python = str(lock.requires_python) if lock.requires_python else None
    if python:
        notes.append(f"{origin}: requires-python {python} (a constraint, not one version)")
    notes.extend(selection.notes())
    return Inventory("lockfile", origin, tuple(packages), files=(origin,), notes=tuple(notes))


def parse_pdm(text: str, origin: str, target: Target | None = None) -> Inventory:
    """pdm.lock: `[[package]]` tables with `version`, `groups` and a PEP 508 `marker`."""
    doc = load_toml(text, origin)
    metadata = doc.get("metadata")
    if not isinstance(metadata, Mapping) or "package" not in doc and "lock_version" not in metadata:
        raise InventoryError(origin, "expected a pdm.lock with `[metadata]` and `[[package]]` tables", 1)
    lines = table_lines(text, "package")
    packages: list[Package] = []
    notes: list[str] = []
    selection = Selection(target, origin)
    for index, entry in enumerate(_entries(doc, "package", origin)):
        line = lines[index] if index < len(lines) else None
        where = f"package[{index}]"
        name = _string(entry, "name", origin, where, line)
        if "version" not in entry:
            notes.append(f"{origin}:{line}: {name} has no version (a VCS, file or editable source); not checked")
            continue
        version = _string(entry, "version", origin, f"{where} ({name})", line)
        marker = entry.get("marker")
        if not selection.keeps(f"{name}=={version}", marker if isinstance(marker, str) else None):
            continue
        groups = entry.get("groups")
        dev = isinstance(groups, list) and bool(groups) and "default" not in groups
        packages.append(package(name, version, origin, line=line, scope="dev" if dev else None))
    targets = metadata.get("targets")
    if isinstance(targets, list):
        pythons = sorted(
            {str(t["requires_python"]) for t in targets if isinstance(t, Mapping) and "requires_python" in t}
        )
        if pythons:
            notes.append(f"{origin}: requires_python {', '.join(pythons)} (a constraint, not one version)")
    notes.extend(selection.notes())
    return Inventory("lockfile", origin, tuple(packages), files=(origin,), notes=tuple(notes))
