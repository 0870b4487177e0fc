"""The union of an image's layers, reduced to the files that say which Python packages are installed.

Layers are applied base first. For each layer its opaque whiteouts (`.wh..wh..opq`: every
lower-layer child of the directory is gone) apply first, wherever they sit in the tar, then its
plain whiteouts (`.wh.<name>`: `<name>` and everything under it is gone), then its own entries.
Only package metadata is kept in memory: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (their
header block only), `conda-meta/*.json` and `torch/version.py`. Everything else is skipped in the
stream, so memory stays flat however large the image is.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Protocol

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_METADATA_BYTES = 256 * 1024
MAX_CONDA_RECORD_BYTES = 16 * 1024 * 1024
READ_BLOCK = 1 << 20


class LayerError(Exception):
    """A layer could not be read: names the layer and what was wrong."""


class LayerHandle(Protocol):
    """An open layer: its uncompressed tar bytes."""

    def read(self, size: int = -1, /) -> bytes: ...

    def finish(self) -> None:
        """Read what tar left unread, so checksums and digests are verified."""

    def close(self) -> None: ...


class Layer(Protocol):
    """One layer: a description for messages, and how to open it."""

    @property
    def name(self) -> str: ...

    def open(self) -> LayerHandle: ...


def wanted(path: str) -> bool:
    """Whether a file is package metadata worth keeping."""
    if path.endswith("/METADATA"):
        return path[: -len("/METADATA")].endswith(".dist-info")
    if path.endswith("/PKG-INFO"):
        return path[: -len("/PKG-INFO")].endswith(".egg-info")
    if path.endswith(".json"):
        parent, _, _name = path.rpartition("/")
        return parent == "conda-meta" or parent.endswith("/conda-meta")
    return path == "torch/version.py" or path.endswith("/torch/version.py")


def _normal(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def _limit(path: str) -> int:
    return MAX_CONDA_RECORD_BYTES if path.endswith(".json") else MAX_METADATA_BYTES


def _read_member(stream: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> bytes:
    handle = stream.extractfile(member)
    if handle is None:
        return b""
    data = handle.read(_limit(path))
    if path.endswith("/METADATA") or path.endswith("/PKG-INFO"):
        # only the header block names the distribution; the long description can be megabytes
        end = data.find(b"\n\n")
        if end >= 0:
            data = data[: end + 1]
    return data


@dataclass
class LayerChanges:
    files: dict[str, bytes] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    """Hard links to kept files (`path -> target`), resolved once the layer is read."""


def read_layer(stream: LayerHandle | IO[bytes], name: str) -> LayerChanges:
    """What one layer's tar stream adds and removes."""
    changes = LayerChanges()
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=READ_BLOCK) as tar:  # type: ignore[call-overload]
            for member in tar:
                path = _normal(member.name)
                base = path.rpartition("/")[2]
                if base == OPAQUE:
                    changes.opaque.append(path.rpartition("/")[0])
                    continue
                if base.startswith(WHITEOUT):
                    parent = path.rpartition("/")[0]
                    gone = base[len(WHITEOUT) :]
                    changes.whiteouts.append(f"{parent}/{gone}" if parent else gone)
                    continue
                if not wanted(path):
                    continue
                if member.isfile():
                    changes.files[path] = _read_member(tar, member, path)
                elif member.islnk():
                    changes.links[path] = _normal(member.linkname)
    except tarfile.TarError as exc:
        raise LayerError(f"{name}: not a readable tar stream: {exc}") from None
    except (EOFError, OSError, ValueError) as exc:
        raise LayerError(f"{name}: the layer data is truncated or corrupt: {exc}") from None
    return changes


def _under(path: str, directory: str) -> bool:
    return directory == "" or path == directory or path.startswith(directory + "/")


def apply(files: dict[str, bytes], changes: LayerChanges) -> None:
    """Apply one layer on top of the files of the layers below it (in place)."""
    for directory in changes.opaque:
        for path in [p for p in files if directory == "" or p.startswith(directory + "/")]:
            del files[path]
    for gone in changes.whiteouts:
        for path in [p for p in files if _under(p, gone)]:
            del files[path]
    for path, target in changes.links.items():
        data = changes.files.get(target, files.get(target))
        if data is not None:
            changes.files[path] = data
    files.update(changes.files)


def union(layers: Iterable[Layer]) -> dict[str, bytes]:
    """The package metadata files of the image's final filesystem."""
    files: dict[str, bytes] = {}
    for layer in layers:
        handle = layer.open()
        try:
            changes = read_layer(handle, layer.name)
            handle.finish()
        finally:
            handle.close()
        apply(files, changes)
    return files
