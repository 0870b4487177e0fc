"""FOCUS ingest benchmark: mlmon's `focus` source against DuckDB's own `read_csv ... GROUP BY` and pandas.

It generates a FOCUS 1.0 export shaped like the real sample (../shared/data/billing/focus: the
same 44 columns, quoting, NULL tokens, JSON Tags; rows copied from the sample's 1,000 and given
new dates, amounts and an `ml-project` tag among `--projects` projects, 5% untagged), then, in
one run, each side in its own fresh process (so each peak RSS is its own), alternating:

1. mlmon: `FocusCollector.collect()` on the file, as the scheduler runs it: DuckDB reads the
   needed columns, validates (currency, dates, numbers, periods), attributes, tells GPU rows and
   GPU-hours, spreads multi-day charges, totals per (project, charge kind, day), then readings;
   in the same process, 1% more rows are appended to the file and collect() runs again (the
   append re-read, goal <= 20% of the full read);
2. duckdb: `read_csv` (types sniffed) with `Tags->>'$.ml-project'` and `GROUP BY` project, day
   of BilledCost and EffectiveCost: the engine alone, without validation or attribution rules;
3. pandas: `read_csv(usecols=...)`, the project out of `Tags` with `str.extract`, the day with
   `to_datetime`, `groupby([project, day]).sum()`;
4. duckdb-min: DuckDB's query of 2. plus only the least the issue asks of any reader on top:
   GPU rows told apart (mlmon's own GPU-candidate pattern on ChargeDescription, as a group key)
   and a flag for a charge period that ends before it starts or a cost that is NULL or not
   finite. No Tags rules, no category, no spreading, no GPU-hours, no located errors: a lower
   bound, by construction, for what mlmon's read could cost;
5. scan: DuckDB's `SELECT count(*)` over the same `read_csv`: what reading the file costs at all.

All but the scan report the billed total per project; the benchmark fails if they disagree. It
prints wall and CPU seconds, rows/s, the ratio mlmon/DuckDB (goal <= 1.1) and peak RSS (goal <=
300 MiB), and how far the peer and duckdb-min are above the bare scan.

    .venv/bin/python bench/focus.py                         # 2,000,000 rows, 500 projects
    .venv/bin/python bench/focus.py --rows 200000 --repeat 1

pandas is needed for its baseline only (`pip install pandas`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
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
SIDES = ("mlmon", "duckdb", "pandas", "duckdb-min", "scan")
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
    # imported before the clock starts, as the DuckDB side does (a service pays this once); a CSV
    # read needs no pyarrow, so it is not imported here (its RSS would count against mlmon)
    import duckdb.sqltypes  # noqa: F401

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
    timed, cpu = time.perf_counter(), time.process_time()
    result = collector.collect(ctx)
    seconds, cpu = time.perf_counter() - timed, time.process_time() - cpu
    _store(store, result)
    billed: dict[str, float] = {}
    for reading in result.readings:
        if reading.metric == "spend_usd" and reading.labels.get(BASIS) == "billed":
            project = reading.labels[ATTRIBUTED]
            billed[project] = billed.get(project, 0.0) + reading.value
    rows = next(iter(result.checkpoint["files"].values()))["rows"] if result.checkpoint else 0
    appended = _append_one_percent(path, rows)
    ctx = CollectContext(
        "finops",
        "focus",
        datetime(2024, 10, 2, tzinfo=UTC),
        3600.0,
        store.samples,
        store.events,
        result.checkpoint or {},
        HttpFactory(),
        {},
    )
    timed = time.perf_counter()
    grown = collector.collect(ctx)
    append_seconds = time.perf_counter() - timed
    grown_rows = next(iter(grown.checkpoint["files"].values()))["rows"] if grown.checkpoint else 0
    store.close()
    return {
        "rows": rows,
        "seconds": seconds,
        "cpu": cpu,
        "append_rows": appended,
        "append_seconds": append_seconds,
        "append_ok": grown_rows == rows + appended,
        "with_imports": time.perf_counter() - started,
        "readings": len(result.readings),
        "billed": billed,
    }


def _store(store: Any, result: Any) -> None:
    """What the runner would store, so the append run adds to stored days as in production."""
    from monitor.core.types import Sample, SeriesKey, labels_of, ms_from_datetime

    store.samples.append(
        [
            Sample(SeriesKey("finops", r.metric, labels_of(dict(r.labels))), ms_from_datetime(r.ts), r.value)
            for r in result.readings
            if r.ts is not None
        ]
    )


def _append_one_percent(path: Path, rows: int) -> int:
    """Append 1% more rows (copies of the first ones) to the file; how many."""
    count = max(1, rows // 100)
    with path.open("rb") as handle:
        handle.readline()
        lines = [handle.readline() for _ in range(count)]
    with path.open("ab") as out:
        out.writelines(lines)
    return count


def _duckdb_side(sql: str, parameters: list[Any], billed_at: int | None, bad_at: int | None = None) -> dict[str, Any]:
    """Time `sql` in a fresh DuckDB; each answer row's last value is its row count, the value at
    `billed_at` is summed per project (the first value) and the one at `bad_at` must be 0."""
    started = time.perf_counter()
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    timed, cpu = time.perf_counter(), time.process_time()
    found = con.execute(sql, parameters).fetchall()
    seconds, cpu = time.perf_counter() - timed, time.process_time() - cpu
    if bad_at is not None and any(row[bad_at] for row in found):
        raise SystemExit("a row of the generated file breaks a FOCUS rule")
    billed: dict[str, float] = {}
    for row in found if billed_at is not None else []:
        billed[row[0]] = billed.get(row[0], 0.0) + row[billed_at]
    return {
        "rows": sum(r[-1] for r in found),
        "seconds": seconds,
        "cpu": cpu,
        "with_imports": time.perf_counter() - started,
        "readings": len(found),
        "billed": billed,
    }


def run_duckdb(path: Path) -> dict[str, Any]:
    return _duckdb_side(
        f"""SELECT coalesce(Tags->>'$."{TAG}"', '__unattributed__') AS project, CAST(ChargePeriodStart AS DATE) AS day,
                   sum(BilledCost) AS billed, sum(EffectiveCost) AS effective, count(*) AS n
            FROM read_csv(?, nullstr = 'NULL') GROUP BY ALL""",
        [str(path)],
        billed_at=2,
    )


def run_duckdb_min(path: Path) -> dict[str, Any]:
    """The peer's query plus GPU rows told apart and the cheapest validity flag (module docstring, 4.)."""
    sys.path.insert(0, str(REPO))
    from collectors.spend.gpu_families import candidate_pattern

    return _duckdb_side(
        f"""SELECT coalesce(Tags->>'$."{TAG}"', '__unattributed__') AS project, CAST(ChargePeriodStart AS DATE) AS day,
                   regexp_matches(ChargeDescription, ?) AS gpu,
                   bool_or(ChargePeriodEnd < ChargePeriodStart OR NOT isfinite(BilledCost)
                           OR NOT isfinite(EffectiveCost)) AS bad,
                   sum(BilledCost) AS billed, count(*) AS n
            FROM read_csv(?, nullstr = 'NULL') GROUP BY ALL""",
        [candidate_pattern(), str(path)],
        billed_at=4,
        bad_at=3,
    )


def run_scan(path: Path) -> dict[str, Any]:
    """Reading the file and nothing else (module docstring, 5.)."""
    return _duckdb_side("SELECT count(*) FROM read_csv(?, nullstr = 'NULL')", [str(path)], billed_at=None)


def run_pandas(path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    import pandas as pd

    timed, cpu = time.perf_counter(), time.process_time()
    frame = pd.read_csv(
        path,
        usecols=["BilledCost", "EffectiveCost", "BillingCurrency", "ChargePeriodStart", "Tags"],
        na_values=["NULL"],
        keep_default_na=False,
    )
    frame["project"] = frame["Tags"].str.extract(rf'"{TAG}":\s*"([^"]*)"', expand=False).fillna("__unattributed__")
    frame["day"] = pd.to_datetime(frame["ChargePeriodStart"], format="%Y-%m-%d %H:%M:%S").dt.floor("D")
    totals = frame.groupby(["project", "day"])[["BilledCost", "EffectiveCost"]].sum()
    seconds, cpu = time.perf_counter() - timed, time.process_time() - cpu
    billed = {str(k): float(v) for k, v in totals["BilledCost"].groupby(level=0).sum().items()}
    return {
        "rows": len(frame),
        "seconds": seconds,
        "cpu": cpu,
        "with_imports": time.perf_counter() - started,
        "readings": len(totals),
        "billed": billed,
    }


def child(side: str, path: Path, workdir: Path) -> None:
    sys.path.insert(0, str(REPO))
    from bench.rss import peak_rss_bytes

    if side == "mlmon":
        copy = workdir / "mlmon-copy.csv"  # the append run grows the file: keep the shared one intact
        shutil.copyfile(path, copy)
        result = run_mlmon(copy, workdir)
        copy.unlink()
    else:
        runs = {"duckdb": run_duckdb, "pandas": run_pandas, "duckdb-min": run_duckdb_min, "scan": run_scan}
        result = runs[side](path)
    result["peak_rss_bytes"] = peak_rss_bytes()
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
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file, args.workdir)
        return 0
    for module, hint in (("pandas", "pip install pandas"), ("duckdb", "pip install -e .")):
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
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for attempt in range(args.repeat):
        order = list(SIDES) if attempt % 2 == 0 else list(reversed(SIDES))
        for side in order:
            (workdir / "bench.db").unlink(missing_ok=True)
            runs[side].append(measure(side, path, workdir))
    best = {side: min(results, key=lambda r: r["seconds"]) for side, results in runs.items()}
    print()
    head = f"{'side':<10} {'rows':>11} {'wall s':>7} {'CPU s':>7} {'rows/s':>11} {'peak RSS MiB':>13}"
    print(f"{head}  (best of {args.repeat})")
    for side in SIDES:
        r = best[side]
        print(
            f"{side:<10} {r['rows']:>11,} {r['seconds']:>7.2f} {r['cpu']:>7.2f} {r['rows'] / r['seconds']:>11,.0f} "
            f"{r['peak_rss_bytes'] / 2**20:>13,.0f}"
        )
    for side in SIDES:
        times = ", ".join(f"{r['seconds']:.2f}" for r in runs[side])
        print(f"  {side} runs (s): {times}")
    mlmon, duck = best["mlmon"], best["duckdb"]
    wall = mlmon["seconds"] / duck["seconds"]
    cpu = mlmon["cpu"] / duck["cpu"]
    rss = mlmon["peak_rss_bytes"] / 2**20
    append = mlmon["append_seconds"] / mlmon["seconds"]
    print(f"\nmlmon/duckdb wall time: {wall:.2f} (goal <= 1.1); CPU time: {cpu:.2f}")
    print(f"mlmon/pandas wall time: {mlmon['seconds'] / best['pandas']['seconds']:.2f}")
    least, scan = best["duckdb-min"], best["scan"]
    print(
        f"above the bare scan (wall): duckdb {duck['seconds'] / scan['seconds']:.2f}, duckdb-min "
        f"{least['seconds'] / scan['seconds']:.2f}, mlmon {mlmon['seconds'] / scan['seconds']:.2f}"
    )
    print(
        f"duckdb-min/duckdb wall time: {least['seconds'] / duck['seconds']:.2f} (the least the issue's work costs "
        f"the engine itself); mlmon/duckdb-min: {mlmon['seconds'] / least['seconds']:.2f}"
    )
    print(f"mlmon peak RSS: {rss:,.0f} MiB (goal <= 300); duckdb alone: {duck['peak_rss_bytes'] / 2**20:,.0f} MiB")
    print(
        f"append re-read ({mlmon['append_rows']:,} rows appended): {mlmon['append_seconds']:.2f}s = "
        f"{append:.1%} of the full read (goal <= 20%), rows counted right: {mlmon['append_ok']}"
    )
    agree = all(
        set(best[side]["billed"]) == set(best["pandas"]["billed"])
        and all(
            math.isclose(best[side]["billed"].get(p, 0.0), v, rel_tol=1e-9, abs_tol=1e-6)
            for p, v in best["pandas"]["billed"].items()
        )
        for side in ("mlmon", "duckdb", "duckdb-min")
    )
    print(f"per-project billed totals agree (mlmon, duckdb, duckdb-min, pandas): {agree}")
    if not args.keep:
        shutil.rmtree(workdir)
    return 0 if wall <= 1.1 and rss <= 300 and append <= 0.2 and agree and mlmon["append_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
