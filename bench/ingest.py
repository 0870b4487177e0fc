"""Ingest and range-query benchmark: `POST /api/v1/samples` against raw SQLAlchemy Core.

For each database kind (SQLite, and PostgreSQL unless --skip-postgres) it feeds every batch, in
turn, to:

1. a real `mlmon serve` subprocess on a fresh database: the pre-encoded body POSTed over one
   keep-alive httpx connection, one request at a time (HTTP, JSON parsing, validation, series
   resolution and the idempotent upsert all included);
2. the baseline: a fresh database of the same kind, migrated, with the series rows pre-created:
   `conn.execute(samples.insert(), rows)` (Core executemany, rows as dicts), one transaction per
   batch, on the very same rows.

Interleaving the two batch by batch (alternating which goes first) spreads the noise of a busy
machine over both sides. It prints samples/s of both and their ratio (goal: >= 0.5). Then it measures a 30-day
`query_range` (step 1h) on one SQLite series holding 1,000,000 one-minute samples, through the
running server and in-process (goal: < 50 ms on SQLite).

    .venv/bin/python bench/ingest.py                       # full size, SQLite and PostgreSQL
    .venv/bin/python bench/ingest.py --samples 100000 --skip-postgres
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/ingest.py`: the repository root makes `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select, text

from bench.support import (
    admin_token,
    mlmon_env,
    mlmon_serve,
    percentile,
    postgres_databases,
    print_machine_speed,
    progress,
    table,
    verdict,
)
from monitor.core.matchers import parse_selector
from monitor.core.types import Sample, SeriesKey, labels_text
from monitor.store import migrate
from monitor.store.db import make_engine
from monitor.store.samples import labels_hash
from monitor.store.schema import samples, series
from monitor.store.store import Store

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SERIES_PER_PROJECT = 100
METRIC = "accuracy"
QUERY_PROJECT = "bench-query"
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
INGEST_GOAL = 0.5
QUERY_GOAL_MS = 50.0


# --- the data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """`samples` readings over `series` series: reading i is of series i % series, and every
    series gets one reading per minute, as if each batch were one scrape of many series."""

    keys: list[SeriesKey]
    series_index: list[int]
    ts_ms: list[int]
    values: list[float]
    batch: int

    @property
    def size(self) -> int:
        return len(self.ts_ms)

    def batches(self) -> Iterator[range]:
        for start in range(0, self.size, self.batch):
            yield range(start, min(start + self.batch, self.size))

    def bodies(self) -> list[bytes]:
        """Every request body, JSON-encoded up front so the client's encoding is never timed."""
        out = []
        for part in self.batches():
            items = []
            for i in part:
                key = self.keys[self.series_index[i]]
                items.append(
                    {
                        "project": key.project,
                        "metric": key.metric,
                        "labels": dict(key.labels),
                        "timestamp": self.ts_ms[i] / 1000,
                        "value": self.values[i],
                    }
                )
            out.append(json.dumps({"samples": items}, separators=(",", ":")).encode())
        return out


def project_id(index: int) -> str:
    return f"bench-p{index:03d}"


def make_dataset(n_samples: int, n_series: int, batch: int, seed: int = 7) -> Dataset:
    keys = [
        SeriesKey(project_id(i // SERIES_PER_PROJECT), METRIC, (("model", f"m{i % SERIES_PER_PROJECT:03d}"),))
        for i in range(n_series)
    ]
    rounds = -(-n_samples // n_series)
    # Minute-aligned, the newest reading a few minutes in the past (the API refuses the future).
    first = (int(time.time() * 1000) // MINUTE_MS - rounds - 5) * MINUTE_MS
    rng = random.Random(seed)
    series_index = [i % n_series for i in range(n_samples)]
    ts_ms = [first + (i // n_series) * MINUTE_MS for i in range(n_samples)]
    values = [round(rng.random(), 6) for _ in range(n_samples)]
    return Dataset(keys, series_index, ts_ms, values, batch)


def write_config(path: Path, n_series: int) -> None:
    """Projects for the series (100 series each) and one for the query benchmark; no sources.
    Raw retention is long so that no downsampling touches the query series during the run."""
    n_projects = -(-n_series // SERIES_PER_PROJECT)
    lines = ["retention:", "  raw: 1000d", "  hourly: 1000d", "projects:"]
    lines += [f"  - id: {project_id(i)}" for i in range(n_projects)]
    lines.append(f"  - id: {QUERY_PROJECT}")
    path.write_text("\n".join(lines) + "\n")


# --- the server ----------------------------------------------------------------------------------


def run_migrate(database_url: str, config: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "monitor", "migrate"],
        env=mlmon_env(database_url, config),
        check=True,
        capture_output=True,
    )


# --- the two ingest paths ------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    samples: int
    seconds: float
    batch_seconds: list[float]

    @property
    def rate(self) -> float:
        return self.samples / self.seconds

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.batch_seconds) * 1000

    @property
    def p95_ms(self) -> float:
        return percentile(self.batch_seconds, 95) * 1000


def precreate_series(engine: Engine, keys: list[SeriesKey]) -> list[int]:
    """The series rows as mlmon itself would write them; returns their ids in `keys` order."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for key in keys:
        labels = labels_text(key.labels)
        rows.append(
            {
                "project": key.project,
                "metric": key.metric,
                "labels": labels,
                "labels_hash": labels_hash(key.project, key.metric, labels),
                "created_at": now,
            }
        )
    with engine.begin() as conn:
        conn.execute(series.insert(), rows)
        ids: dict[str, int] = dict(conn.execute(select(series.c.labels_hash, series.c.id)).all())
    return [ids[row["labels_hash"]] for row in rows]


def ingest_side_by_side(
    base: str, token: str, engine: Engine, bodies: list[bytes], data: Dataset
) -> tuple[Timing, Timing]:
    """Each batch twice, alternating which goes first: POSTed to the server, and inserted with
    Core executemany in one transaction into the baseline database. Interleaving batch by batch
    means that a burst of noise on the machine lands on both sides alike."""
    ids = precreate_series(engine, data.keys)
    insert = samples.insert()
    server: list[float] = []
    core: list[float] = []
    headers = {"content-type": "application/json", "Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=300, headers=headers) as client:
        client.get("/readyz").raise_for_status()  # opens the keep-alive connection

        def post(body: bytes, count: int) -> None:
            t0 = time.perf_counter()
            response = client.post("/api/v1/samples", content=body)
            server.append(time.perf_counter() - t0)
            if response.status_code != 200 or response.json().get("accepted") != count:
                raise RuntimeError(f"POST /api/v1/samples: {response.status_code} {response.text[:500]}")

        def execute(rows: list[dict[str, Any]]) -> None:
            t0 = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(insert, rows)
            core.append(time.perf_counter() - t0)

        for n, (body, part) in enumerate(zip(bodies, data.batches(), strict=True)):
            rows = [
                {"series_id": ids[data.series_index[i]], "ts": data.ts_ms[i], "value": data.values[i]} for i in part
            ]
            if n % 2:
                execute(rows)
                post(body, len(part))
            else:
                post(body, len(part))
                execute(rows)
    return Timing(data.size, sum(server), server), Timing(data.size, sum(core), core)


def count_samples(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM samples")).scalar_one())
    finally:
        engine.dispose()


@dataclass(frozen=True)
class IngestResult:
    database: str
    server: Timing
    core: Timing

    @property
    def ratio(self) -> float:
        return self.server.rate / self.core.rate


def bench_database(
    kind: str, server_url: str, core_url: str, config: Path, workdir: Path, bodies: list[bytes], data: Dataset
) -> IngestResult:
    if kind == "postgresql":
        run_migrate(server_url, config)  # SQLite: `serve` migrates the empty file itself
    progress(f"{kind}: {data.size:,} samples in {len(bodies)} batches, POST and Core executemany in turn")
    engine = make_engine(core_url)  # the server's own engine set-up (SQLite: WAL, synchronous=NORMAL)
    try:
        migrate.upgrade(engine)
        with mlmon_serve(server_url, config, workdir / f"serve-{kind}.log") as base:
            token = admin_token(server_url, config)
            server, core = ingest_side_by_side(base, token, engine, bodies, data)
    finally:
        engine.dispose()
    for path, url in (("server", server_url), ("baseline", core_url)):
        stored = count_samples(url)
        if stored != data.size:
            raise RuntimeError(f"{kind} {path}: {stored:,} samples stored, expected {data.size:,}")
    return IngestResult(kind, server, core)


# --- PostgreSQL databases ------------------------------------------------------------------------


# --- query_range ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryResult:
    stored: int
    points: int
    http_ms: list[float]
    inprocess_ms: list[float]


def bench_query(workdir: Path, config: Path, n_samples: int, requests: int) -> QueryResult:
    url = f"sqlite:///{workdir / 'query.db'}"
    key = SeriesKey(QUERY_PROJECT, METRIC, (("model", "long"),))
    end_ms = (int(time.time() * 1000) // MINUTE_MS - 1) * MINUTE_MS
    first = end_ms - (n_samples - 1) * MINUTE_MS
    progress(f"query_range: loading {n_samples:,} one-minute samples of one series into SQLite")
    store = Store.open(url)
    try:
        migrate.upgrade(store.engine)
        rng = random.Random(11)
        chunk = 50_000
        for start in range(0, n_samples, chunk):
            stop = min(start + chunk, n_samples)
            store.samples.append([Sample(key, first + i * MINUTE_MS, rng.random()) for i in range(start, stop)])
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    stored = count_samples(url)

    start_ms = end_ms - 30 * DAY_MS
    query = f'{METRIC}{{project="{QUERY_PROJECT}"}}'
    params = {"query": query, "start": str(start_ms / 1000), "end": str(end_ms / 1000), "step": "1h"}
    progress(f"query_range: {requests} requests through the server, then in-process")
    http_ms: list[float] = []
    points = 0
    with mlmon_serve(url, config, workdir / "serve-query.log") as base, httpx.Client(base_url=base) as client:
        for n in range(requests + 3):
            t0 = time.perf_counter()
            response = client.get("/api/v1/query_range", params=params)
            elapsed = (time.perf_counter() - t0) * 1000
            response.raise_for_status()
            if n >= 3:  # the first requests warm the page cache and the server's caches
                http_ms.append(elapsed)
            points = len(response.json()["series"][0]["values"])

    selector = parse_selector(query)
    inprocess_ms: list[float] = []
    store = Store.open(url)
    try:
        for n in range(requests + 3):
            t0 = time.perf_counter()
            found = store.samples.query_range(selector, start_ms, end_ms, HOUR_MS)
            elapsed = (time.perf_counter() - t0) * 1000
            if n >= 3:
                inprocess_ms.append(elapsed)
            if len(found[0].points) != points:
                raise RuntimeError(f"in-process query_range gave {len(found[0].points)} points, HTTP {points}")
    finally:
        store.close()
    return QueryResult(stored, points, http_ms, inprocess_ms)


# --- report --------------------------------------------------------------------------------------


def report(args: argparse.Namespace, results: list[IngestResult], query: QueryResult | None) -> bool:
    print()
    print(
        f"ingest: {args.samples:,} samples over {args.series:,} series, batches of {args.batch:,} "
        f"(one request at a time, interleaved with the baseline)"
    )
    rows = []
    for r in results:
        for label, t in (("POST /api/v1/samples", r.server), ("Core executemany", r.core)):
            rows.append(
                [
                    r.database,
                    label,
                    f"{t.samples:,}",
                    f"{t.seconds:.2f}",
                    f"{t.rate:,.0f}",
                    f"{t.p50_ms:.1f}",
                    f"{t.p95_ms:.1f}",
                    f"{r.ratio:.2f}" if t is r.server else "",
                ]
            )
    header = ["database", "path", "samples", "seconds", "samples/s", "batch p50 ms", "batch p95 ms", "ratio"]
    table(header, rows, text_columns=2)
    ok = True
    print()
    for r in results:
        met = r.ratio >= INGEST_GOAL
        ok &= met
        print(f"goal {r.database}: server/Core ratio {r.ratio:.2f} >= {INGEST_GOAL}: {verdict(met)}")
    if query is not None:
        print()
        print(
            f"query_range: one SQLite series of {query.stored:,} one-minute samples, 30-day window, step 1h, "
            f"{query.points} points, {len(query.http_ms)} requests"
        )
        table(
            ["path", "median ms", "p95 ms", "min ms"],
            [
                [
                    "GET /api/v1/query_range",
                    f"{statistics.median(query.http_ms):.1f}",
                    f"{percentile(query.http_ms, 95):.1f}",
                    f"{min(query.http_ms):.1f}",
                ],
                [
                    "SampleStore.query_range",
                    f"{statistics.median(query.inprocess_ms):.1f}",
                    f"{percentile(query.inprocess_ms, 95):.1f}",
                    f"{min(query.inprocess_ms):.1f}",
                ],
            ],
        )
        median = statistics.median(query.http_ms)
        met = median < QUERY_GOAL_MS
        ok &= met
        print()
        print(f"goal query_range (HTTP median) {median:.1f} ms < {QUERY_GOAL_MS:.0f} ms: {verdict(met)}")
    return ok


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1_000_000, help="samples to ingest (default 1,000,000)")
    parser.add_argument("--series", type=int, default=10_000, help="distinct series (default 10,000)")
    parser.add_argument("--batch", type=int, default=5_000, help="samples per request / transaction (default 5,000)")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MLMON_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help=f"an existing database to connect to for CREATE/DROP DATABASE (default {DEFAULT_POSTGRES})",
    )
    parser.add_argument("--query-samples", type=int, default=1_000_000, help="samples of the query series")
    parser.add_argument("--query-requests", type=int, default=50, help="timed query_range requests")
    parser.add_argument("--skip-query", action="store_true", help="no query_range benchmark")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (databases, logs)")
    args = parser.parse_args(argv)
    if min(args.samples, args.series, args.batch) <= 0:
        parser.error("--samples, --series and --batch must be positive")
    if args.batch > 10_000:
        parser.error("--batch: the API accepts at most 10,000 samples per request")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_machine_speed("machine before the run")
    workdir = Path(tempfile.mkdtemp(prefix="mlmon-bench-"))
    config = workdir / "mlmon.yaml"
    write_config(config, args.series)
    progress(f"building {args.samples:,} samples and encoding the request bodies (in {workdir})")
    data = make_dataset(args.samples, args.series, args.batch)
    bodies = data.bodies()
    progress(f"{len(bodies)} bodies, {sum(map(len, bodies)) / 1e6:.1f} MB")

    results = [
        bench_database(
            "sqlite",
            f"sqlite:///{workdir / 'serve.db'}",
            f"sqlite:///{workdir / 'core.db'}",
            config,
            workdir,
            bodies,
            data,
        )
    ]
    if not args.skip_postgres:
        with postgres_databases(args.postgres_url, 2) as (server_url, core_url):
            results.append(bench_database("postgresql", server_url, core_url, config, workdir, bodies, data))
    query = None if args.skip_query else bench_query(workdir, config, args.query_samples, args.query_requests)
    ok = report(args, results, query)
    print_machine_speed("machine after the run")
    if args.keep:
        print(f"\nkept {workdir}")
    else:
        for path in sorted(workdir.iterdir()):
            path.unlink()
        workdir.rmdir()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
