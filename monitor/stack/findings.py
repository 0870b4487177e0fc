"""Findings: an inventory matched against an advisory index, with ignores applied.

One finding per (package, vulnerability): aliases are already merged by the index, and several
versions of one package in one inventory (a lock file and an environment that disagree) share it.
An ignore needs a reason and an expiry date, matches any ID of the vulnerability, and stays
visible: an ignored finding is kept and marked, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from itertools import compress
from operator import attrgetter
from typing import Any

from packaging.version import Version

from monitor.stack.advisories.index import AdvisoryIndex, MemberVerdict, VersionMatch, fix_hint, unlooked_hint
from monitor.stack.advisories.severity import RANK, Score
from monitor.stack.inventory.model import Inventory
from monitor.stack.releases import ReleaseHistory
from monitor.stack.versions import canonical_name


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    id: str
    reason: str
    expires: date
    packages: tuple[str, ...] = ()
    projects: tuple[str, ...] | None = None
    origin: str = ""
    """Where the rule is written (`stack.ignores[0]`, `ignores.yaml:3`)."""

    def active(self, now: datetime) -> bool:
        """In force through its expiry date (UTC), inclusive."""
        return now.date() <= self.expires

    def applies(self, project: str | None, package: str, ids: Iterable[str]) -> bool:
        if self.projects is not None and project not in self.projects:
            return False
        if self.packages and canonical_name(package) not in self.packages:
            return False
        wanted = self.id.upper()
        return any(i.upper() == wanted for i in ids)

    def to_doc(self) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason, "expires": self.expires.isoformat(), "origin": self.origin}


@dataclass(frozen=True, slots=True)
class Location:
    origin: str
    line: int | None = None


@dataclass(frozen=True)
class Finding:
    package: str
    versions: tuple[str, ...]
    key: str
    ids: tuple[str, ...]
    state: str
    """`affected`, or `undetermined` when a record's bounds cannot be evaluated."""
    rating: str
    score: float | None
    scores: tuple[Score, ...]
    summary: str
    fix_versions: tuple[str, ...]
    fixed_in: str | None
    fix_hint: str | None
    fix_available_at: datetime | None
    """When the fix became usable: the later of the advisory's publication and the fix's release."""
    published: datetime | None
    modified: datetime | None
    members: tuple[MemberVerdict, ...]
    notes: tuple[str, ...]
    ignore: IgnoreRule | None = None

    @property
    def fix_state(self) -> str:
        return "fix_available" if self.fixed_in else "no_known_fix"

    @property
    def ignored(self) -> bool:
        return self.ignore is not None

    @property
    def disagreement(self) -> bool:
        verdicts = {m.verdict for m in self.members if m.verdict != "no_data"}
        ratings = {s.rating for s in self.scores if s.rating != "unknown"}
        return len(verdicts) > 1 or len(ratings) > 1

    def at_least(self, rating: str) -> bool:
        return RANK[self.rating] >= RANK[rating]

    def to_doc(self, inventory: Inventory | None = None) -> dict[str, Any]:
        """The finding as JSON; with the inventory it came from, also where and in which build."""
        spots = locations(inventory, self.package) if inventory is not None else []
        return {
            "package": self.package,
            "versions": list(self.versions),
            "variant": variant(inventory, self.package) if inventory is not None else None,
            "id": self.key,
            "ids": list(self.ids),
            "state": self.state,
            "severity": self.rating,
            "score": self.score,
            "scores": [s.to_doc() for s in self.scores],
            "summary": self.summary,
            "fix_state": self.fix_state,
            "fixed_in": self.fixed_in,
            "fix_versions": list(self.fix_versions),
            "fix_hint": self.fix_hint,
            "fix_available_at": self.fix_available_at.isoformat() if self.fix_available_at else None,
            "published": self.published.isoformat() if self.published else None,
            "modified": self.modified.isoformat() if self.modified else None,
            "records": [m.to_doc() for m in self.members],
            "disagreement": self.disagreement,
            "notes": list(self.notes),
            "locations": [{"file": loc.origin, "line": loc.line} for loc in spots],
            "ignored": self.ignore.to_doc() if self.ignore else None,
        }


def fix_available_at(match: VersionMatch, history: ReleaseHistory | None) -> datetime | None:
    """The later of the publication of the record that names the fix and the upload of the fixed
    release (when known). Not the group's earliest record: an alias published a year before anyone
    named a fix must not start the SLA clock a year early."""
    if match.fixed_in is None:
        return None
    released = history.uploaded(match.fixed_in) if history is not None else None
    moments = [m for m in (match.fix_published or match.published, released) if m is not None]
    return max(moments) if moments else None


def variant(inventory: Inventory, package: str) -> str | None:
    """The build variant shown beside a package (torch's CUDA / ROCm / CPU build)."""
    if package == "torch" and inventory.torch is not None:
        return inventory.torch.describe()
    return None


def locations(inventory: Inventory, package: str) -> list[Location]:
    """Where an inventory lists a package (file and line)."""
    return [Location(origin, line) for origin, line in inventory.locations(package)]


def find(
    inventory: Inventory,
    index: AdvisoryIndex,
    *,
    project: str | None = None,
    ignores: Sequence[IgnoreRule] = (),
    now: datetime | None = None,
    histories: Mapping[str, ReleaseHistory] | None = None,
) -> list[Finding]:
    """Every vulnerability affecting (or undetermined for) the inventory's packages, by package,
    then most severe first."""
    cache = _cache(index, histories)
    packages = inventory.packages
    # Most of an environment's packages have no advisory at all: pick the few that do without a
    # Python-level step per package (compress, map and the set's own __contains__ run in C).
    relevant = compress(packages, map(index.packages.__contains__, map(_NAME, packages)))
    seen: set[tuple[str, str]] = set()
    per_package: dict[str, list[tuple[Finding, ...]]] = {}
    for pkg in relevant:
        name = pkg.name
        key = (name, pkg.version)
        if key in seen:
            continue
        seen.add(key)
        found = cache.get(key)
        if found is None:
            history = histories.get(name) if histories else None
            made = [_finding(name, (m,), history) for m in index.match(name, pkg.version)]
            found = cache[key] = tuple(sorted(made, key=_severity_order))
        if found:
            per_package.setdefault(name, []).append(found)
    results: list[Finding] = []
    for name in sorted(per_package):
        groups = per_package[name]
        if len(groups) == 1:
            results.extend(groups[0])
        else:
            merged = _merge_versions(name, groups, histories.get(name) if histories else None)
            results.extend(sorted(merged, key=_severity_order))
    active = [r for r in ignores if now is None or r.active(now)]
    if active:
        results = [_ignored(f, active, project) for f in results]
    return results


_NAME = attrgetter("name")


def _severity_order(finding: Finding) -> tuple[int, str]:
    return (-RANK[finding.rating], finding.key)


_NO_HISTORY = object()


def _cache(index: AdvisoryIndex, histories: Mapping[str, ReleaseHistory] | None) -> dict[tuple[str, str], Any]:
    """Findings per (package, version), kept on the index: they change only with the release data."""
    token: object = _NO_HISTORY
    if histories:
        token = tuple(sorted((p, h.source, h.fetched_at, len(h.releases)) for p, h in histories.items()))
    cache = index.derived.get(token)
    if cache is None:
        if len(index.derived) > 8:
            index.derived.clear()
        cache = index.derived[token] = {}
    return cache


def _ignored(finding: Finding, rules: Sequence[IgnoreRule], project: str | None) -> Finding:
    applied = next((r for r in rules if r.applies(project, finding.package, finding.ids)), None)
    return finding if applied is None else replace(finding, ignore=applied)


def _merge_versions(name: str, groups: list[tuple[Finding, ...]], history: ReleaseHistory | None) -> list[Finding]:
    """One finding per vulnerability when several versions of a package are installed."""
    by_key: dict[str, list[Finding]] = {}
    for group in groups:
        for finding in group:
            by_key.setdefault(finding.key, []).append(finding)
    out = []
    for items in by_key.values():
        if len(items) == 1:
            out.append(items[0])
            continue
        # the least favourable version decides: affected beats undetermined, no fix beats a fix
        worst = next((f for f in items if f.state == "affected"), items[0])
        fixes = [f.fixed_in for f in items]
        fixed_in = None if any(f is None for f in fixes) else max((f for f in fixes if f), key=Version)
        out.append(
            replace(
                worst,
                versions=tuple(v for f in items for v in f.versions),
                fixed_in=fixed_in,
                fix_available_at=max((f.fix_available_at for f in items if f.fix_available_at), default=None)
                if fixed_in
                else None,
                notes=tuple(dict.fromkeys(n for f in items for n in f.notes)),
            )
        )
    return out


def _finding(name: str, matches: tuple[VersionMatch, ...], history: ReleaseHistory | None) -> Finding:
    match = matches[0]
    releases = history.releases if history is not None else {}
    return Finding(
        package=name,
        versions=(match.version,),
        key=match.key,
        ids=match.ids,
        state=match.state.value,
        rating=match.severity.rating,
        score=match.severity.score,
        scores=match.severity.scores,
        summary=match.summary,
        fix_versions=match.fix_versions,
        fixed_in=match.fixed_in,
        fix_hint=fix_hint(match, releases) if history is not None else unlooked_hint(match),
        fix_available_at=fix_available_at(match, history),
        published=match.published,
        modified=match.modified,
        members=match.members,
        notes=match.notes,
    )


def expired(ignores: Sequence[IgnoreRule], now: datetime) -> list[IgnoreRule]:
    return [r for r in ignores if not r.active(now)]
