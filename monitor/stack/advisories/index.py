"""An advisory database compiled for matching many inventories fast, with aliases merged.

Records that share any ID (their own or an alias: CVE, GHSA, PYSEC) describe one vulnerability and
become one finding (union-find over `{id} ∪ aliases`; GHSA files do not list their PYSEC twins, so
the union of both sides is needed). Matching results are cached per (package, version): across a
fleet, torch versions repeat, so most lookups are one dict access.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from packaging.version import Version

from monitor.stack.advisories.matching import (
    CompiledEntry,
    Verdict,
    combine_verdicts,
    compile_entry,
    evaluate,
)
from monitor.stack.advisories.model import PYPI, Advisory
from monitor.stack.advisories.severity import Severity, advisory_scores, combine
from monitor.stack.versions import public_version

_PREFIX_ORDER = ("CVE-", "GHSA-", "PYSEC-")


def group_key(ids: Iterable[str]) -> str:
    """The ID a vulnerability is known by: its CVE if it has one, else GHSA, else PYSEC, else any."""
    items = sorted(set(ids))
    for prefix in _PREFIX_ORDER:
        found = [i for i in items if i.startswith(prefix)]
        if found:
            return found[0]
    return items[0]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def alias_groups(advisories: Iterable[Advisory]) -> list[list[Advisory]]:
    """Advisories grouped by shared IDs (transitively)."""
    items = list(advisories)
    uf = _UnionFind()
    for adv in items:
        for alias in adv.aliases:
            uf.union(adv.id, alias)
        uf.find(adv.id)
    groups: dict[str, list[Advisory]] = defaultdict(list)
    for adv in items:
        groups[uf.find(adv.id)].append(adv)
    return list(groups.values())


@dataclass(frozen=True, slots=True)
class MemberVerdict:
    """What one record of a vulnerability says about the installed version."""

    advisory: str
    verdict: str
    """affected, not_affected, undetermined, or no_data (the record names no package)."""
    reason: str = ""

    def to_doc(self) -> dict[str, str]:
        doc = {"advisory": self.advisory, "verdict": self.verdict}
        if self.reason:
            doc["reason"] = self.reason
        return doc


@dataclass(frozen=True)
class VersionMatch:
    """One vulnerability affecting (or possibly affecting) one package version."""

    package: str
    version: str
    key: str
    ids: tuple[str, ...]
    state: Verdict
    severity: Severity
    summary: str
    fix_versions: tuple[str, ...]
    fixed_in: str | None
    """The lowest fixed version above the installed one."""
    last_affected: str | None
    published: datetime | None
    modified: datetime | None
    members: tuple[MemberVerdict, ...]
    notes: tuple[str, ...] = ()
    fix_published: datetime | None = None
    """When the first record naming `fixed_in` as a fix was published (not the group's earliest record)."""

    @property
    def disagreement(self) -> bool:
        verdicts = {m.verdict for m in self.members if m.verdict != "no_data"}
        return len(verdicts) > 1


@dataclass(frozen=True)
class _Facts:
    """What a vulnerability says about one package whatever the installed version: computed once."""

    by_advisory: tuple[tuple[Advisory, tuple[CompiledEntry, ...]], ...]
    severity: Severity
    summary: str
    fixes: tuple[Version, ...]
    last_affected: str | None
    published: datetime | None
    modified: datetime
    fix_published: Mapping[Version, datetime]


@dataclass
class _Group:
    key: str
    ids: tuple[str, ...]
    advisories: list[Advisory]
    entries: dict[str, list[CompiledEntry]] = field(default_factory=dict)
    """package -> entries of every member naming it."""
    facts: dict[str, _Facts] = field(default_factory=dict)

    def facts_for(self, package: str) -> _Facts:
        found = self.facts.get(package)
        if found is None:
            entries = self.entries[package]
            by_advisory = tuple((adv, tuple(e for e in entries if e.advisory == adv.id)) for adv in self.advisories)
            last = sorted({v for e in entries for v in e.last_affected})
            published = [a.published for a in self.advisories if a.published is not None]
            fix_published: dict[Version, datetime] = {}
            for adv, adv_entries in by_advisory:
                if adv.published is None:
                    continue
                for fixed in {v for e in adv_entries for v in e.fixed}:
                    known = fix_published.get(fixed)
                    fix_published[fixed] = adv.published if known is None else min(known, adv.published)
            found = _Facts(
                by_advisory=by_advisory,
                severity=combine(s for adv in self.advisories for s in advisory_scores(adv, package)),
                summary=_summary(self.advisories),
                fixes=tuple(sorted({v for e in entries for v in e.fixed})),
                last_affected=str(last[-1]) if last else None,
                published=min(published) if published else None,
                modified=max(a.modified for a in self.advisories),
                fix_published=fix_published,
            )
            self.facts[package] = found
        return found


class AdvisoryIndex:
    """Non-withdrawn advisories, grouped by alias and compiled per package."""

    def __init__(self, advisories: Iterable[Advisory], revision: int | None = None) -> None:
        live = [a for a in advisories if a.withdrawn is None]
        self.revision = revision
        self.count = len(live)
        self._groups: list[_Group] = []
        self._by_package: dict[str, list[_Group]] = defaultdict(list)
        self._memo: dict[tuple[str, str], tuple[VersionMatch, ...]] = {}
        self.derived: dict[object, dict[tuple[str, str], Any]] = {}
        """Caches of results built on top of matches (e.g. findings), keyed by what else they depend on."""
        for members in alias_groups(live):
            ids = sorted({i for a in members for i in a.ids})
            group = _Group(group_key(ids), tuple(ids), sorted(members, key=lambda a: _member_order(a.id)))
            for adv in group.advisories:
                for affected in adv.affected:
                    if affected.ecosystem == PYPI:
                        group.entries.setdefault(affected.name, []).append(compile_entry(adv, affected))
            for name in group.entries:
                self._by_package[name].append(group)
            self._groups.append(group)
        self._names = frozenset(self._by_package)

    @property
    def packages(self) -> frozenset[str]:
        return self._names

    def __contains__(self, package: str) -> bool:
        return package in self._by_package

    def match(self, package: str, version: str) -> tuple[VersionMatch, ...]:
        """Vulnerabilities affecting (or undetermined for) `package` at `version`."""
        key = (package, version)
        found = self._memo.get(key)
        if found is None:
            groups = self._by_package.get(package)
            found = tuple(self._evaluate(package, version, groups)) if groups else ()
            self._memo[key] = found
        return found

    def _evaluate(self, package: str, version: str, groups: list[_Group]) -> Iterable[VersionMatch]:
        installed = public_version(version)
        for group in groups:
            facts = group.facts_for(package)
            members: list[MemberVerdict] = []
            states: list[tuple[Verdict, str]] = []
            notes: list[str] = []
            for adv, entries in facts.by_advisory:
                if not entries:
                    members.append(MemberVerdict(adv.id, "no_data", _no_data_reason(adv, package)))
                    continue
                verdict, reason = combine_verdicts(evaluate(e, version) for e in entries)
                members.append(MemberVerdict(adv.id, verdict.value, reason))
                states.append((verdict, reason))
                notes.extend(n for e in entries for n in e.notes)
            state, _ = combine_verdicts(states)
            if state is Verdict.NOT_AFFECTED:
                continue
            above = next((f for f in facts.fixes if installed is not None and f > installed), None)
            yield VersionMatch(
                package=package,
                version=version,
                key=group.key,
                ids=group.ids,
                state=state,
                severity=facts.severity,
                summary=facts.summary,
                fix_versions=tuple(str(f) for f in facts.fixes),
                fixed_in=str(above) if above is not None else None,
                last_affected=facts.last_affected,
                published=facts.published,
                modified=facts.modified,
                members=tuple(members),
                notes=tuple(dict.fromkeys(notes)),
                fix_published=facts.fix_published.get(above) if above is not None else None,
            )

    def advisories_for(self, package: str) -> list[Advisory]:
        return [adv for g in self._by_package.get(package, []) for adv in g.advisories]

    def group_of(self, ident: str) -> tuple[str, tuple[str, ...]] | None:
        for group in self._groups:
            if ident in group.ids:
                return group.key, group.ids
        return None


def _member_order(ident: str) -> tuple[int, str]:
    for rank, prefix in enumerate(("GHSA-", "PYSEC-")):
        if ident.startswith(prefix):
            return rank, ident
    return 9, ident


def _no_data_reason(adv: Advisory, package: str) -> str:
    if not adv.affected:
        return "the record lists no affected packages (e.g. an unreviewed GHSA); its twin's verdict applies"
    names = sorted({a.raw_name for a in adv.affected})
    return f"the record names {', '.join(names)}, not {package}"


def _summary(advisories: list[Advisory]) -> str:
    for adv in advisories:
        if adv.summary:
            return adv.summary
    return advisories[0].title() if advisories else ""


def fix_hint(match: VersionMatch, releases: Mapping[str, object] | Iterable[str]) -> str | None:
    """For a vulnerability without a fixed version: the first release above `last_affected` (unverified)."""
    if match.fixed_in is not None or match.last_affected is None:
        return None
    ceiling = Version(match.last_affected)
    candidates = sorted(
        v for v in (public_version(r) for r in releases) if v is not None and not v.is_prerelease and v > ceiling
    )
    if not candidates:
        return f"no release above last_affected {match.last_affected} yet"
    return f"first release above last_affected {match.last_affected}: {candidates[0]} (unverified)"


def unlooked_hint(match: VersionMatch) -> str | None:
    """For a vulnerability without a fixed version when no release history was read: say so rather
    than claim there is no release above `last_affected`."""
    if match.fixed_in is not None or match.last_affected is None:
        return None
    return f"affected through last_affected {match.last_affected}; releases above it were not looked up"
