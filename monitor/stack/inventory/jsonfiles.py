"""JSON inputs: Pipfile.lock, CycloneDX and SPDX SBOMs.

SBOM components are identified by their package URL (`pkg:pypi/torch@2.5.1%2Bcu121`, parsed with
`packageurl`, which decodes the `%2B`); a component without a purl (cyclonedx-py emits torch
installed from a local wheel that way) falls back to its name and version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from packageurl import PackageURL

from monitor.stack.inventory.conda import conda_package
from monitor.stack.inventory.model import Inventory, InventoryError, Package, package
from monitor.stack.inventory.target import Selection, Target

_PYPI_TYPES = {"pypi"}
_CONDA_TYPES = {"conda"}
_NOT_PYTHON_PURPOSES = {"OPERATING-SYSTEM", "CONTAINER", "FIRMWARE", "DEVICE"}


def load_json(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryError(origin, f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise InventoryError(origin, "refused: JSON nested too deeply") from None
    except ValueError as exc:
        # e.g. an integer of thousands of digits (Python's int conversion limit)
        raise InventoryError(origin, f"refused: {str(exc)[:200]}") from None


def line_index(text: str, key: str) -> dict[str, int]:
    """First line of each `"<key>": "<value>"` pair, by value (positions for SARIF results)."""
    found: dict[str, int] = {}
    pattern = re.compile(rf'"{re.escape(key)}"\s*:\s*"([^"]*)"')
    for number, line in enumerate(text.splitlines(), start=1):
        for match in pattern.finditer(line):
            found.setdefault(match.group(1), number)
    return found


def parse_pipfile_lock(text: str, origin: str, target: Target | None = None) -> Inventory:
    doc = load_json(text, origin)
    if not isinstance(doc, Mapping) or "_meta" not in doc:
        raise InventoryError(origin, "expected a Pipfile.lock object with `_meta`, `default` and `develop`", 1, 1)
    meta = doc["_meta"] if isinstance(doc["_meta"], Mapping) else {}
    sources = {s.get("name"): s.get("url") for s in meta.get("sources", []) if isinstance(s, Mapping)}
    requires = meta.get("requires", {})
    python = None
    if isinstance(requires, Mapping):
        python = requires.get("python_full_version") or requires.get("python_version")
    lines = _key_lines(text)
    packages: list[Package] = []
    notes: list[str] = []
    selection = Selection(target, origin)
    for section in ("default", "develop"):
        entries = doc.get(section, {})
        if not isinstance(entries, Mapping):
            raise InventoryError(origin, f"`{section}` must be an object of packages, got {type(entries).__name__}")
        for name, entry in entries.items():
            line = lines.get(name)
            if not isinstance(entry, Mapping):
                raise InventoryError(origin, f"{section}.{name}: expected an object, got {type(entry).__name__}", line)
            spec = entry.get("version")
            if not isinstance(spec, str) or not spec.startswith("=="):
                notes.append(f"{origin}:{line}: {name} has no `==` version ({spec!r}); not checked")
                continue
            markers = entry.get("markers")
            if not selection.keeps(f"{name}{spec}", markers if isinstance(markers, str) else None):
                continue
            index = sources.get(entry.get("index")) if entry.get("index") else None
            scope = "dev" if section == "develop" else None
            packages.append(package(name, spec[2:].lstrip("="), origin, line=line, index=index, scope=scope))
    notes.extend(selection.notes())
    return Inventory("lockfile", origin, tuple(packages), python_version=python, files=(origin,), notes=tuple(notes))


def _key_lines(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    pattern = re.compile(r'^\s*"([^"]+)"\s*:\s*\{')
    for number, line in enumerate(text.splitlines(), start=1):
        match = pattern.match(line)
        if match:
            found.setdefault(match.group(1), number)
    return found


def is_cyclonedx(doc: Any) -> bool:
    return isinstance(doc, Mapping) and doc.get("bomFormat") == "CycloneDX"


def is_spdx(doc: Any) -> bool:
    return isinstance(doc, Mapping) and (str(doc.get("spdxVersion", "")).startswith("SPDX-") or "@graph" in doc)


def _from_purl(text: str, origin: str, where: str, line: int | None) -> Package | None:
    try:
        purl = PackageURL.from_string(text)
    except ValueError as exc:
        raise InventoryError(origin, f"{where}: invalid package URL {text!r}: {exc}", line) from None
    if purl.version is None:
        return None
    if purl.type in _PYPI_TYPES:
        return package(purl.name, purl.version, origin, line=line)
    if purl.type in _CONDA_TYPES:
        qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
        return conda_package(purl.name, purl.version, origin, line, qualifiers.get("build"), qualifiers.get("channel"))
    return None


def _components(items: Any, path: str, origin: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if items is None:
        return
    if not isinstance(items, list):
        raise InventoryError(origin, f"{path}: expected a list of components, got {type(items).__name__}")
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            raise InventoryError(origin, f"{where}: expected a component object, got {type(item).__name__}")
        yield where, item
        yield from _components(item.get("components"), f"{where}.components", origin)


def parse_cyclonedx(text: str, origin: str, doc: Any = None) -> Inventory:
    doc = load_json(text, origin) if doc is None else doc
    if not is_cyclonedx(doc):
        raise InventoryError(origin, 'expected a CycloneDX JSON document ("bomFormat": "CycloneDX")', 1, 1)
    by_purl = line_index(text, "purl")
    by_name = line_index(text, "name")
    packages: list[Package] = []
    notes: list[str] = []
    for where, component in _components(doc.get("components"), "components", origin):
        purl = component.get("purl")
        line = by_purl.get(purl) if isinstance(purl, str) else by_name.get(str(component.get("name")))
        if isinstance(purl, str) and purl:
            found = _from_purl(purl, origin, where, line)
            if found is not None:
                packages.append(found)
            continue
        name, version = component.get("name"), component.get("version")
        if component.get("type", "library") == "library" and isinstance(name, str) and isinstance(version, str):
            packages.append(package(name, version, origin, line=line))
            notes.append(f"{origin}:{line}: {name} {version} has no purl; matched by name as a PyPI package")
    return Inventory("sbom", origin, tuple(packages), files=(origin,), notes=tuple(notes))


def parse_spdx(text: str, origin: str, doc: Any = None) -> Inventory:
    doc = load_json(text, origin) if doc is None else doc
    if not is_spdx(doc):
        raise InventoryError(origin, 'expected an SPDX 2.x JSON document ("spdxVersion": "SPDX-2.3")', 1, 1)
    if "@graph" in doc or not str(doc.get("spdxVersion", "")).startswith("SPDX-2."):
        raise InventoryError(
            origin, f"SPDX version {doc.get('spdxVersion', '3 (JSON-LD)')} is not supported; use SPDX 2.x JSON", 1, 1
        )
    packages_doc = doc.get("packages", [])
    if not isinstance(packages_doc, list):
        raise InventoryError(origin, f"`packages` must be a list, got {type(packages_doc).__name__}")
    described = set(doc.get("documentDescribes", []) or [])
    locators = line_index(text, "referenceLocator")
    names = line_index(text, "name")
    packages: list[Package] = []
    notes: list[str] = []
    for index, entry in enumerate(packages_doc):
        where = f"packages[{index}]"
        if not isinstance(entry, Mapping):
            raise InventoryError(origin, f"{where}: expected a package object, got {type(entry).__name__}")
        purls = [
            ref.get("referenceLocator")
            for ref in entry.get("externalRefs", []) or []
            if isinstance(ref, Mapping) and ref.get("referenceType") == "purl"
        ]
        if purls and isinstance(purls[0], str):
            found = _from_purl(purls[0], origin, where, locators.get(purls[0]))
            if found is not None:
                packages.append(found)
            continue
        name, version = entry.get("name"), entry.get("versionInfo")
        if entry.get("primaryPackagePurpose") in _NOT_PYTHON_PURPOSES:
            continue  # e.g. trivy's "debian 11.11": the base system, not a PyPI package of that name
        if entry.get("SPDXID") in described or not isinstance(name, str) or not isinstance(version, str):
            continue
        line = names.get(name)
        packages.append(package(name, version, origin, line=line))
        notes.append(f"{origin}:{line}: {name} {version} has no purl; matched by name as a PyPI package")
    return Inventory("sbom", origin, tuple(packages), files=(origin,), notes=tuple(notes))
