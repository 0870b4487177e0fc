"""Rebuild the index snapshot mlmon ships (monitor/stack/data/index-snapshot.json) from release histories.

    python scripts/build_index_snapshot.py HISTORY.json [HISTORY.json ...] [--out FILE]

Each HISTORY.json is `{"name": "torch", "releases": {"2.6.0": {"upload_time": ..., "yanked": false,
"requires_python": ...}}}`, as read from the package index's JSON API (one file per package).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor.stack.index_snapshot import BUILTIN_PATH, build_index_snapshot

FIELDS = ("upload_time", "yanked", "yanked_reason", "requires_python")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("histories", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=BUILTIN_PATH)
    args = parser.parse_args()
    histories = {}
    for path in args.histories:
        try:
            doc = json.loads(path.read_bytes())
            histories[str(doc["name"])] = {
                version: {k: item.get(k) for k in FIELDS} for version, item in dict(doc["releases"]).items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            sys.stderr.write(f"{path}: expected {{name, releases: {{version: {{upload_time, ...}}}}}}: {exc}\n")
            return 2
    names = ", ".join(sorted(histories))
    document = build_index_snapshot(histories, f"release histories of {names}")
    args.out.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n")
    sys.stdout.write(f"{args.out}: {names}, as of {document['as_of']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
