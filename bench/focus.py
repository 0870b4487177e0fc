"""FOCUS ingest benchmark: mlmon's `focus` source against a pandas `read_csv` + `groupby` baseline.

It generates a FOCUS 1.0 export shaped like the real sample (../shared/data/billing/focus: the
same 44 columns, quoting, NULL tokens, JSON Tags; rows copied from the sample's 1,000 and given
new dates, amounts and an `ml-project` tag among `--projects` projects, 5% untagged), then, in
one run, each side in its own fresh process (so each peak RSS is its own), alternating:

1. mlmon: `FocusCollector.collect()` on the file, as the scheduler runs it: streaming read,
   validation (currency, dates, numbers), attribution, GPU rows and GPU-hours, daily totals per
   (project, GPU or not, day) for BilledCost and EffectiveCost, readings for the store;
2. pandas: `read_csv(usecols=...)`, the project out of `Tags` with `str.extract`, the day with
   `to_datetime`, `groupby([project, day]).sum()` of BilledCost and EffectiveCost.

Both report the billed total per project; the benchmark fails if they disagree. It prints rows/s
of both, the ratio (goal >= 1) and the peak RSS of each (goal for mlmon <= 1 GiB: it streams).

    .venv/bin/python bench/focus.py                         # 2,000,000 rows, 500 projects
    .venv/bin/python bench/focus.py --rows 200000 --repeat 1

pandas is needed for the baseline only (`pip install pandas`); pyarrow for mlmon's reader.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "billing" / "focus" / "focus_sample.csv"
TAG = "ml-project"
NUMERIC = {
    "BilledCost",
    "ConsumedQuantity",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "ListCost",
    "PricingQuantity",
    "Id",
}


def generate(path: Path, rows: int, projects: int, seed: int = 7) -> None:
    """Rows of the real sample, re-dated over September 2024, re-priced and re-tagged."""
    with SAMPLE.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        templates = list(reader)
    index = {name: i for i, name in enumerate(header)}

    def cell(value: str, column: str) -> str:
        if value == "NULL" or column in NUMERIC:
            return value
        return '"' + value.replace('"', '""') + '"'

    cells = [[cell(v, header[i]) for i, v in enumerate(row)] for row in templates]
    rnd = random.Random(seed)
    names = [f"project-{i:03d}" for i in range(projects)]
    tags = [f'"{{""{TAG}"": ""{n}"", ""environment"": ""prod"", ""business_unit"": ""ML""}}"' for n in names]
    i_start, i_end = index["ChargePeriodStart"], index["ChargePeriodEnd"]
    i_billed, i_effective, i_list, i_tags = (
        index["BilledCost"],
        index["EffectiveCost"],
        index["ListCost"],
        index["Tags"],
    )
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(f'"{h}"' for h in header) + "\n")
        batch: list[str] = []
        for n in range(rows):
            row = list(cells[n % len(cells)])
            day, hour = rnd.randint(1, 30), rnd.randint(0, 23)
            row[i_start] = f'"2024-09-{day:02d} {hour:02d}:00:00"'
            row[i_end] = (
                f'"2024-09-{day:02d} {hour:02d}:59:59"' if hour == 23 else f'"2024-09-{day:02d} {hour + 1:02d}:00:00"'
            )
            billed = rnd.random() * 3
            row[i_billed] = row[i_list] = f"{billed:.11f}"
            row[i_effective] = f"{billed * 0.8:.11f}"
            row[i_tags] = tags[rnd.randrange(projects)] if rnd.random() >= 0.05 else "NULL"
            batch.append(",".join(row))
            if len(batch) == 50_000:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            out.write("\n".join(batch) + "\n")


def run_mlmon(path: Path, workdir: Path) -> dict[str, Any]:
    """The focus source's collect(), on a fresh SQLite store (it reads stored days to zero stale ones)."""
    sys.path.insert(0, str(REPO))
    started = time.perf_counter()
    import pyarrow.compute
    import pyarrow.csv  # noqa: F401

    import monitor.config.models  # noqa: F401
    from collectors.base import CollectContext
    from collectors.spend.focus import FocusCollector
    from collectors.spend.focus_params import FocusParams
    from monitor.http import HttpFactory
    from monitor.spend.series import ATTRIBUTED, BASIS
    from monitor.store import migrate
    from monitor.store.store import Store

    store = Store.open(f"sqlite:///{workdir / 'bench.db'}")
    migrate.upgrade(store.engine)
    collector = FocusCollector(FocusParams.model_validate({"path": str(path), "attribution": [{"tag": TAG}]}))
    ctx = CollectContext(
        "finops", "focus", datetime(2024, 10, 2, tzinfo=UTC), 3600.0, store.samples, store.events, {}, HttpFactory(), {}
    )
    timed = time.perf_counter()
    result = collector.collect(ctx)
    seconds = time.perf_counter() - timed
    billed: dict[str, float] = {}
    for reading in result.readings:
        if reading.metric == "spend_usd" and reading.labels.get(BASIS) == "billed":
            project = reading.labels[ATTRIBUTED]
            billed[project] = billed.get(project, 0.0) + reading.value
    rows = next(iter(result.checkpoint["files"].values()))["rows"] if result.checkpoint else 0
    store.close()
    return {
        "rows": rows,
        "seconds": seconds,
        "with_imports": time.perf_counter() - started,
        "readings": len(result.readings),
        "billed": billed,
    }


def run_pandas(path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    import pandas as pd

    timed = time.perf_counter()
    frame = pd.read_csv(
        path,
        usecols=["BilledCost", "EffectiveCost", "BillingCurrency", "ChargePeriodStart", "Tags"],
        na_values=["NULL"],
        keep_default_na=False,
    )
    frame["project"] = frame["Tags"].str.extract(rf'"{TAG}":\s*"([^"]*)"', expand=False).fillna("__unattributed__")
    frame["day"] = pd.to_datetime(frame["ChargePeriodStart"], format="%Y-%m-%d %H:%M:%S").dt.floor("D")
    totals = frame.groupby(["project", "day"])[["BilledCost", "EffectiveCost"]].sum()
    seconds = time.perf_counter() - timed
    billed = {str(k): float(v) for k, v in totals["BilledCost"].groupby(level=0).sum().items()}
    return {
        "rows": len(frame),
        "seconds": seconds,
        "with_imports": time.perf_counter() - started,
        "readings": len(totals),
        "billed": billed,
    }


def child(side: str, path: Path, workdir: Path) -> None:
    result = run_mlmon(path, workdir) if side == "mlmon" else run_pandas(path)
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


def measure(side: str, path: Path, workdir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", side, "--file", str(path), "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side (alternating); the best counts")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--child", choices=["mlmon", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file, args.workdir)
        return 0
    for module, hint in (("pandas", "pip install pandas"), ("pyarrow", "pip install 'mlmon[focus]'")):
        try:
            __import__(module)
        except ImportError:
            print(f"{module} is not installed ({hint})", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="mlmon-bench-focus-"))
    path = workdir / "focus-export.csv"
    started = time.perf_counter()
    generate(path, args.rows, args.projects)
    print(
        f"generated {args.rows:,} rows, {args.projects} projects, {path.stat().st_size / 2**20:,.0f} MiB "
        f"in {time.perf_counter() - started:.1f}s: {path}"
    )
    runs: dict[str, list[dict[str, Any]]] = {"mlmon": [], "pandas": []}
    for attempt in range(args.repeat):
        order = ["mlmon", "pandas"] if attempt % 2 == 0 else ["pandas", "mlmon"]
        for side in order:
            (workdir / "bench.db").unlink(missing_ok=True)
            runs[side].append(measure(side, path, workdir))
    best = {side: min(results, key=lambda r: r["seconds"]) for side, results in runs.items()}
    print()
    print(f"{'side':<8} {'rows':>11} {'seconds':>8} {'rows/s':>11} {'peak RSS MiB':>13}  (best of {args.repeat})")
    for side in ("mlmon", "pandas"):
        r = best[side]
        print(
            f"{side:<8} {r['rows']:>11,} {r['seconds']:>8.2f} {r['rows'] / r['seconds']:>11,.0f} "
            f"{r['peak_rss_bytes'] / 2**20:>13,.0f}"
        )
    for side in ("mlmon", "pandas"):
        times = ", ".join(f"{r['seconds']:.2f}" for r in runs[side])
        print(f"  {side} runs (s): {times}")
    ratio = best["pandas"]["seconds"] / best["mlmon"]["seconds"]
    mlmon_rss = best["mlmon"]["peak_rss_bytes"] / 2**20
    print(f"\nratio mlmon/pandas rows/s: {ratio:.2f} (goal >= 1)")
    print(f"mlmon peak RSS: {mlmon_rss:,.0f} MiB (goal <= 1024)")
    agree = all(
        math.isclose(best["mlmon"]["billed"].get(p, 0.0), v, rel_tol=1e-9, abs_tol=1e-6)
        for p, v in best["pandas"]["billed"].items()
    ) and set(best["mlmon"]["billed"]) == set(best["pandas"]["billed"])
    print(f"per-project billed totals agree: {agree}")
    if not args.keep:
        shutil.rmtree(workdir)
    return 0 if ratio >= 1 and mlmon_rss <= 1024 and agree else 1


if __name__ == "__main__":
    sys.exit(main())
