"""An offline OSV database: a directory of OSV JSON files (any depth) or OSV's per-ecosystem `all.zip`.

One bad record never stops the others: it is counted and reported with its file and the reason.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from monitor.core.errors import StackError
from monitor.stack.advisories.model import Advisory, AdvisoryError, parse_advisory
from monitor.stack.advisories.snapshot import BUILTIN, describe, is_snapshot, resolve

Progress = Callable[[int, int], None]
"""Called with (records done, records in total) while loading."""

MAX_RECORD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that could not be loaded: where it is and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class LoadResult:
    advisories: list[Advisory] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.advisories) + len(self.rejected)


class OfflineSourceError(StackError):
    """The database as a whole cannot be read (missing path, not a zip, no JSON in it)."""


def _parse_bytes(raw: bytes, where: str) -> Advisory:
    if len(raw) > MAX_RECORD_BYTES:
        raise AdvisoryError(where, f"record is {len(raw)} bytes; the limit is {MAX_RECORD_BYTES}")
    try:
        doc = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise AdvisoryError(where, f"expected UTF-8 JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AdvisoryError(where, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return parse_advisory(doc, where)


def _entries(path: Path) -> tuple[int, Iterator[tuple[str, bytes]]]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        return len(files), ((str(f), f.read_bytes()) for f in files)
    if zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        names = [n for n in archive.namelist() if n.endswith(".json") and not n.endswith("/")]

        def read() -> Iterator[tuple[str, bytes]]:
            with archive:
                for name in names:
                    yield f"{path}!{name}", archive.read(name)

        return len(names), read()
    if path.suffix == ".json" and path.is_file():
        raw = path.read_bytes()
        doc = _snapshot_doc(raw)
        if doc is not None:
            # One file holding many facts-only records (see snapshot.py), each parsed on its own.
            found = doc.get("records")
            records: list[object] = found if isinstance(found, list) else []
            return len(records), (
                (f"{path}!{r.get('id', i) if isinstance(r, dict) else i}", json.dumps(r).encode())
                for i, r in enumerate(records)
            )
        return 1, iter([(str(path), raw)])
    raise OfflineSourceError(f"{path}: expected a directory of OSV JSON files or an OSV all.zip")


def _snapshot_doc(raw: bytes) -> dict[str, object] | None:
    if not raw.lstrip().startswith(b"{") or b'"mlmon-osv-snapshot/' not in raw[:4096] + raw[-4096:]:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if is_snapshot(doc) else None


def load_offline(path: str | Path, progress: Progress | None = None) -> LoadResult:
    """Every record under `path` (`builtin`: the shipped snapshot); bad records are counted in
    `rejected`, never fatal."""
    root = resolve(path) if isinstance(path, str) else Path(path).expanduser()
    if not root.exists():
        raise OfflineSourceError(f"{root}: no such file or directory")
    try:
        total, entries = _entries(root)
    except (OSError, zipfile.BadZipFile) as exc:
        raise OfflineSourceError(f"{root}: cannot read: {exc}") from None
    if total == 0:
        raise OfflineSourceError(f"{root}: no .json records found")
    result = LoadResult()
    done = 0
    try:
        for where, raw in entries:
            try:
                result.advisories.append(_parse_bytes(raw, where))
            except AdvisoryError as exc:
                result.rejected.append(Rejected(where, str(exc).removeprefix(f"{where}: ")))
            done += 1
            if progress is not None:
                progress(done, total)
    except (OSError, zipfile.BadZipFile) as exc:
        raise OfflineSourceError(f"{root}: reading stopped after {done} of {total} records: {exc}") from None
    return result


def parse_records(docs: list[tuple[str, object]]) -> LoadResult:
    """Records already decoded from JSON (the OSV API's answers), checked one by one."""
    result = LoadResult()
    for where, doc in docs:
        try:
            result.advisories.append(parse_advisory(doc, where))
        except AdvisoryError as exc:
            result.rejected.append(Rejected(where, str(exc).removeprefix(f"{where}: ")))
    return result


@dataclass(frozen=True)
class OfflineFeed:
    """An OSV export on disk (a directory of JSON records or the ecosystem's all.zip), read whole."""

    path: str
    kind: str = "offline"

    @property
    def location(self) -> str:
        return self.path

    def fetch(self, holdings: object, progress: Progress | None) -> LoadResult:
        """Every record of the export (an export has no notion of "changed since")."""
        return load_offline(self.path, progress)


@dataclass(frozen=True)
class SnapshotFeed:
    """The facts-only torch-family snapshot shipped with mlmon (`advisories.path: builtin`)."""

    kind: str = "snapshot"

    @property
    def location(self) -> str:
        return describe(BUILTIN)

    def fetch(self, holdings: object, progress: Progress | None) -> LoadResult:
        return load_offline(BUILTIN, progress)
