"""What an inventory is: packages with versions, where each was found, the torch build, Python.

An inventory serialises to a plain JSON document (`to_doc` / `from_doc`) so a source can hand it
over in its checkpoint and the store can keep it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from monitor.core.errors import StackError
from monitor.stack.versions import canonical_name

Ecosystem = Literal["PyPI", "conda"]
Variant = Literal["cuda", "rocm", "cpu", "xpu", "unknown"]
InventoryKind = Literal["python_env", "lockfile", "sbom", "repo", "image"]

DOC_VERSION = 1


class InventoryError(StackError):
    """A file could not be read as an inventory: names the file, the position and what was expected."""

    def __init__(self, path: str, message: str, line: int | None = None, column: int | None = None) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.reason = message
        where = path
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Package:
    """One package at one version, as one file (or environment) lists it."""

    name: str
    """PEP 503 normalised name, the key advisories are matched on."""
    version: str
    """The version exactly as found, local label included (`2.5.1+cu121`)."""
    origin: str
    """The file or directory it was read from."""
    line: int | None = None
    ecosystem: Ecosystem = "PyPI"
    scope: str | None = None
    """`dev` when the format marks the package as a development dependency."""
    index: str | None = None
    """The index or channel the package comes from, when the file says."""
    build: str | None = None
    """A conda build string (`py3.11_cuda12.1_cudnn9.1.0_0`)."""
    native_name: str | None = None
    """The name as its own ecosystem spells it, when that differs from `name`: conda's `pytorch`
    (matched as PyPI's torch) or `_libgcc_mutex` (which PEP 503 would turn into `-libgcc-mutex`)."""

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "version": self.version, "origin": self.origin}
        for key in ("line", "scope", "index", "build", "native_name"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        if self.ecosystem != "PyPI":
            doc["ecosystem"] = self.ecosystem
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Package:
        return cls(
            name=str(doc["name"]),
            version=str(doc["version"]),
            origin=str(doc.get("origin", "")),
            line=doc.get("line"),
            ecosystem=doc.get("ecosystem", "PyPI"),
            scope=doc.get("scope"),
            index=doc.get("index"),
            build=doc.get("build"),
            native_name=doc.get("native_name"),
        )


def package(name: str, version: str, origin: str, **extra: Any) -> Package:
    """A Package with its name normalised."""
    return Package(canonical_name(name), version.strip(), origin, **extra)


@dataclass(frozen=True, slots=True)
class TorchBuild:
    """The installed torch and the hardware it was built for."""

    version: str
    variant: Variant
    accelerator: str | None = None
    """CUDA (`12.1`) or ROCm (`6.2`) version of the build, when known."""
    evidence: str = ""
    """Where the variant was read from: the local label, torch/version.py, pinned CUDA packages..."""

    def describe(self) -> str:
        if self.variant in ("cuda", "rocm") and self.accelerator:
            return f"{self.variant.upper() if self.variant == 'cuda' else 'ROCm'} {self.accelerator}"
        return {"cuda": "CUDA", "rocm": "ROCm", "cpu": "CPU", "xpu": "XPU", "unknown": "unknown build"}[self.variant]

    def to_doc(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "variant": self.variant,
            "accelerator": self.accelerator,
            "evidence": self.evidence,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> TorchBuild:
        return cls(str(doc["version"]), doc.get("variant", "unknown"), doc.get("accelerator"), doc.get("evidence", ""))


@dataclass(frozen=True)
class Inventory:
    """Every package of one target (an environment, a lock file, an SBOM or a repository)."""

    kind: InventoryKind
    location: str
    packages: tuple[Package, ...]
    python_version: str | None = None
    torch: TorchBuild | None = None
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """Things worth knowing that are not errors, e.g. unpinned requirements that were not checked."""
    _index: dict[str, tuple[dict[str, None], dict[tuple[str, int | None], None]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def _indexed(self) -> dict[str, tuple[dict[str, None], dict[tuple[str, int | None], None]]]:
        """name -> (distinct versions, distinct (origin, line)), built in one pass and kept.
        Insertion-ordered dicts, not lists: 200,000 repeated lines must stay linear."""
        if not self._index and self.packages:
            index = self._index
            for pkg in self.packages:
                entry = index.get(pkg.name)
                if entry is None:
                    entry = index[pkg.name] = ({}, {})
                entry[0][pkg.version] = None
                entry[1][(pkg.origin, pkg.line)] = None
        return self._index

    def versions(self, name: str) -> tuple[str, ...]:
        """Distinct versions of a package (normalised name), in the order first seen."""
        entry = self._indexed().get(name) or self._indexed().get(canonical_name(name))
        return tuple(entry[0]) if entry else ()

    def locations(self, name: str) -> list[tuple[str, int | None]]:
        entry = self._indexed().get(name)
        return list(entry[1]) if entry else []

    def names(self) -> list[str]:
        return list(self._indexed())

    def with_torch(self, torch: TorchBuild | None) -> Inventory:
        return replace(self, torch=torch, _index={})

    def to_doc(self) -> dict[str, Any]:
        return {
            "doc_version": DOC_VERSION,
            "kind": self.kind,
            "location": self.location,
            "python_version": self.python_version,
            "torch": self.torch.to_doc() if self.torch else None,
            "files": list(self.files),
            "notes": list(self.notes),
            "packages": [p.to_doc() for p in self.packages],
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Inventory:
        torch = doc.get("torch")
        return cls(
            kind=doc.get("kind", "lockfile"),
            location=str(doc.get("location", "")),
            packages=tuple(Package.from_doc(p) for p in doc.get("packages", [])),
            python_version=doc.get("python_version"),
            torch=TorchBuild.from_doc(torch) if torch else None,
            files=tuple(doc.get("files", [])),
            notes=tuple(doc.get("notes", [])),
        )

    def digest(self) -> str:
        """A hash of what matters for matching: the (name, version) pairs and the torch build."""
        pairs = sorted({(p.name, p.version) for p in self.packages})
        torch = self.torch.to_doc() if self.torch else None
        text = json.dumps([pairs, torch, self.python_version], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def merge(kind: InventoryKind, location: str, parts: Iterable[Inventory], notes: Iterable[str] = ()) -> Inventory:
    """One inventory of several (a repository's files); the first torch build found wins."""
    items = list(parts)
    torch = next((p.torch for p in items if p.torch is not None and p.torch.variant != "unknown"), None)
    if torch is None:
        torch = next((p.torch for p in items if p.torch is not None), None)
    python = next((p.python_version for p in items if p.python_version), None)
    return Inventory(
        kind=kind,
        location=location,
        packages=tuple(pkg for part in items for pkg in part.packages),
        python_version=python,
        torch=torch,
        files=tuple(f for part in items for f in part.files),
        notes=(*notes, *(n for part in items for n in part.notes)),
    )
