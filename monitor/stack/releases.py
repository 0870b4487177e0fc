"""Release histories and how far behind an installed version is.

Pure: a history is a mapping of version -> (first upload time, yanked); the package index client
(`package_index.py`) fills it. "Minors behind" counts the newer release lines (2.13 -> 2.15 is 2);
"behind since" is the upload time of the first release newer than the installed one. PyTorch
publishes patch releases only for its latest minor, so whether the installed minor is the latest
one says whether a patch can still be expected (`patch_policy: latest_minor`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from packaging.version import Version

from monitor.stack.advisories.model import AdvisoryError, parse_time
from monitor.stack.versions import minor_of, parse_version, public_version

PatchPolicy = Literal["latest_minor", "unknown"]
PATCH_POLICIES: dict[str, PatchPolicy] = {"torch": "latest_minor"}


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    uploaded: datetime | None
    yanked: bool = False
    yanked_reason: str | None = None
    requires_python: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "upload_time": self.uploaded.isoformat() if self.uploaded else None,
            "yanked": self.yanked,
            "yanked_reason": self.yanked_reason,
            "requires_python": self.requires_python,
        }


@dataclass(frozen=True)
class ReleaseHistory:
    package: str
    releases: Mapping[str, Release]
    source: str = ""
    """The index URL the history was read from."""
    fetched_at: datetime | None = None

    def to_doc(self) -> dict[str, Any]:
        return {v: r.to_doc() for v, r in self.releases.items()}

    @classmethod
    def from_doc(
        cls, package: str, doc: Mapping[str, Any], source: str = "", fetched_at: datetime | None = None
    ) -> ReleaseHistory:
        releases: dict[str, Release] = {}
        for version, item in doc.items():
            if not isinstance(item, Mapping):
                continue
            try:
                uploaded = parse_time(item.get("upload_time"), f"{package} {version}.upload_time")
            except AdvisoryError:
                uploaded = None
            releases[version] = Release(
                version, uploaded, bool(item.get("yanked")), item.get("yanked_reason"), item.get("requires_python")
            )
        return cls(package, releases, source, fetched_at)

    def uploaded(self, version: str) -> datetime | None:
        """First upload time of a version (compared by public version)."""
        wanted = public_version(version)
        for text, release in self.releases.items():
            if public_version(text) == wanted:
                return release.uploaded
        return None

    def finals(self) -> list[tuple[Version, Release]]:
        """Non-yanked final releases, oldest version first."""
        out = []
        for text, release in self.releases.items():
            parsed = parse_version(text)
            if parsed is not None and not parsed.is_prerelease and not parsed.is_devrelease and not release.yanked:
                out.append((parsed, release))
        return sorted(out, key=lambda item: item[0])


@dataclass(frozen=True)
class Staleness:
    package: str
    installed: str
    latest: str | None
    latest_uploaded: datetime | None
    minors_behind: int
    newer_releases: int
    first_newer: str | None
    behind_since: datetime | None
    """Upload time of the first release newer than the installed one (None when up to date)."""
    latest_in_minor: str | None
    """The newest release of the installed minor line."""
    minor_supported: bool | None
    """Whether the installed minor can still get patch releases (None when the policy is unknown)."""
    installed_known: bool
    """Whether the index lists the installed version at all."""
    installed_yanked: bool
    yanked_reason: str | None
    yanked_versions: tuple[str, ...]
    source: str = ""

    def behind_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.behind_since).total_seconds()) if self.behind_since else 0.0

    def to_doc(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "installed": self.installed,
            "latest": self.latest,
            "latest_uploaded": self.latest_uploaded.isoformat() if self.latest_uploaded else None,
            "minors_behind": self.minors_behind,
            "newer_releases": self.newer_releases,
            "first_newer": self.first_newer,
            "behind_since": self.behind_since.isoformat() if self.behind_since else None,
            "latest_in_minor": self.latest_in_minor,
            "minor_supported": self.minor_supported,
            "installed_known": self.installed_known,
            "installed_yanked": self.installed_yanked,
            "yanked_reason": self.yanked_reason,
            "yanked_versions": list(self.yanked_versions),
            "source": self.source,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Staleness:
        def when(key: str) -> datetime | None:
            value = doc.get(key)
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        return cls(
            package=doc["package"],
            installed=doc["installed"],
            latest=doc.get("latest"),
            latest_uploaded=when("latest_uploaded"),
            minors_behind=int(doc.get("minors_behind", 0)),
            newer_releases=int(doc.get("newer_releases", 0)),
            first_newer=doc.get("first_newer"),
            behind_since=when("behind_since"),
            latest_in_minor=doc.get("latest_in_minor"),
            minor_supported=doc.get("minor_supported"),
            installed_known=bool(doc.get("installed_known")),
            installed_yanked=bool(doc.get("installed_yanked")),
            yanked_reason=doc.get("yanked_reason"),
            yanked_versions=tuple(doc.get("yanked_versions", [])),
            source=doc.get("source", ""),
        )


def staleness(history: ReleaseHistory, installed: str) -> Staleness | None:
    """How far `installed` is behind the history's releases; None when it is not a PEP 440 version."""
    version = public_version(installed)
    if version is None:
        return None
    finals = history.finals()
    yanked = tuple(
        sorted((v for v, r in history.releases.items() if r.yanked), key=lambda v: parse_version(v) or Version("0"))
    )
    own = next((r for v, r in history.releases.items() if public_version(v) == version), None)
    newer = [(v, r) for v, r in finals if v > version]
    latest_version, latest_release = finals[-1] if finals else (None, None)
    line = minor_of(version)
    newer_lines = {minor_of(v) for v, _ in newer if minor_of(v) > line}
    same_line = [v for v, _ in finals if minor_of(v) == line]
    first = min(
        newer, key=lambda item: (item[1].uploaded is None, item[1].uploaded or datetime.max, item[0]), default=None
    )
    policy = PATCH_POLICIES.get(history.package, "unknown")
    supported: bool | None = None
    if policy == "latest_minor" and latest_version is not None:
        supported = line >= minor_of(latest_version)
    return Staleness(
        package=history.package,
        installed=installed,
        latest=str(latest_version) if latest_version is not None else None,
        latest_uploaded=latest_release.uploaded if latest_release else None,
        minors_behind=len(newer_lines),
        newer_releases=len(newer),
        first_newer=str(first[0]) if first else None,
        behind_since=first[1].uploaded if first else None,
        latest_in_minor=str(same_line[-1]) if same_line else None,
        minor_supported=supported,
        installed_known=own is not None,
        installed_yanked=bool(own and own.yanked),
        yanked_reason=own.yanked_reason if own else None,
        yanked_versions=yanked,
        source=history.source,
    )
