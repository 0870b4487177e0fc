"""Which FOCUS files to read this run: discovery, fingerprints, and the days a change touches.

A file is known by its path, size and modification time (its fingerprint). An unchanged file is
not read again. When a file is new, changed or gone, every day it covers (before and after) is
recomputed from all files covering that day, because exports split a month over several files
and a day's total must be the sum over all of them.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from collectors.base import SourceError

DATA_SUFFIXES = (".csv", ".csv.gz", ".gz", ".parquet", ".pq")
"""Files a directory contributes (manifests and the like are skipped)."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Fingerprint:
        stat = path.stat()
        return cls(stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class KnownFile:
    """What the checkpoint remembers of a file read before."""

    fingerprint: Fingerprint
    first_day: date | None
    last_day: date | None
    entry: Mapping[str, Any]

    @classmethod
    def from_checkpoint(cls, entry: Mapping[str, Any]) -> KnownFile:
        first, last = entry.get("first_day"), entry.get("last_day")
        return cls(
            Fingerprint(int(entry["size"]), int(entry["mtime_ns"])),
            date.fromisoformat(first) if first else None,
            date.fromisoformat(last) if last else None,
            entry,
        )

    def days(self) -> set[date]:
        if self.first_day is None or self.last_day is None:
            return set()
        return {self.first_day + timedelta(days=i) for i in range((self.last_day - self.first_day).days + 1)}


@dataclass(frozen=True)
class Plan:
    changed: list[Path]
    """New or modified files: read whole."""
    removed: list[str]
    unchanged: dict[str, KnownFile]
    old_days: set[date]
    """Days the changed and removed files covered before."""

    @property
    def idle(self) -> bool:
        return not self.changed and not self.removed


def discover(pattern: str, exclude: list[str]) -> dict[str, Path]:
    """Files named by a path, a directory (recursively, data files only) or a glob."""
    target = Path(pattern).expanduser()
    if any(ch in pattern for ch in "*?["):
        found = [Path(p) for p in glob.glob(str(target), recursive=True)]
        files = [p for p in found if p.is_file()]
    elif target.is_dir():
        files = [p for p in target.rglob("*") if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES)]
    elif target.is_file():
        files = [target]
    else:
        raise SourceError(f"path {pattern} does not exist (expected a FOCUS file, a directory or a glob)")
    kept = {
        str(p): p
        for p in sorted(files)
        if not any(fnmatch.fnmatch(p.name, x) or fnmatch.fnmatch(str(p), x) for x in exclude)
    }
    if not kept:
        # Never read "no files" as "no spend": an unmounted export must not zero stored days.
        raise SourceError(f"no FOCUS file matches {pattern}" + (f" (after exclude {exclude})" if exclude else ""))
    return kept


def plan(files: Mapping[str, Path], known: Mapping[str, KnownFile], today: date | None = None) -> Plan:
    """`today`: a file whose spread charges reached past the day it was last read is read again
    once a later day has come (future days are never stored before they happen)."""
    changed: list[Path] = []
    unchanged: dict[str, KnownFile] = {}
    old_days: set[date] = set()
    for name, path in files.items():
        before = known.get(name)
        try:
            now = Fingerprint.of(path)
        except OSError as exc:
            raise SourceError(f"cannot read {name}: {exc.strerror}") from None
        if before is not None and before.fingerprint == now and not _pending(before, today):
            unchanged[name] = before
            continue
        changed.append(path)
        if before is not None:
            old_days |= before.days()
    removed = sorted(set(known) - set(files))
    for name in removed:
        old_days |= known[name].days()
    return Plan(changed, removed, unchanged, old_days)


def _pending(known: KnownFile, today: date | None) -> bool:
    pending, through = known.entry.get("pending_until"), known.entry.get("read_through")
    if today is None or not isinstance(pending, str) or not isinstance(through, str):
        return False
    return today > date.fromisoformat(through)


def data_version(files: Mapping[str, Mapping[str, Any]]) -> str:
    """Changes exactly when the set of files read (or one of them) changes."""
    text = json.dumps({k: [v.get("size"), v.get("mtime_ns")] for k, v in sorted(files.items())})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def short(path: str, limit: int = 200) -> str:
    """A path that fits an event subject: its tail."""
    return path if len(path) <= limit else "..." + path[-(limit - 3) :]


def same_file(path: Path, before: Fingerprint) -> bool:
    try:
        return Fingerprint.of(path) == before
    except OSError:
        return False
