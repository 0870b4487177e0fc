"""An evaluation job's side of drift detection: push a dataset's columns to mlmon.

    export MLMON_TOKEN=$(mlmon token create --role owner --project churn)
    python examples/quality/push_distribution.py --role reference training.csv
    python examples/quality/push_distribution.py --role current  last-24h.csv

Pushing needs a token that may push for the project (`--token`, or MLMON_TOKEN).

Numbers become numeric columns, anything else categorical; empty cells are missing values. For
large tables push a random sample (a few hundred thousand rows is plenty) or histograms
(`{"histogram": {"edges": [...], "counts": [...]}}`), see docs/quality.md. Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import urllib.error
import urllib.request
from typing import Any


def column_values(cells: list[str]) -> list[Any]:
    present = [c for c in cells if c != ""]
    try:
        [float(c) for c in present]
    except ValueError:
        return [c if c != "" else None for c in cells]
    return [float(c) if c != "" else None for c in cells]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--role", choices=["reference", "current"], required=True)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--project", default="churn")
    parser.add_argument("--dataset", default="features")
    parser.add_argument("--model", default="churn-classifier")
    parser.add_argument("--sample", type=int, default=200_000, help="rows pushed at most (a random sample)")
    parser.add_argument("--token", default=os.environ.get("MLMON_TOKEN"), help="API token [env MLMON_TOKEN]")
    args = parser.parse_args()
    if not args.token:
        parser.error("a token that may push for the project is needed: --token or MLMON_TOKEN")

    with open(args.csv, newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    if len(body) > args.sample:
        body = random.Random(0).sample(body, args.sample)
    columns = {name: {"values": column_values([row[i] for row in body])} for i, name in enumerate(header)}
    push = {"project": args.project, "dataset": args.dataset, "labels": {"model": args.model},
            "role": args.role, "columns": columns}  # fmt: skip
    request = urllib.request.Request(
        f"{args.url}/api/v1/quality/distributions",
        data=json.dumps(push).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {args.token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        # mlmon's error bodies say what was wrong (the permission missing, the bad field): show that.
        detail = exc.read(2000).decode("utf-8", "replace")
        sys.stderr.write(f"{args.url} refused the push: {exc.code} {exc.reason}: {detail}\n")
        return 1
    except urllib.error.URLError as exc:
        sys.stderr.write(f"cannot reach {args.url}: {exc.reason}\n")
        return 1
    for name, column in answer["columns"].items():
        stats = column.get("statistics", {})
        shown = ", ".join(f"{k} {v:.4g}" for k, v in stats.items()) or f"reference {column.get('reference_id')}"
        sys.stdout.write(f"{name}: {shown}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
