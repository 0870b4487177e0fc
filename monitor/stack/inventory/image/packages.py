"""An image's inventory from its package metadata files (the output of `layers.union`).

Origins read `<image>!/<path in the image>`: the reference (with its digest) and the installed
distribution's directory, so a finding says which image and where in it.
"""

from __future__ import annotations

import json
import re
from email.parser import BytesHeaderParser

from monitor.stack.inventory import torch_build
from monitor.stack.inventory.conda import CONDA_TO_PYPI, conda_package
from monitor.stack.inventory.environment import parse_version_py
from monitor.stack.inventory.model import Inventory, InventoryError, Package, package
from monitor.stack.versions import canonical_name

_PYTHON_DIR = re.compile(r"(?:^|/)lib/python(\d+\.\d+)/(?:site|dist)-packages(?:/|$)")


def _headers(data: bytes) -> tuple[str | None, str | None]:
    headers = BytesHeaderParser().parsebytes(data)
    return headers.get("Name"), headers.get("Version")


def inventory_of(files: dict[str, bytes], location: str, notes: list[str] | None = None) -> Inventory:
    """The packages the metadata files name, with the torch build and the Python version."""
    notes = list(notes or [])
    found: list[Package] = []
    pythons: list[str] = []
    for path in sorted(files):
        if not (path.endswith(".dist-info/METADATA") or path.endswith(".egg-info/PKG-INFO")):
            continue
        directory = path.rpartition("/")[0]
        name, version = _headers(files[path])
        if not name or not version:
            notes.append(f"{location}!/{directory}: distribution metadata without Name or Version; not checked")
            continue
        found.append(package(name, version, f"{location}!/{directory}"))
        python = _PYTHON_DIR.search(path)
        if python:
            pythons.append(python.group(1))
    have = {p.name for p in found}
    builds: dict[str, str] = {}
    for path in sorted(p for p in files if p.endswith(".json")):
        try:
            record = json.loads(files[path])
            name, version, build = str(record["name"]), str(record["version"]), str(record.get("build", ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise InventoryError(f"{location}!/{path}", f"unreadable conda-meta record: {exc}") from None
        pypi = canonical_name(CONDA_TO_PYPI.get(name, name))
        builds[pypi] = build
        if name == "python":
            pythons.insert(0, version)
            continue
        if pypi in have:
            continue
        found.append(conda_package(name, version, f"{location}!/{path}", None, build or None))
    if "torch" in builds:
        found = [
            Package(p.name, p.version, p.origin, p.line, p.ecosystem, p.scope, p.index, builds["torch"], p.native_name)
            if p.name == "torch" and p.build is None
            else p
            for p in found
        ]
    version_py = None
    for path in sorted(p for p in files if p.endswith("torch/version.py")):
        version_py = parse_version_py(files[path].decode("utf-8", "replace"), f"{location}!/{path}")
        break
    torch = torch_build.detect(found, version_py)
    if torch is not None and version_py is not None:
        recorded = version_py.get("__version__")
        if isinstance(recorded, str) and recorded != torch.version:
            notes.append(f"torch/version.py says {recorded} but the installed metadata says {torch.version}")
    if len(set(pythons)) > 1:
        notes.append(f"{location}: several Python versions are installed: {', '.join(sorted(set(pythons)))}")
    return Inventory(
        kind="image",
        location=location,
        packages=tuple(sorted(found, key=lambda p: (p.name, p.version))),
        python_version=pythons[0] if pythons else None,
        torch=torch,
        files=(location,),
        notes=tuple(notes),
    )
