"""TOML lock files: poetry.lock, uv.lock and pylock.toml (PEP 751).

`tomllib` parses them; pylock.toml is validated by `packaging.pylock`. Each package keeps the line
of its `[[package]]` table so errors and SARIF results can point at it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from packaging.pylock import Pylock, PylockUnsupportedVersionError, PylockValidationError

from monitor.stack.inventory.model import Inventory, InventoryError, Package, package

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


def parse_poetry(text: str, origin: str) -> Inventory:
    doc = load_toml(text, origin)
    lines = table_lines(text, "package")
    packages: list[Package] = []
    for index, entry in enumerate(_entries(doc, "package", origin)):
        line = lines[index] if index < len(lines) else None
        where = f"package[{index}]"
        name = _string(entry, "name", origin, where, line)
        version = _string(entry, "version", origin, f"{where} ({name})", line)
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
    return Inventory("lockfile", origin, tuple(packages), files=(origin,), notes=tuple(notes))


_LOCAL_SOURCES = ("virtual", "editable", "directory")


def parse_uv(text: str, origin: str) -> Inventory:
    doc = load_toml(text, origin)
    if "version" in doc and not isinstance(doc["version"], int):
        raise InventoryError(origin, f"expected an integer lock `version`, got {doc['version']!r}", 1)
    lines = table_lines(text, "package")
    packages: list[Package] = []
    notes: list[str] = []
    for index, entry in enumerate(_entries(doc, "package", origin)):
        line = lines[index] if index < len(lines) else None
        where = f"package[{index}]"
        name = _string(entry, "name", origin, where, line)
        source = entry.get("source", {})
        if not isinstance(source, Mapping):
            raise InventoryError(origin, f"{where} ({name}): expected a `source` table", line)
        if any(key in source for key in _LOCAL_SOURCES):
            continue  # the project itself or a workspace member: no published version to check
        if "version" not in entry:
            notes.append(f"{origin}:{line}: {name} has no version (source {dict(source)}); not checked")
            continue
        version = _string(entry, "version", origin, f"{where} ({name})", line)
        registry = source.get("registry") or source.get("url") or source.get("git") or source.get("path")
        packages.append(package(name, version, origin, line=line, index=registry))
    return Inventory("lockfile", origin, tuple(packages), files=(origin,), notes=tuple(notes))


def parse_pylock(text: str, origin: str) -> Inventory:
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
    for index, entry in enumerate(lock.packages):
        line = lines[index] if index < len(lines) else None
        if entry.version is None:
            notes.append(f"{origin}:{line}: {entry.name} has no version (VCS, directory or archive); not checked")
            continue
        packages.append(package(str(entry.name), str(entry.version), origin, line=line, index=entry.index))
    python = str(lock.requires_python) if lock.requires_python else None
    if python:
        notes.append(f"{origin}: requires-python {python} (a constraint, not one version)")
    return Inventory("lockfile", origin, tuple(packages), files=(origin,), notes=tuple(notes))
