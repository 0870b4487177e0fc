"""A compact, facts-only snapshot of OSV advisories, shipped with mlmon for offline sites and the demo.

A snapshot is one JSON document: which packages it covers, the newest `modified` time among its
records (the date the data is "as of"), what it was built from, and the records themselves with
only the facts matching needs: IDs, aliases, related IDs, dates, CVSS vectors, the database's
severity word and CWE IDs, and the affected packages with their ranges and versions. Summaries,
details, references and credits (the advisory prose) are left out; the IDs lead to them.

`scripts/build_advisory_snapshot.py` rebuilds the shipped snapshot from an OSV export. Pure except
for `read_snapshot`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

SNAPSHOT_FORMAT = "mlmon-osv-snapshot/1"
BUILTIN = "builtin"
"""`stack.advisories.path: builtin` names the snapshot shipped with mlmon."""
BUILTIN_PATH = Path(__file__).resolve().parent.parent / "data" / "osv-torch-family.json"

TORCH_FAMILY = (
    "torch",
    "torchvision",
    "torchaudio",
    "torchtext",
    "torchdata",
    "triton",
    "transformers",
    "pillow",
    "numpy",
)
"""The packages a PyTorch project's stack checks care most about: torch, its companions, and what
nearly every torch project installs beside it."""

_TOP_LEVEL = ("schema_version", "id", "modified", "published", "withdrawn", "aliases", "related", "upstream")
_AFFECTED = ("package", "ranges", "versions", "severity")
_DATABASE = ("severity", "cwe_ids")


class SnapshotError(ValueError):
    """A file that claims to be a snapshot but is not one."""


@dataclass(frozen=True)
class Snapshot:
    packages: tuple[str, ...]
    as_of: str
    """The newest `modified` among the records (RFC 3339)."""
    built_from: str
    records: tuple[Mapping[str, Any], ...]

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "packages": list(self.packages),
            "as_of": self.as_of,
            "built_from": self.built_from,
            "records": [dict(r) for r in self.records],
        }


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def facts_only(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The record without its prose: the fields matching, scoring and dating use."""
    out: dict[str, Any] = {k: doc[k] for k in _TOP_LEVEL if doc.get(k) not in (None, [], "")}
    if doc.get("severity"):
        out["severity"] = [{"type": s.get("type"), "score": s.get("score")} for s in doc["severity"]]
    database = doc.get("database_specific")
    if isinstance(database, Mapping):
        kept = {k: database[k] for k in _DATABASE if database.get(k)}
        if kept:
            out["database_specific"] = kept
    out["affected"] = [
        {k: a[k] for k in _AFFECTED if a.get(k)} for a in doc.get("affected") or [] if isinstance(a, Mapping)
    ]
    return out


def covers(doc: Mapping[str, Any], packages: Iterable[str]) -> bool:
    wanted = {_canonical(p) for p in packages}
    for affected in doc.get("affected") or []:
        package = affected.get("package") if isinstance(affected, Mapping) else None
        if (
            isinstance(package, Mapping)
            and str(package.get("ecosystem", "")).split(":", 1)[0] == "PyPI"
            and _canonical(str(package.get("name", ""))) in wanted
        ):
            return True
    return False


def build_snapshot(docs: Iterable[Mapping[str, Any]], packages: Sequence[str], built_from: str) -> Snapshot:
    """The facts of every record affecting one of `packages`, sorted by ID (stable diffs)."""
    kept = sorted((facts_only(d) for d in docs if covers(d, packages)), key=lambda r: str(r["id"]))
    if not kept:
        raise SnapshotError(f"no record in {built_from} affects any of {', '.join(packages)}")
    as_of = max(datetime.fromisoformat(str(r["modified"]).replace("Z", "+00:00")) for r in kept)
    return Snapshot(tuple(packages), as_of.isoformat(), built_from, tuple(kept))


def is_snapshot(doc: object) -> bool:
    return isinstance(doc, Mapping) and doc.get("format") == SNAPSHOT_FORMAT


def snapshot_from_doc(doc: object, where: str) -> Snapshot:
    if not is_snapshot(doc):
        raise SnapshotError(f"{where}: expected a JSON object with format {SNAPSHOT_FORMAT!r}")
    assert isinstance(doc, Mapping)
    records = doc.get("records")
    if not isinstance(records, list):
        raise SnapshotError(f"{where}: records: expected a list")
    return Snapshot(
        tuple(str(p) for p in doc.get("packages") or ()),
        str(doc.get("as_of") or ""),
        str(doc.get("built_from") or ""),
        tuple(records),
    )


def read_snapshot(path: Path) -> Snapshot:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{path}: cannot read the snapshot: {exc}") from None
    return snapshot_from_doc(doc, str(path))


def resolve(path: str) -> Path:
    """The file a configured `advisories.path` names (`builtin`: the shipped snapshot)."""
    return BUILTIN_PATH if path == BUILTIN else Path(path).expanduser()


def describe(path: str) -> str:
    """How pages name an offline database (the date of the data is said beside it, from the feed)."""
    return "the torch-family OSV snapshot shipped with mlmon" if path == BUILTIN else f"offline OSV database {path}"
