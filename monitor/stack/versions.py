"""Package names and versions: PEP 503 names, PEP 440 versions, local build labels.

Everything compares `packaging.version.Version` objects; nothing here goes through `SpecifierSet`,
whose pre-release and local-label rules differ from OSV's ordering (see docs/stack.md).
"""

from __future__ import annotations

from functools import lru_cache

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version


def canonical_name(name: str) -> str:
    """PEP 503 normalised name (`Pillow` -> `pillow`, `torch_vision` -> `torch-vision`)."""
    return str(canonicalize_name(name))


@lru_cache(maxsize=65536)
def parse_version(text: str) -> Version | None:
    """The PEP 440 version of `text`, or None when it is not one."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


@lru_cache(maxsize=65536)
def public_version(text: str) -> Version | None:
    """The version without its local label (`2.5.1+cu121` -> `2.5.1`), or None if not PEP 440."""
    version = parse_version(text)
    if version is None:
        return None
    return version if version.local is None else Version(version.public)


def local_label(text: str) -> str | None:
    """The local label of a version (`cu121` of `2.5.1+cu121`), if any."""
    version = parse_version(text)
    return version.local if version is not None else None


def minor_of(version: Version) -> tuple[int, int]:
    """(major, minor) of a version; a version with one component has minor 0."""
    release = version.release
    return release[0], release[1] if len(release) > 1 else 0
