"""Is a torch version published for the project's build: its variant (local label), its Python, its platform.

Decided from the index's file list alone (PEP 427 wheel tags, `requires-python` as a second filter).
The variant is tracked apart from the version because public specifiers ignore local labels: `2.5.1`
matches `2.5.1+cu121`, yet a CUDA 12.1 project cannot use a CPU wheel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.version import Version

from monitor.stack.plan.model import BuildCheck, IndexFile, Listing
from monitor.stack.versions import parse_version

_PLATFORM_PREFIXES = {"linux": ("manylinux", "musllinux", "linux"), "darwin": ("macosx",), "win32": ("win",)}
_MACHINE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86_64", "amd64"),
    "amd64": ("x86_64", "amd64"),
    "aarch64": ("aarch64", "arm64"),
}
_MACHINE_SUFFIXES["arm64"] = _MACHINE_SUFFIXES["aarch64"] + ("universal2",)


@dataclass(frozen=True, slots=True)
class BuildTarget:
    """What the project runs: Python (`3.11`), and the platform when declared."""

    python: str | None
    sys_platform: str | None = None
    machine: str | None = None

    def describe(self) -> str:
        parts = [f"Python {self.python}" if self.python else "Python unknown"]
        if self.sys_platform:
            parts.append(f"{self.sys_platform} {self.machine or ''}".strip())
        return " on ".join(parts)


@lru_cache(maxsize=64)
def _interpreters(python: str) -> frozenset[tuple[str, str]]:
    """(interpreter, abi) pairs a CPython of this version installs, platform aside."""
    parts = tuple(int(p) for p in python.split(".")[:2])
    tags = [*cpython_tags(parts, platforms=["any"]), *compatible_tags(parts, platforms=["any"])]
    return frozenset((t.interpreter, t.abi) for t in tags)


def python_fits(file: IndexFile, python: str | None) -> bool:
    if python is None:
        return True
    wanted = _interpreters(python)
    if file.tags and not any((t.interpreter, t.abi) in wanted for t in file.tags):
        return False
    if file.requires_python:
        try:
            return SpecifierSet(file.requires_python).contains(_full(python), prereleases=True)
        except InvalidSpecifier:
            return True
    return True


def platform_fits(tag: Tag, target: BuildTarget) -> bool:
    if target.sys_platform is None or tag.platform == "any":
        return True
    if not tag.platform.startswith(_PLATFORM_PREFIXES.get(target.sys_platform, (target.sys_platform,))):
        return False
    if target.machine is None:
        return True
    suffixes = _MACHINE_SUFFIXES.get(target.machine.lower(), (target.machine.lower(),))
    return tag.platform.endswith(suffixes)


def fits(file: IndexFile, target: BuildTarget) -> bool:
    if not file.is_wheel:
        return False
    return python_fits(file, target.python) and any(platform_fits(t, target) for t in file.tags)


def _full(python: str) -> str:
    return python if python.count(".") >= 2 else f"{python}.0"


def variant_of(installed: str) -> str | None:
    version = parse_version(installed)
    return version.local if version is not None else None


def published_files(listing: Listing, version: Version, variant: str | None, target: BuildTarget) -> list[IndexFile]:
    return [f for f in listing.releases().get(version, ()) if f.local == variant and fits(f, target)]


def check(listing: Listing, version: Version, variant: str | None, target: BuildTarget) -> BuildCheck:
    label = variant or "default"
    same = published_files(listing, version, variant, target)
    if same:
        return BuildCheck(
            "published",
            label,
            f"{len(same)} wheel(s) of {version}{'+' + variant if variant else ''} for {target.describe()}",
            tuple(sorted(f.filename for f in same))[:8],
        )
    of_version = listing.releases().get(version, [])
    others = sorted({f.local or "default" for f in of_version if f.local != variant and fits(f, target)})
    if not of_version:
        why = f"{listing.name} {version} is not on this index"
    elif any(f.local == variant for f in of_version):
        platforms = sorted({t.platform for f in of_version if f.local == variant for t in f.tags})[:6]
        pythons = sorted({t.interpreter for f in of_version if f.local == variant for t in f.tags})[:8]
        why = (
            f"{version} ({label}) has no wheel for {target.describe()}: "
            f"published for {', '.join(pythons)} on {', '.join(platforms)}"
        )
    else:
        why = f"{version} is not published as the {label} variant"
    if others:
        why += f"; available as {', '.join(others)} (a variant change)"
    return BuildCheck("not_published", label, why, (), tuple(others))


def available(listing: Listing, target: BuildTarget, variant: str | None, strict_variant: bool) -> list[Version]:
    """Versions with at least one usable non-yanked file: for torch a wheel of the same variant for
    the target; for other packages any wheel for the Python, or an sdist."""
    key = ("available", target, variant, strict_variant)
    if key in listing.memo:
        return list(listing.memo[key])
    out = []
    for version, files in listing.releases().items():
        if strict_variant:
            if any(f.local == variant and fits(f, target) for f in files):
                out.append(version)
        elif any((fits(f, target) if f.is_wheel else python_fits(f, target.python)) for f in files):
            out.append(version)
    listing.memo[key] = tuple(sorted(out))
    return sorted(out)


def representative(files: Sequence[IndexFile], target: BuildTarget) -> IndexFile | None:
    """The file whose metadata stands for a release on the target (a fitting wheel first)."""
    wheels = [f for f in files if f.is_wheel and not f.yanked]
    fitting = [f for f in wheels if fits(f, target)]
    chosen = fitting or wheels
    return chosen[0] if chosen else None
