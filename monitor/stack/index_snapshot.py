"""Release histories from a file instead of the package index: for offline sites and the demo.

    stack:
      index:
        path: builtin        # the snapshot shipped with mlmon, or a file of the same format

A snapshot is one JSON document: `{"format": "mlmon-index-snapshot/1", "as_of": ..., "built_from":
..., "packages": {"torch": {"releases": {"2.6.0": {"upload_time": ..., "yanked": false,
"requires_python": ">=3.9"}}}}}`, each history exactly as `ReleaseHistory.to_doc` writes it.
`scripts/build_index_snapshot.py` rebuilds the shipped one. Package metadata other families need
(the companions' Requires-Dist on torch, file lists per build) goes beside `releases` in a
package's entry, so one file keeps serving every reader.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.stack.releases import ReleaseHistory

INDEX_SNAPSHOT_FORMAT = "mlmon-index-snapshot/1"
BUILTIN = "builtin"
BUILTIN_PATH = Path(__file__).resolve().parent / "data" / "index-snapshot.json"


class IndexSnapshotError(ValueError):
    """The file cannot be read, is not a snapshot, or lacks a package."""


@dataclass(frozen=True)
class IndexSnapshot:
    location: str
    as_of: str
    built_from: str
    packages: Mapping[str, Mapping[str, Any]]

    def history(self, package: str, fetched_at: datetime | None = None) -> ReleaseHistory:
        entry = self.packages.get(package)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("releases"), Mapping):
            known = ", ".join(sorted(self.packages)) or "none"
            raise IndexSnapshotError(f"{package}: not in {self.location} (it holds {known})")
        return ReleaseHistory.from_doc(package, entry["releases"], self.location, fetched_at)


def resolve(path: str) -> Path:
    return BUILTIN_PATH if path == BUILTIN else Path(path).expanduser()


def describe(path: str) -> str:
    return "the index snapshot shipped with mlmon" if path == BUILTIN else f"index snapshot {path}"


def read_index_snapshot(path: str) -> IndexSnapshot:
    where = resolve(path)
    try:
        doc = json.loads(where.read_bytes())
    except (OSError, ValueError) as exc:
        raise IndexSnapshotError(f"{where}: cannot read the index snapshot: {exc}") from None
    if not isinstance(doc, Mapping) or doc.get("format") != INDEX_SNAPSHOT_FORMAT:
        raise IndexSnapshotError(f"{where}: expected a JSON object with format {INDEX_SNAPSHOT_FORMAT!r}")
    packages = doc.get("packages")
    if not isinstance(packages, Mapping):
        raise IndexSnapshotError(f"{where}: packages: expected an object of package name -> entry")
    return IndexSnapshot(describe(path), str(doc.get("as_of") or ""), str(doc.get("built_from") or ""), packages)


def build_index_snapshot(histories: Mapping[str, Mapping[str, Any]], built_from: str) -> dict[str, Any]:
    """The document for `histories` (package -> version -> release fields); as of its newest upload."""
    uploads = [
        str(r["upload_time"]) for releases in histories.values() for r in releases.values() if r.get("upload_time")
    ]
    return {
        "format": INDEX_SNAPSHOT_FORMAT,
        "as_of": max(uploads) if uploads else None,
        "built_from": built_from,
        "packages": {name: {"releases": dict(releases)} for name, releases in sorted(histories.items())},
    }
