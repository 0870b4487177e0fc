"""What the plan is made of: index listings and files, gaps in what the index told us, and the plan.

Everything here is plain data with `to_doc`/`from_doc`, so a plan can be stored, served as JSON and
rendered by the CLI and the web pages from the same document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from packaging.tags import Tag
from packaging.version import Version

from monitor.stack.advisories.severity import RANK


@dataclass(frozen=True, slots=True)
class IndexFile:
    """One file of a project page (PEP 691 `files[]`)."""

    filename: str
    url: str
    version: Version | None
    tags: frozenset[Tag] = frozenset()
    """Wheel tags (empty for an sdist)."""
    requires_python: str | None = None
    yanked: bool = False
    metadata_hash: Mapping[str, str] | None = None
    """PEP 658/714 `core-metadata` hashes when the index advertises them."""

    @property
    def is_wheel(self) -> bool:
        return bool(self.tags)

    @property
    def local(self) -> str | None:
        return self.version.local if self.version is not None else None


@dataclass(frozen=True)
class Listing:
    """A project page of the index: its files, and when it was read."""

    name: str
    url: str
    files: tuple[IndexFile, ...]
    fetched_at: datetime | None = None
    last_serial: int | None = None
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    """Results derived from the files (kept with the listing: a fleet's plans share torch's page)."""

    def releases(self) -> dict[Version, list[IndexFile]]:
        """Non-yanked files by public version (local labels folded in)."""
        found: dict[Version, list[IndexFile]] | None = self.memo.get("releases")
        if found is None:
            found = {}
            for item in self.files:
                if item.version is None or item.yanked:
                    continue
                found.setdefault(Version(item.version.public), []).append(item)
            self.memo["releases"] = found
        return found


GapKind = Literal["unreachable", "not_listed", "not_json", "not_read"]


@dataclass(frozen=True, slots=True)
class IndexGap:
    """What the index could not tell: the plan says "unknown" with this, never a guess."""

    kind: GapKind
    detail: str
    since: datetime | None = None

    def describe(self) -> str:
        when = f" since {self.since:%Y-%m-%d %H:%M:%S} UTC" if self.since else ""
        what = {
            "unreachable": f"index unreachable{when}",
            "not_listed": "not on this index",
            "not_json": "the index answered no PEP 691 JSON",
            "not_read": "index not read yet",
        }[self.kind]
        return f"unknown ({what}: {self.detail})" if self.detail else f"unknown ({what})"

    def to_doc(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "detail": self.detail,
            "since": self.since.isoformat() if self.since else None,
            "text": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class CoreMetadata:
    """The parts of a wheel's METADATA the plan reads."""

    requires_dist: tuple[str, ...]
    requires_python: str | None = None


class IndexLookup(Protocol):
    """Where the plan reads the index from: a live client, the store's cache, or both."""

    def listing(self, name: str, index_url: str | None = None) -> Listing | IndexGap: ...

    def metadata(self, file: IndexFile) -> CoreMetadata | None | IndexGap:
        """A file's core metadata; None when the index has none for it (PEP 658 `404`)."""
        ...


@dataclass(frozen=True, slots=True)
class Exposure:
    """One open finding as the plan needs it (from a scan's Finding or a stored row)."""

    key: str
    severity: str
    state: str = "affected"
    fix_versions: tuple[str, ...] = ()


def by_severity(keys: Sequence[Exposure]) -> dict[str, int]:
    """Counts per severity, worst first."""
    counts: dict[str, int] = {}
    for item in sorted(keys, key=lambda e: -RANK.get(e.severity, 0)):
        counts[item.severity] = counts.get(item.severity, 0) + 1
    return counts


@dataclass(frozen=True)
class Companion:
    """A package that must move with torch, and the version that pairs with the proposed torch."""

    package: str
    installed: str
    proposed: str | None
    pairing: str
    """declared (an == pin on torch), torch-pins (torch's own Requires-Dist), range (a >= pin that
    allows it, not a declared pairing), none (no release pairs), or unknown (index gap)."""
    evidence: str
    blocker: str | None = None
    gap: IndexGap | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "installed": self.installed,
            "proposed": self.proposed,
            "pairing": self.pairing,
            "evidence": self.evidence,
            "blocker": self.blocker,
            "unknown": self.gap.to_doc() if self.gap else None,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Companion:
        return cls(
            doc["package"],
            doc["installed"],
            doc.get("proposed"),
            doc["pairing"],
            doc.get("evidence", ""),
            doc.get("blocker"),
            _gap(doc.get("unknown")),
        )


@dataclass(frozen=True)
class BuildCheck:
    """Whether the proposed torch is published for the project's build."""

    status: Literal["published", "not_published", "unknown"]
    variant: str
    """The local label wanted (`cu121`), or `default` for files without one."""
    detail: str
    files: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    """Other variants of the proposed version on this index, when the wanted one is missing."""
    gap: IndexGap | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "variant": self.variant,
            "detail": self.detail,
            "files": list(self.files),
            "alternatives": list(self.alternatives),
            "unknown": self.gap.to_doc() if self.gap else None,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> BuildCheck:
        return cls(
            doc["status"],
            doc["variant"],
            doc.get("detail", ""),
            tuple(doc.get("files", ())),
            tuple(doc.get("alternatives", ())),
            _gap(doc.get("unknown")),
        )


@dataclass(frozen=True)
class PackagePlan:
    """The upgrade of one vulnerable package."""

    package: str
    installed: tuple[str, ...]
    target: str | None
    """The lowest version closing every fixable finding; None when nothing closes any."""
    basis: Literal["index", "advisories"]
    """index: chosen among the versions the index lists for the build; advisories: the index could not
    be read, so the lowest `fixed` version above the installed one, unverified."""
    closes: Mapping[str, int]
    closed: tuple[str, ...]
    inferred: tuple[str, ...] = ()
    """Findings closed only because the target is above `last_affected` (no `fixed` event)."""
    unfixable: tuple[str, ...] = ()
    unfixable_counts: Mapping[str, int] = field(default_factory=dict)
    still_open: tuple[str, ...] = ()
    """Fixable findings the target does not close (no single listed version closes them all)."""
    worst: str = "unknown"
    findings: int = 0
    notes: tuple[str, ...] = ()
    gap: IndexGap | None = None
    companions: tuple[Companion, ...] = ()
    build: BuildCheck | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "installed": list(self.installed),
            "target": self.target,
            "basis": self.basis,
            "findings": self.findings,
            "worst": self.worst,
            "closes": dict(self.closes),
            "closed": list(self.closed),
            "inferred": list(self.inferred),
            "unfixable": list(self.unfixable),
            "unfixable_counts": dict(self.unfixable_counts),
            "still_open": list(self.still_open),
            "notes": list(self.notes),
            "unknown": self.gap.to_doc() if self.gap else None,
            "companions": [c.to_doc() for c in self.companions],
            "build": self.build.to_doc() if self.build else None,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> PackagePlan:
        build = doc.get("build")
        return cls(
            package=doc["package"],
            installed=tuple(doc.get("installed", ())),
            target=doc.get("target"),
            basis=doc.get("basis", "index"),
            closes=dict(doc.get("closes", {})),
            closed=tuple(doc.get("closed", ())),
            inferred=tuple(doc.get("inferred", ())),
            unfixable=tuple(doc.get("unfixable", ())),
            unfixable_counts=dict(doc.get("unfixable_counts", {})),
            still_open=tuple(doc.get("still_open", ())),
            worst=doc.get("worst", "unknown"),
            findings=int(doc.get("findings", 0)),
            notes=tuple(doc.get("notes", ())),
            gap=_gap(doc.get("unknown")),
            companions=tuple(Companion.from_doc(c) for c in doc.get("companions", ())),
            build=BuildCheck.from_doc(build) if build else None,
        )


RULE = (
    "lowest listed final release above the installed one that is unaffected by every fixable finding "
    "and by every other advisory of the package (neither pip-audit's max-of-first-fixes nor "
    "osv-scanner's latest-unaffected)"
)


@dataclass(frozen=True)
class Plan:
    packages: tuple[PackagePlan, ...]
    index_url: str | None
    computed_at: datetime | None = None
    rule: str = RULE

    def for_package(self, package: str) -> PackagePlan | None:
        return next((p for p in self.packages if p.package == package), None)

    def to_doc(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "index": self.index_url,
            "computed_at": self.computed_at.isoformat() if self.computed_at else None,
            "packages": [p.to_doc() for p in self.packages],
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Plan:
        computed = doc.get("computed_at")
        return cls(
            tuple(PackagePlan.from_doc(p) for p in doc.get("packages", ())),
            doc.get("index"),
            datetime.fromisoformat(computed) if computed else None,
            doc.get("rule", RULE),
        )


def _gap(doc: Mapping[str, Any] | None) -> IndexGap | None:
    if not doc:
        return None
    since = doc.get("since")
    return IndexGap(doc["kind"], doc.get("detail", ""), datetime.fromisoformat(since) if since else None)
