"""OSV's evaluation rules, exactly, on `packaging` Version objects.

For each `affected[]` entry naming the PyPI package (PEP 503 names compared):
  - a version listed in `versions` matches (PEP 440 equality);
  - each ECOSYSTEM / SEMVER range: if the version is below some `limit` (no limit = "*"), walk the
    events sorted by version (`introduced: "0"` first, ties keep the file's order): `introduced`
    with v >= x sets vulnerable, `fixed` with v >= x clears it, `last_affected` with v > x clears it;
  - GIT ranges need the commit graph and are skipped (noted).
A range with a bound that is not a PEP 440 version cannot be evaluated: if nothing else in the record
matches, the record is UNDETERMINED for that version (reported with the bound), never dropped.
Withdrawn records are never loaded into an index.

The installed version is compared by its public part: a local label (`+cu121`, `+cpu`) names the
build, not the release, and is reported as the variant instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from packaging.version import Version

from monitor.stack.advisories.model import PYPI, Advisory, Affected
from monitor.stack.versions import parse_version, public_version

_INTRODUCED, _FIXED, _LAST_AFFECTED = 0, 1, 2
_MATCHED_RANGE_TYPES = ("ECOSYSTEM", "SEMVER")


class Verdict(StrEnum):
    AFFECTED = "affected"
    NOT_AFFECTED = "not_affected"
    UNDETERMINED = "undetermined"


@dataclass(frozen=True, slots=True)
class CompiledRange:
    events: tuple[tuple[int, Version | None], ...]
    """Sorted (kind, version); version None is `introduced: "0"`."""
    limits: tuple[Version, ...] | None
    """None when the range has no limit (or a `*` limit): everything is before it."""
    bad: str | None = None
    """Why the range cannot be evaluated (a bound that is not PEP 440), or None."""
    fixed: tuple[Version, ...] = ()
    last_affected: tuple[Version, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledEntry:
    """One `affected[]` entry of one advisory, for one package, ready to evaluate."""

    advisory: str
    versions: frozenset[Version]
    raw_versions: frozenset[str]
    ranges: tuple[CompiledRange, ...]
    notes: tuple[str, ...]

    @property
    def fixed(self) -> tuple[Version, ...]:
        return tuple(v for r in self.ranges for v in r.fixed)

    @property
    def last_affected(self) -> tuple[Version, ...]:
        return tuple(v for r in self.ranges for v in r.last_affected)


def compile_range(advisory: str, index: int, raw_type: str, events: Sequence[tuple[str, str]]) -> CompiledRange:
    """A range ready to evaluate, or one marked bad naming the first bound that is not PEP 440."""
    parsed: list[tuple[int, Version | None]] = []
    limits: list[Version] = []
    unlimited = False
    fixed: list[Version] = []
    last: list[Version] = []
    for kind, text in events:
        if kind == "introduced" and text == "0":
            parsed.append((_INTRODUCED, None))
            continue
        if kind == "limit" and "*" in text:
            unlimited = True
            continue
        version = parse_version(text)
        if version is None:
            return CompiledRange(
                (), None, f"{advisory} {raw_type} range {index}: {kind} {text!r} is not a PEP 440 version"
            )
        if kind == "limit":
            limits.append(version)
        elif kind == "introduced":
            parsed.append((_INTRODUCED, version))
        elif kind == "fixed":
            parsed.append((_FIXED, version))
            fixed.append(version)
        else:
            parsed.append((_LAST_AFFECTED, version))
            last.append(version)
    # "0" sorts before every version; sorted() is stable, so equal versions keep the file's order.
    ordered = sorted(parsed, key=lambda e: (e[1] is not None, e[1] or Version("0")))
    return CompiledRange(
        events=tuple(ordered),
        limits=None if unlimited or not limits else tuple(limits),
        fixed=tuple(fixed),
        last_affected=tuple(last),
    )


def compile_entry(advisory: Advisory, affected: Affected) -> CompiledEntry:
    notes: list[str] = []
    versions: set[Version] = set()
    for text in affected.versions:
        version = parse_version(text)
        if version is None:
            notes.append(f"{advisory.id}: listed version {text!r} is not PEP 440 and can equal no installed version")
        else:
            versions.add(version)
    ranges: list[CompiledRange] = []
    for index, rng in enumerate(affected.ranges):
        if rng.type not in _MATCHED_RANGE_TYPES:
            notes.append(f"{advisory.id}: {rng.type} range {index} skipped (needs the repository's commit graph)")
            continue
        compiled = compile_range(advisory.id, index, rng.type, [(e.kind, e.version) for e in rng.events])
        if compiled.bad:
            notes.append(compiled.bad)
        ranges.append(compiled)
    return CompiledEntry(advisory.id, frozenset(versions), frozenset(affected.versions), tuple(ranges), tuple(notes))


def in_range(rng: CompiledRange, version: Version) -> bool:
    """OSV's BeforeLimits + event walk for one evaluable range."""
    if rng.limits is not None and not any(version < limit for limit in rng.limits):
        return False
    vulnerable = False
    for kind, bound in rng.events:
        if kind == _INTRODUCED:
            if bound is None or version >= bound:
                vulnerable = True
        elif kind == _FIXED:
            if bound is not None and version >= bound:
                vulnerable = False
        elif bound is not None and version > bound:
            vulnerable = False
    return vulnerable


def evaluate(entry: CompiledEntry, installed: str) -> tuple[Verdict, str]:
    """Whether an installed version (local label ignored) is affected by one entry, and why."""
    version = public_version(installed)
    if version is None:
        if installed in entry.raw_versions:
            return Verdict.AFFECTED, f"{installed} is listed in versions"
        return Verdict.UNDETERMINED, f"installed version {installed!r} is not PEP 440"
    if version in entry.versions:
        return Verdict.AFFECTED, f"{version} is listed in versions"
    bad: list[str] = []
    for rng in entry.ranges:
        if rng.bad:
            bad.append(rng.bad)
            continue
        if in_range(rng, version):
            return Verdict.AFFECTED, f"{version} is inside an affected range"
    if bad:
        return Verdict.UNDETERMINED, "; ".join(bad)
    return Verdict.NOT_AFFECTED, ""


def combine_verdicts(verdicts: Iterable[tuple[Verdict, str]]) -> tuple[Verdict, str]:
    """An advisory's verdict from its entries: any affected wins, then any undetermined."""
    undetermined: list[str] = []
    for verdict, reason in verdicts:
        if verdict is Verdict.AFFECTED:
            return verdict, reason
        if verdict is Verdict.UNDETERMINED:
            undetermined.append(reason)
    if undetermined:
        return Verdict.UNDETERMINED, "; ".join(undetermined)
    return Verdict.NOT_AFFECTED, ""


def entries_for(advisory: Advisory, package: str) -> list[CompiledEntry]:
    return [compile_entry(advisory, a) for a in advisory.affected if a.ecosystem == PYPI and a.name == package]


def is_vulnerable(advisory: Advisory, package: str, installed: str) -> Verdict:
    """The verdict of one advisory for one installed package version (no index, no caching)."""
    return combine_verdicts(evaluate(e, installed) for e in entries_for(advisory, package))[0]
