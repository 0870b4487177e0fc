"""Workers draining one queue: 1, 2 and 4 `mlmon worker` processes against the same queued
`http_json` runs, in one run, against a local server answering after 50 ms.

    .venv/bin/python bench/workers.py                       # 10,000 runs per round (the issue's size)
    .venv/bin/python bench/workers.py --runs 2000           # a quicker look

Goals (issue 20): throughput 2 workers / 1 >= 1.8, 4 / 1 >= 3, queue overhead per run <= 5 ms.
The overhead is measured against the same runs made in-process by one `SourceRunner` with the
same number of threads as a worker's concurrency (the peer: no queue at all), side by side:
(worker time - in-process time) x concurrency / runs. Exit status 0 when every goal is met.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import postgres_databases, print_machine_speed, progress, table, verdict
from monitor.store import migrate
from monitor.store.db import make_engine

SOURCES = 200
QUEUE = "bench"


class _Slow(BaseHTTPRequestHandler):
    latency = 0.05
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        time.sleep(self.latency)
        body = b'{"value": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def slow_server(latency: float) -> Iterator[str]:
    _Slow.latency = latency
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/value.json"
    finally:
        httpd.shutdown()
        httpd.server_close()


def write_config(path: Path, url: str) -> None:
    lines = ["projects:"]
    for p in range(SOURCES // 50):
        lines += [f"  - id: b{p}", "    sources:"]
        for s in range(50):
            lines += [
                f"      - {{name: s{s}, kind: http_json, interval: 24h, timeout: 30s, queue: {QUEUE},",
                f"         params: {{url: '{url}', metrics: [{{metric: v, path: $.value}}]}}}}",
            ]
    lines += ["workers:", f"  queues: [{QUEUE}]"]
    path.write_text("\n".join(lines) + "\n")


def source_ids() -> list[str]:
    return [f"b{p}/s{s}" for p in range(SOURCES // 50) for s in range(50)]


def enqueue(database_url: str, runs: int) -> tuple[int, int]:
    """Queue `runs` runs spread over the sources (a `lock` per source, as the leader does, but no
    queueing lock, so one source may have many waiting); the id range of the new jobs."""
    from datetime import UTC, datetime

    import procrastinate
    from procrastinate.jobs import Job

    from monitor.workqueue.names import QUEUE_SCHEMA, TASK, conninfo, lock_of

    app = procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(
            conninfo=conninfo(database_url), kwargs={"options": f"-c search_path={QUEUE_SCHEMA}"}
        )
    )
    ids = source_ids()
    now = datetime.now(UTC).isoformat()
    jobs = [
        Job(
            id=None,
            queue=QUEUE,
            lock=lock_of(ids[i % len(ids)]),
            queueing_lock=None,
            task_name=TASK,
            task_kwargs={"source": ids[i % len(ids)], "due": now},
        )
        for i in range(runs)
    ]
    with app.open():
        made = app.job_manager.batch_defer_jobs(jobs)
    got = [j.id for j in made if j.id is not None]
    return min(got), max(got)


def reset(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE source_runs, source_state, samples, series RESTART IDENTITY CASCADE"))
        conn.execute(text("TRUNCATE mlmon_queue.procrastinate_jobs CASCADE"))
    engine.dispose()


def count_done(database_url: str, first: int, last: int) -> int:
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM mlmon_queue.procrastinate_jobs "
                        "WHERE id BETWEEN :a AND :b AND status NOT IN ('todo', 'doing')"
                    ),
                    {"a": first, "b": last},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def drain_with_workers(database_url: str, config: Path, workers: int, runs: int, concurrency: int, logs: Path) -> float:
    """Seconds for `workers` processes to finish `runs` queued runs (timed from the enqueue)."""
    reset(database_url)
    env = {
        **os.environ,
        "MLMON_DATABASE_URL": database_url,
        "MLMON_CONFIG": str(config),
        "MLMON_LOG_LEVEL": "warning",
    }
    procs = []
    try:
        for i in range(workers):
            with open(logs / f"w{workers}-{i}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "monitor",
                            "worker",
                            "--queues",
                            QUEUE,
                            "--concurrency",
                            str(concurrency),
                            "--name",
                            f"bench-{workers}-{i}",
                        ],
                        env=env,
                        stdout=log,
                        stderr=log,
                    )
                )
        engine = make_engine(database_url, pool_size=1, max_overflow=0)
        # every worker registered and the leader's first round (one run per source) done
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                alive = conn.execute(text("SELECT count(*) FROM mlmon_queue.procrastinate_workers")).scalar_one()
                first = conn.execute(text("SELECT count(*) FROM source_runs")).scalar_one()
            if alive >= workers and first >= SOURCES:
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"{workers} workers did not start within 300 s; see {logs}")
        engine.dispose()
        t0 = time.perf_counter()
        first_id, last_id = enqueue(database_url, runs)
        while count_done(database_url, first_id, last_id) < runs:
            time.sleep(0.2)
        return time.perf_counter() - t0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def in_process(database_url: str, config: Path, runs: int, concurrency: int) -> float:
    """The peer: the same runs made by a SourceRunner in `concurrency` threads, no queue."""
    from monitor.config.settings import Settings
    from monitor.runtime import Runtime
    from monitor.services import Services

    reset(database_url)
    runtime = Runtime.create(Settings(config=config, database_url=database_url))
    runner = Services.build(runtime).runner
    plans = {p.id: p for p in runtime.plans}
    ids = source_ids()
    order = [plans[ids[i % len(ids)]] for i in range(runs)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(runner.run, order))
    seconds = time.perf_counter() - t0
    runtime.store.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2, help="each worker's concurrency (and the peer's threads)")
    parser.add_argument("--latency", type=float, default=0.05, help="the local server's answer delay, seconds")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MLMON_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    print_machine_speed()
    with tempfile.TemporaryDirectory(prefix="mlmon-bench-workers-") as tmp, slow_server(args.latency) as url:
        config = Path(tmp) / "mlmon.yaml"
        write_config(config, url)
        with postgres_databases(args.postgres_url, 1, prefix="mlmon_bench_workers") as (database_url,):
            engine = make_engine(database_url)
            migrate.upgrade(engine)
            with engine.connect() as conn:
                # without autovacuum only mlmon's leader analyzes the jobs table (docs/workers.md)
                progress(f"server autovacuum: {conn.execute(text('SHOW autovacuum')).scalar_one()}")
            engine.dispose()
            seconds: dict[int, float] = {}
            progress(f"in-process peer: {args.runs} runs in {args.concurrency} threads")
            direct = in_process(database_url, config, args.runs, args.concurrency)
            for workers in (1, 2, 4):
                progress(f"{workers} worker(s), concurrency {args.concurrency}: draining {args.runs} runs")
                seconds[workers] = drain_with_workers(
                    database_url, config, workers, args.runs, args.concurrency, Path(tmp)
                )
    rate = {w: args.runs / s for w, s in seconds.items()}
    overhead_ms = (seconds[1] - direct) * args.concurrency / args.runs * 1000
    goals = [
        ("2 workers / 1", f"{rate[2] / rate[1]:.2f}x", ">= 1.8x", rate[2] / rate[1] >= 1.8),
        ("4 workers / 1", f"{rate[4] / rate[1]:.2f}x", ">= 3x", rate[4] / rate[1] >= 3.0),
        ("queue overhead per run", f"{overhead_ms:.2f} ms", "<= 5 ms", overhead_ms <= 5.0),
    ]
    table(
        ("drained by", "seconds", "runs/s"),
        [("in-process peer", f"{direct:.1f}", f"{args.runs / direct:.1f}")]
        + [(f"{w} worker(s)", f"{s:.1f}", f"{rate[w]:.1f}") for w, s in seconds.items()],
    )
    table(("figure", "measured", "goal", "verdict"), [(a, b, c, verdict(d)) for a, b, c, d in goals])
    return 0 if all(g[3] for g in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
