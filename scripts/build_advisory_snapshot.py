"""Rebuild the OSV snapshot mlmon ships (monitor/stack/data/osv-torch-family.json) from an OSV export.

    python scripts/build_advisory_snapshot.py EXPORT [--out FILE] [--package NAME ...]

EXPORT is a directory of OSV JSON records (any depth) or OSV's per-ecosystem all.zip for PyPI.
Only the records affecting the packages (default: the torch family) are kept, and only their
facts: no summaries, details or references.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monitor.stack.advisories.snapshot import BUILTIN_PATH, TORCH_FAMILY, SnapshotError, build_snapshot


def records(export: Path) -> Iterator[tuple[str, Any]]:
    if export.is_dir():
        for path in sorted(export.rglob("*.json")):
            yield str(path), json.loads(path.read_bytes())
    elif zipfile.is_zipfile(export):
        with zipfile.ZipFile(export) as archive:
            for name in sorted(n for n in archive.namelist() if n.endswith(".json")):
                yield f"{export}!{name}", json.loads(archive.read(name))
    else:
        raise SnapshotError(f"{export}: expected a directory of OSV JSON files or an OSV all.zip")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--out", type=Path, default=BUILTIN_PATH)
    parser.add_argument("--package", action="append", help=f"default: {', '.join(TORCH_FAMILY)}")
    args = parser.parse_args()
    docs = []
    try:
        for where, doc in records(args.export):
            if not isinstance(doc, dict):
                sys.stderr.write(f"{where}: skipped, expected a JSON object\n")
                continue
            docs.append(doc)
        snapshot = build_snapshot(docs, args.package or TORCH_FAMILY, f"OSV export of {len(docs)} records")
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    args.out.write_text(json.dumps(snapshot.to_doc(), indent=None, separators=(",", ":"), sort_keys=True) + "\n")
    sys.stdout.write(
        f"{args.out}: {len(snapshot.records)} records of {', '.join(snapshot.packages)}, as of {snapshot.as_of}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
