"""Alert engine benchmark: one full evaluation cycle at scale, and push -> webhook end to end.

(a) Cycle: 10,000 projects x 5 rules (threshold with hysteresis, threshold on a 1h average,
    absent, source_down, threshold with `for`), every project with the series and source the
    rules read, about 5% of projects in alert. `AlertEngine.evaluate()` is timed in-process on a
    SQLite file and on a fresh PostgreSQL database: the first cycle (which creates the alert
    instances) and the median of several steady-state cycles. Goal: <= 1 s per cycle.

(b) End to end: a real `mlmon serve` (fresh SQLite file) with one threshold rule (`for: 0s`) and a
    webhook receiver pointing at a sink in this process (`group_wait: 0s`, `group_by: ['...']`,
    so every trial's alert is its own group). Each trial pushes one sample of a new series that
    crosses the threshold and measures from just before the POST to the sink receiving the
    notification naming that series. Goal: p99 <= 1 s. Printed beside it: the delay Prometheus +
    Alertmanager give with their default timers (../shared/guide/alerting.md sections 2, 3, 5).

Figures are printed, never asserted: the machines are noisy.

    .venv/bin/python bench/alerts.py                              # everything, full size
    .venv/bin/python bench/alerts.py --projects 2000 --skip-postgres --trials 50
    .venv/bin/python bench/alerts.py --skip-e2e --profile /tmp/cycle.prof   # + cProfile of a steady cycle
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    # Run as `python bench/alerts.py`: bench/ heads sys.path, and this file would shadow the
    # `alerts` package it benchmarks; the repository root makes `bench` importable instead.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import cProfile
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from alerts.engine import AlertEngine
from alerts.kinds import REGISTRY as RULE_KINDS
from bench.support import (
    admin_token,
    mlmon_serve,
    percentile,
    postgres_databases,
    print_machine_speed,
    progress,
    table,
)
from monitor.config.loader import load_config
from monitor.config.models import MlmonConfig
from monitor.core.clock import SystemClock
from monitor.core.types import Sample, SeriesKey, ms_from_datetime
from monitor.runtime import config_checks
from monitor.store import migrate
from monitor.store.db import write_tx
from monitor.store.schema import alert_instances
from monitor.store.sources import RunRecord
from monitor.store.store import Store

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
CYCLE_GOAL_S = 1.0
E2E_GOAL_S = 1.0
TIERS = ("gold", "silver", "bronze")
# One in ALERT_EVERY projects is in alert (5%), on one of the five rules in turn.
ALERT_EVERY = 20

# Prometheus + Alertmanager defaults (guide section 2: evaluation_interval 1m; scrape_interval 1m
# is Prometheus's global default; section 3: group_wait 30s) and the observed Alertmanager hop
# (section 5: POST -> webhook 0.013 s with group_wait 0s).
PROM_SCRAPE_S = 60.0
PROM_EVAL_S = 60.0
AM_GROUP_WAIT_S = 30.0
AM_HOP_S = 0.013


# --- (a) the data ----------------------------------------------------------------------------------


RULES_YAML = """\
rules:
  - name: accuracy-low
    kind: threshold
    project_selector: ['tier=~"gold|silver|bronze"']
    labels: {severity: critical}
    annotations:
      summary: "{{ project.name }}: accuracy {{ value | round(3) }} below {{ params.value }}"
    params: {metric: accuracy, op: "<", value: 0.90, clear: 0.92}
  - name: gpu-spend-high
    kind: threshold
    labels: {severity: warning}
    params: {metric: gpu_spend_usd, op: ">", value: 50, over: 1h, agg: avg}
  - name: accuracy-absent
    kind: absent
    labels: {severity: warning}
    params: {metric: accuracy, after: 2h}
  - name: source-down
    kind: source_down
    labels: {severity: warning}
    params: {failures: 3}
  - name: latency-high
    kind: threshold
    for: 5m
    labels: {severity: warning}
    params: {metric: latency_seconds, match: ['quantile="0.99"'], op: ">", value: 2.0}
"""


def project_id(index: int) -> str:
    return f"p{index:05d}"


def alert_kind(index: int) -> int | None:
    """Which rule project `index` is in alert on (0..4, in RULES_YAML order), or None."""
    return (index // ALERT_EVERY) % 5 if index % ALERT_EVERY == 0 else None


def write_cycle_config(path: Path, n_projects: int) -> None:
    lines = ["retention: {raw: 30d, hourly: 400d}", "projects:"]
    for i in range(n_projects):
        pid = project_id(i)
        lines.append(
            f"  - {{id: {pid}, name: Project {i}, team: team{i % 50}, labels: {{tier: {TIERS[i % 3]}}}, "
            f"sources: [{{name: eval, kind: push, interval: 5m}}]}}"
        )
    path.write_text("\n".join(lines) + "\n" + RULES_YAML)


def project_samples(index: int, now_ms: int, history_hours: int) -> list[Sample]:
    """The series the rules read: accuracy every 15 min, GPU spend every 5 min and p99 latency
    every 15 min over the last hour, plus hourly points of each for `history_hours` before."""
    pid = project_id(index)
    kind = alert_kind(index)
    acc = SeriesKey(pid, "accuracy", (("model", "main"),))
    spend = SeriesKey(pid, "gpu_spend_usd", (("gpu", "a100"),))
    lat = SeriesKey(pid, "latency_seconds", (("quantile", "0.99"),))
    base = now_ms // MINUTE_MS * MINUTE_MS
    jitter = (index * 7919) % 1000 / 1000  # deterministic per project, 0..1
    out: list[Sample] = []
    for h in range(history_hours, 0, -1):
        ts = base - HOUR_MS - h * HOUR_MS
        out.append(Sample(acc, ts, 0.94 + 0.02 * jitter))
        out.append(Sample(spend, ts, 20 + 10 * jitter))
        out.append(Sample(lat, ts, 0.8 + 0.4 * jitter))
    # 0.91 is in accuracy-low's hysteresis band (fires below 0.90, clears at 0.92): no alert, no write.
    accuracy = 0.91 if index % 50 == 7 else 0.85 if kind == 0 else 0.94 + 0.02 * jitter
    if kind == 2:  # the evaluation job went silent 3 hours ago
        out.append(Sample(acc, base - 3 * HOUR_MS, accuracy))
    else:
        out += [Sample(acc, base - m * MINUTE_MS, accuracy) for m in (45, 30, 15, 1)]
    spend_value = 80.0 if kind == 1 else 20 + 10 * jitter
    out += [Sample(spend, base - m * MINUTE_MS, spend_value + (m % 3)) for m in range(55, -1, -5)]
    latency = 3.5 if kind == 4 else 0.8 + 0.4 * jitter
    out += [Sample(lat, base - m * MINUTE_MS, latency) for m in (45, 30, 15, 1)]
    return out


def load_cycle_data(store: Store, n_projects: int, history_hours: int, now: datetime) -> int:
    now_ms = ms_from_datetime(now)
    batch: list[Sample] = []
    written = 0
    for i in range(n_projects):
        batch += project_samples(i, now_ms, history_hours)
        if len(batch) >= 20_000:
            written += store.samples.append(batch)
            batch = []
    written += store.samples.append(batch)
    with write_tx(store.engine) as conn:
        for i in range(n_projects):
            down = alert_kind(i) == 3
            runs = 3 if down else 2
            for r in range(runs, 0, -1):
                store.sources.record(
                    RunRecord(
                        project_id(i),
                        "eval",
                        "push",
                        now - timedelta(minutes=5 * r),
                        0.01,
                        "failed" if down else "ok",
                        "no sample of accuracy has been pushed" if down else None,
                    ),
                    conn=conn,
                )
    return written


# --- (a) the cycle -----------------------------------------------------------------------------------


@dataclass
class CycleResult:
    database: str
    samples: int
    load_seconds: float
    first: float
    steady: list[float]
    reloaded: float
    touched: list[float]
    instances: int
    firing: int
    pending: int
    changed_first: int
    changed_steady: int
    failures: int

    @property
    def steady_median(self) -> float:
        return statistics.median(self.steady)


def bench_cycle(
    kind: str,
    url: str,
    config: MlmonConfig,
    n_projects: int,
    history_hours: int,
    steady: int,
    profile: Path | None,
) -> CycleResult:
    store = Store.open(url)
    try:
        migrate.upgrade(store.engine)
        progress(f"{kind}: loading {n_projects:,} projects' samples and source runs")
        t0 = time.perf_counter()
        written = load_cycle_data(store, n_projects, history_hours, datetime.now(UTC))
        if kind == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            with store.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.exec_driver_sql("ANALYZE")
        load_seconds = time.perf_counter() - t0
        engine = AlertEngine(store, SystemClock(), RULE_KINDS, lambda: config)
        progress(f"{kind}: first cycle, then {steady} steady cycles")
        first = engine.evaluate()
        steady_reports = [engine.evaluate() for _ in range(steady)]
        # What a restart or a configuration reload costs: a new engine works out each rule's
        # projects and the alerts' fingerprints again, then runs a steady cycle.
        reloaded = AlertEngine(store, SystemClock(), RULE_KINDS, lambda: config).evaluate()
        # What a push to one project triggers: the rules reading its metric, for that project only.
        touched = [
            engine.evaluate({(project_id(i), "accuracy"), (project_id(i), "gpu_spend_usd")}).seconds
            for i in range(0, n_projects, max(1, n_projects // 21))
        ]
        if profile is not None:  # one more cycle, under cProfile and not counted
            profiler = cProfile.Profile()
            profiler.runcall(engine.evaluate)
            out = profile.with_name(f"{profile.stem}-{kind}{profile.suffix}")
            profiler.dump_stats(out)
            progress(f"{kind}: cProfile of one more steady cycle in {out}")
        with store.engine.connect() as conn:
            states: dict[str, int] = dict(
                conn.execute(select(alert_instances.c.state, func.count()).group_by(alert_instances.c.state)).all()
            )
        return CycleResult(
            kind,
            written,
            load_seconds,
            first.seconds,
            [r.seconds for r in steady_reports],
            reloaded.seconds,
            touched,
            first.instances,
            states.get("firing", 0),
            states.get("pending", 0),
            first.changed,
            int(statistics.median(r.changed for r in steady_reports)),
            len(first.failures) + sum(len(r.failures) for r in steady_reports),
        )
    finally:
        store.close()


# --- (b) end to end --------------------------------------------------------------------------------


class Sink:
    """A webhook receiver in a thread: when each trial's firing alert first arrives."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.requests = 0
        self._cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                at = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                sink.record(at, json.loads(body))

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, name="sink", daemon=True)

    def record(self, at: float, body: dict[str, Any]) -> None:
        with self._cond:
            self.requests += 1
            for alert in body.get("alerts", []):
                trial = alert.get("labels", {}).get("trial")
                if alert.get("status") == "firing" and trial is not None and trial not in self.arrived:
                    self.arrived[trial] = at
            self._cond.notify_all()

    def wait_for(self, trial: str, timeout: float) -> float | None:
        with self._cond:
            self._cond.wait_for(lambda: trial in self.arrived, timeout)
            return self.arrived.get(trial)

    def __enter__(self) -> Sink:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_e2e_config(path: Path, sink_url: str, group_interval: str) -> None:
    path.write_text(
        f"""\
projects:
  - {{id: e2e, name: End to end}}
rules:
  - name: e2e-high
    kind: threshold
    for: 0s
    labels: {{severity: critical}}
    params: {{metric: e2e_value, op: ">", value: 0.5}}
receivers:
  - name: sink
    webhook: {{url: "{sink_url}"}}
route:
  receiver: sink
  group_by: ['...']
  group_wait: 0s
  group_interval: {group_interval}
  repeat_interval: 1h
"""
    )


@dataclass
class E2EResult:
    delays: list[float] = field(default_factory=list)
    post_seconds: list[float] = field(default_factory=list)
    lost: int = 0
    warmup: float = 0.0
    requests: int = 0


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def push(client: httpx.Client, trial: str, value: float) -> None:
    body = {"samples": [{"project": "e2e", "metric": "e2e_value", "labels": {"trial": trial}, "value": value}]}
    response = client.post("/api/v1/samples", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"POST /api/v1/samples answered {response.status_code}: {response.text[:500]}")


def bench_e2e(workdir: Path, trials: int, timeout: float, group_interval: str) -> E2EResult:
    result = E2EResult()
    with Sink() as sink:
        config = workdir / "e2e.yaml"
        write_e2e_config(config, sink.url, group_interval)
        url = f"sqlite:///{workdir / 'e2e.db'}"
        progress(f"end to end: mlmon serve on {url}, {trials} trials")
        with (
            mlmon_serve(url, config, workdir / "serve-e2e.log") as base,
            # entered after the server is ready, so the schema the token is stored in exists
            httpx.Client(base_url=base, timeout=30, headers=_bearer(admin_token(url, config))) as client,
        ):
            # Warm-up, not counted: the scheduler's leader election and the alert loops must be
            # running before the first timed trial; the first notification proves they are.
            t0 = time.perf_counter()
            push(client, "warmup", 1.0)
            arrived = sink.wait_for("warmup", 60)
            if arrived is None:
                raise RuntimeError("the warm-up notification never reached the sink (see serve-e2e.log)")
            result.warmup = arrived - t0
            for n in range(trials):
                trial = f"t{n:04d}"
                time.sleep(0.05)  # let the previous trial's delivery finish its bookkeeping
                t0 = time.perf_counter()
                push(client, trial, 1.0)
                posted = time.perf_counter()
                arrived = sink.wait_for(trial, timeout)
                result.post_seconds.append(posted - t0)
                if arrived is None:
                    result.lost += 1
                    progress(f"trial {trial}: no notification within {timeout:.0f}s")
                else:
                    result.delays.append(arrived - t0)
        result.requests = sink.requests
    return result


# --- report --------------------------------------------------------------------------------------


def report_cycles(args: argparse.Namespace, results: list[CycleResult]) -> None:
    print()
    print(
        f"(a) evaluation cycle: {args.projects:,} projects x 5 rules, {100 // ALERT_EVERY}% of projects in alert, "
        f"{args.history_hours}h of hourly history + the last hour per series; {args.steady} steady cycles"
    )
    rows = [
        [
            r.database,
            f"{r.samples:,}",
            f"{r.load_seconds:.1f}",
            f"{r.first:.3f}",
            f"{r.steady_median:.3f}",
            f"{min(r.steady):.3f}",
            f"{max(r.steady):.3f}",
            f"{r.reloaded:.3f}",
            f"{statistics.median(r.touched) * 1000:.1f}",
            f"{r.instances:,}",
            f"{r.firing:,}/{r.pending:,}",
            f"{r.changed_first:,}",
            f"{r.changed_steady:,}",
            str(r.failures),
        ]
        for r in results
    ]
    header = [
        "database",
        "samples",
        "load s",
        "first s",
        "steady p50 s",
        "min s",
        "max s",
        "new engine s",
        "1 project ms",
        "verdicts",
        "firing/pending",
        "written 1st",
        "written/cycle",
        "failures",
    ]
    table(header, rows)
    print(
        "first: the cycle that creates the alerts; steady: median of the cycles after it; new engine: a new\n"
        "AlertEngine on the same store (what a restart or a config reload costs: per-config setup + a cycle);\n"
        "1 project: median evaluation after a push to one project (its rules, that project's series only)"
    )
    print()
    for r in results:
        print(
            f"goal {r.database}: cycle <= {CYCLE_GOAL_S:.0f} s: steady {r.steady_median:.3f} s "
            f"({r.steady_median / CYCLE_GOAL_S:.2f} of it), first {r.first:.3f} s, new engine {r.reloaded:.3f} s: "
            f"{'MET' if r.steady_median <= CYCLE_GOAL_S else 'NOT MET'} (steady)"
        )


def report_e2e(args: argparse.Namespace, r: E2EResult) -> None:
    print()
    print(
        f"(b) end to end: POST /api/v1/samples -> webhook sink, `mlmon serve` on SQLite, for: 0s, group_wait: 0s, "
        f"{len(r.delays)} of {args.trials} trials delivered ({r.lost} lost), warm-up {r.warmup:.3f} s"
    )
    if not r.delays:
        return
    ms = [d * 1000 for d in r.delays]
    post = [d * 1000 for d in r.post_seconds]
    table(
        ["measure", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"],
        [
            [
                "push -> sink",
                f"{percentile(ms, 50):.1f}",
                f"{percentile(ms, 95):.1f}",
                f"{percentile(ms, 99):.1f}",
                f"{max(ms):.1f}",
                f"{statistics.fmean(ms):.1f}",
            ],
            [
                "  of which POST (ingest + evaluate)",
                f"{percentile(post, 50):.1f}",
                f"{percentile(post, 95):.1f}",
                f"{percentile(post, 99):.1f}",
                f"{max(post):.1f}",
                f"{statistics.fmean(post):.1f}",
            ],
        ],
    )
    blocks = [r.delays[i : i + 50] for i in range(0, len(r.delays), 50)]
    trend = ", ".join(
        f"{i * 50 + 1}-{i * 50 + len(b)}: {percentile(b, 50) * 1000:.0f}/{percentile(b, 99) * 1000:.0f}"
        for i, b in enumerate(blocks)
    )
    print(f"push -> sink p50/p99 ms by trials (each trial leaves one more firing alert, in its own group): {trend}")
    p99 = percentile(r.delays, 99)
    # A sample lands at a uniformly random moment: the next scrape is U(0, scrape) away, the next
    # rule evaluation after that U(0, eval) away; a new group then waits group_wait.
    mean = PROM_SCRAPE_S / 2 + PROM_EVAL_S / 2 + AM_GROUP_WAIT_S + AM_HOP_S
    worst = PROM_SCRAPE_S + PROM_EVAL_S + AM_GROUP_WAIT_S + AM_HOP_S
    best = AM_GROUP_WAIT_S + AM_HOP_S
    print()
    print(
        "Prometheus + Alertmanager, default timers (scrape_interval 1m, evaluation_interval 1m, group_wait 30s; "
        "AM POST -> webhook 0.013 s observed, guide s5):"
    )
    table(
        ["P+AM delay", "formula", "seconds", "x mlmon p99"],
        [
            ["expected", "scrape/2 + eval/2 + group_wait + hop", f"{mean:.1f}", f"{mean / p99:,.0f}"],
            ["worst", "scrape + eval + group_wait + hop", f"{worst:.1f}", f"{worst / p99:,.0f}"],
            ["best", "group_wait + hop", f"{best:.1f}", f"{best / p99:,.0f}"],
        ],
    )
    print()
    verdict = "MET" if p99 <= E2E_GOAL_S else "NOT MET"
    print(f"goal end to end: p99 {p99 * 1000:.1f} ms <= {E2E_GOAL_S * 1000:.0f} ms: {verdict}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=10_000, help="projects for the cycle (default 10,000)")
    parser.add_argument("--history-hours", type=int, default=24, help="hourly history per series (default 24)")
    parser.add_argument("--steady", type=int, default=7, help="steady-state cycles timed (default 7)")
    parser.add_argument("--trials", type=int, default=200, help="end-to-end trials (default 200)")
    parser.add_argument("--trial-timeout", type=float, default=15.0, help="seconds a trial may wait (default 15)")
    parser.add_argument("--group-interval", default="1s", help="the e2e route's group_interval (default 1s)")
    parser.add_argument("--skip-postgres", action="store_true", help="cycle on SQLite only")
    parser.add_argument("--skip-cycle", action="store_true", help="no cycle benchmark")
    parser.add_argument("--skip-e2e", action="store_true", help="no end-to-end benchmark")
    parser.add_argument("--profile", type=Path, help="cProfile one more steady cycle into <stem>-<db><suffix>")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MLMON_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help=f"an existing database to connect to for CREATE/DROP DATABASE (default {DEFAULT_POSTGRES})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (databases, logs)")
    args = parser.parse_args(argv)
    if min(args.projects, args.steady, args.trials) <= 0 or args.history_hours < 0:
        parser.error("--projects, --steady and --trials must be positive, --history-hours not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_machine_speed("machine before the run")
    workdir = Path(tempfile.mkdtemp(prefix="mlmon-bench-alerts-"))
    cycles: list[CycleResult] = []
    e2e: E2EResult | None = None
    try:
        if not args.skip_cycle:
            config_path = workdir / "cycle.yaml"
            write_cycle_config(config_path, args.projects)
            progress(f"loading the configuration of {args.projects:,} projects (in {workdir})")
            config = load_config(config_path, config_checks())
            run = (args.projects, args.history_hours, args.steady, args.profile)
            cycles.append(bench_cycle("sqlite", f"sqlite:///{workdir / 'cycle.db'}", config, *run))
            if not args.skip_postgres:
                with postgres_databases(args.postgres_url, 1, "mlmon_bench_alerts") as (url,):
                    cycles.append(bench_cycle("postgresql", url, config, *run))
        if not args.skip_e2e:
            e2e = bench_e2e(workdir, args.trials, args.trial_timeout, args.group_interval)
    finally:
        if cycles:
            report_cycles(args, cycles)
        if e2e is not None:
            report_e2e(args, e2e)
        print_machine_speed("machine after the run")
        if args.keep:
            print(f"\nkept {workdir}")
        else:
            for path in sorted(workdir.iterdir()):
                path.unlink()
            workdir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
