"""TOML lock files: poetry.lock, uv.lock and pylock.toml (PEP 751).

`tomllib` parses them; pylock.toml is validated by `packaging.pylock`. Each package keeps the line
of its `[[package]]` table so errors and SARIF results can point at it.

With a target environment, poetry.lock's and pylock.toml's per-package markers are evaluated; a
uv.lock states markers on its dependency edges instead, so its packages are the ones reached from
the project's own entries along edges whose markers hold (which also tells the packages only the
dev groups bring in).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from packaging.pylock import Pylock, PylockUnsupportedVersionError, PylockValidationError

from monitor.stack.inventory.model import Inventory, InventoryError, Package, package
from monitor.stack.inventory.target import Selection, Target
from monitor.stack.versions import canonical_name

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
    roots: list[int] = []
    for index, entry in enumerate(entries):
        line = lines[index] if index < len(lines) else None
        name = _string(entry, "name", origin, f"package[{index}]", line)
        source = entry.get("source", {})
        if not isinstance(source, Mapping):
            raise InventoryError(origin, f"package[{index}] ({name}): expected a `source` table", line)
        if any(key in source for key in _LOCAL_SOURCES):
            roots.append(index)
    selection = Selection(target, origin)
    scopes = _UvGraph(entries, origin, lines, selection).scopes(roots) if roots else None
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


class _UvGraph:
    """uv.lock's dependency edges, walked from the project's own entries."""

    def __init__(self, entries: list[Mapping[str, Any]], origin: str, lines: list[int], selection: Selection) -> None:
        self.entries = entries
        self.origin = origin
        self.lines = lines
        self.selection = selection
        self.by_name: dict[str, list[int]] = {}
        for index, entry in enumerate(entries):
            self.by_name.setdefault(canonical_name(str(entry["name"])), []).append(index)

    def scopes(self, roots: list[int]) -> dict[int, str | None]:
        """Entry index -> None (installed with the project) or "dev" (only through a dev group), for
        every entry reached along edges whose markers hold on the target (all edges without one)."""
        reached: dict[int, str | None] = {}
        seen: set[tuple[int, str | None]] = set()
        main: list[Mapping[str, Any]] = []
        dev: list[Mapping[str, Any]] = []
        for root in roots:
            main.extend(self._edges(root, "dependencies"))
            for extra in self._groups(root, "optional-dependencies"):
                main.extend(self._edges(root, "optional-dependencies", extra))
            for group in self._groups(root, "dev-dependencies"):
                dev.extend(self._edges(root, "dev-dependencies", group))
        # the main walk first: what it reaches stays main when a dev group needs it too
        self._walk(main, None, reached, seen)
        self._walk(dev, "dev", reached, seen)
        return reached

    def _walk(
        self,
        edges: list[Mapping[str, Any]],
        scope: str | None,
        reached: dict[int, str | None],
        seen: set[tuple[int, str | None]],
    ) -> None:
        stack = list(edges)
        while stack:
            edge = stack.pop()
            marker = edge.get("marker")
            if isinstance(marker, str) and not self._holds(str(edge.get("name")), marker):
                continue
            extras = (
                [e for e in edge.get("extra", []) if isinstance(e, str)] if isinstance(edge.get("extra"), list) else []
            )
            for index in self._resolve(edge):
                reached.setdefault(index, scope)
                for state in [(index, None), *((index, extra) for extra in extras)]:
                    if state in seen:
                        continue
                    seen.add(state)
                    if state[1] is None:
                        stack.extend(self._edges(index, "dependencies"))
                    else:
                        stack.extend(self._edges(index, "optional-dependencies", state[1]))

    def _holds(self, name: str, marker: str) -> bool:
        target = self.selection.target
        if target is None:
            return True
        verdict = target.holds(marker)
        if verdict is None:
            self.selection.unread.append(f"the edge to {name} ({marker})")
        return verdict is not False

    def _resolve(self, edge: Mapping[str, Any]) -> list[int]:
        found = self.by_name.get(canonical_name(str(edge.get("name", ""))), [])
        version = edge.get("version")
        if isinstance(version, str):
            pinned = [i for i in found if self.entries[i].get("version") == version]
            return pinned or found
        return found

    def _groups(self, index: int, key: str) -> list[str]:
        table = self.entries[index].get(key)
        return [str(k) for k in table] if isinstance(table, Mapping) else []

    def _edges(self, index: int, key: str, group: str | None = None) -> list[Mapping[str, Any]]:
        value: Any = self.entries[index].get(key)
        if group is not None:
            value = value.get(group) if isinstance(value, Mapping) else None
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(e, Mapping) and "name" in e for e in value):
            line = self.lines[index] if index < len(self.lines) else None
            where = f"{key}.{group}" if group else key
            raise InventoryError(
                self.origin,
                f"package[{index}] ({self.entries[index]['name']}): expected `{where}` as a list of "
                "{ name = ... } tables",
                line,
            )
        return value


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
