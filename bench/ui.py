"""UI benchmark: the overview page and the audit report of 1,000 projects with a month of data.

The data is made through the families' own code paths on a SQLite file:

- stack: each project's lock file read by the real `lockfile` source through the runner, and the
  stack sync (ingest, advisories from the real OSV records in ../shared/data/osv, torch's real
  release history from a PEP 691 index on a local server, reconcile) at five moments a week
  apart, with projects upgrading torch in between (findings opened and fixed: audit history);
- spend: a FOCUS export (real sample rows re-dated, one GPU charge per project and day for the
  month) read by the `focus` source of a finops project through the runner; monthly budgets;
- quality: `accuracy` four times a day and a daily `accuracy_baseline` per project written to the
  store (as a push and a `baseline` source would), model version events;
- alerts: one threshold rule, evaluated once by the alert engine (~5% of projects firing);
- owners (none, one or two), success targets and budgets vary, so every red flag occurs.

Then a real server, `mlmon serve --no-scheduler` on that file. After warm-up requests, REQUESTS
requests alternate between the overview page (`GET /`, an admin token, 100 rows of the 1,000
sorted by health) and the audit report (`GET /api/v1/reports/audit`, JSON, an auditor token):
p50 / p95 / max of each side by side. Goals: overview p95 <= 300 ms, audit report p95 <= 2 s.
Also printed: the scorecard's read model in-process, per family, to show where the time goes.

    .venv/bin/python bench/ui.py                     # 1,000 projects, 100 requests each
    .venv/bin/python bench/ui.py --projects 200 --requests 30 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.support / tests.monitor.spend helpers (real data writers, local servers)

import httpx  # noqa: E402

from bench.support import print_machine_speed  # noqa: E402
from monitor.auth.model import Role  # noqa: E402
from monitor.config.settings import Settings  # noqa: E402
from monitor.core.clock import FrozenClock  # noqa: E402
from monitor.core.types import Event, Sample, SeriesKey, ms_from_datetime  # noqa: E402
from monitor.http import HttpFactory  # noqa: E402
from monitor.runner import SourceRunner  # noqa: E402
from monitor.runtime import Runtime  # noqa: E402
from monitor.services import build_engine, prepare_database  # noqa: E402
from monitor.stack.sync import tick  # noqa: E402
from monitor.store.changes import Change  # noqa: E402

OVERVIEW_GOAL_S = 0.3
AUDIT_GOAL_S = 2.0
TORCH_LINES = ("2.6.0+cu124", "2.7.1", "2.8.0", "2.9.1", "2.10.0")
TEAMS = ("growth", "search", "vision", "speech", "ads", "risk", "ops", "research")
WEEKS = 4


def project_id(index: int) -> str:
    return f"p{index:04d}"


def torch_at(index: int, step: int) -> str:
    """Projects start on an older torch and some upgrade one line a week."""
    start = index % 3
    upgrades = step if index % 4 == 0 else (step // 2 if index % 4 == 1 else 0)
    return TORCH_LINES[min(len(TORCH_LINES) - 1, start + upgrades)]


def write_config(tmp: Path, n: int, index_url: str) -> Path:
    lines = [
        "retention: {raw: 45d, hourly: 400d}",
        "projects:",
        "  - id: finops",
        "    owners: [{name: FinOps, email: finops@example.com}, {name: Ops, slack: '#finops'}]",
        "    sources:",
        f"      - {{name: aws, kind: focus, interval: 1h, params: {{path: '{tmp / 'focus'}', "
        "attribution: [{tag: ml-project}]}}",
    ]
    for i in range(n):
        pid = project_id(i)
        lines += [f"  - id: {pid}", f"    name: Project {i}", f"    team: {TEAMS[i % len(TEAMS)]}"]
        owners = [f"{{name: Owner {i}a, email: o{i}a@example.com}}", f"{{name: Owner {i}b, email: o{i}b@example.com}}"]
        count = 0 if i % 10 == 0 else 1 if i % 10 == 1 else 2
        lines.append(f"    owners: [{', '.join(owners[:count])}]")
        if i % 7:
            lines.append(f"    quality: {{success: {{metric: accuracy, target: 0.9, labels: {{model: m{i}}}}}}}")
        if i % 9:
            lines.append(f"    spend: {{budget: {{amount: {1500 + (i % 5) * 500}}}}}")
        lock = tmp / "locks" / pid / "requirements.txt"
        lines += ["    sources:", f"      - {{name: deps, kind: lockfile, interval: 1h, params: {{path: '{lock}'}}}}"]
    osv = REPO.parent / "shared" / "data" / "osv"
    lines += [
        "rules:",
        "  - {name: accuracy-low, kind: threshold, labels: {severity: critical}, "
        "params: {metric: accuracy, op: '<', value: 0.85}}",
        "stack:",
        f"  advisories: {{path: '{osv}', refresh: 1h}}",
        f"  index: {{url: '{index_url}', packages: [torch], refresh: 1h}}",
    ]
    path = tmp / "mlmon.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_locks(tmp: Path, n: int, step: int) -> None:
    for i in range(n):
        path = tmp / "locks" / project_id(i) / "requirements.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"torch=={torch_at(i, step)}\nnumpy==2.2.6\nrequests==2.32.3\n")


def quality_samples(n: int, start: datetime, now: datetime) -> list[Sample]:
    out: list[Sample] = []
    for i in range(n):
        labels = (("model", f"m{i}"),)
        key, base = SeriesKey(project_id(i), "accuracy", labels), SeriesKey(project_id(i), "accuracy_baseline", labels)
        level = 0.80 if i % 20 == 0 else 0.91 + (i % 6) * 0.01
        moment = start
        while moment <= now:
            ts = ms_from_datetime(moment)
            out.append(Sample(key, ts, level + 0.005 * ((moment.day + i) % 3 - 1)))
            if moment.hour == 0:
                out.append(Sample(base, ts, 0.92))
            moment += timedelta(hours=6)
    return out


def version_events(n: int, start: datetime) -> list[Event]:
    return [
        Event(
            project_id(i),
            ms_from_datetime(start + timedelta(days=10 + i % 15)),
            "model_version",
            f"m{i}",
            "3",
            "4",
            labels={"model": f"m{i}", "alias": "production"},
        )  # fmt: skip
        for i in range(0, n, 3)
    ]


def focus_file(tmp: Path, n: int, start: datetime, now: datetime) -> None:
    from tests.monitor.spend.focus_data import Charge, write_focus

    charges = []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < now:
        charges += [Charge(day + timedelta(hours=1), 40.0 + (i % 50) + day.day % 4, project_id(i)) for i in range(n)]
        day += timedelta(days=1)
    (tmp / "focus").mkdir(exist_ok=True)
    write_focus(tmp / "focus" / "export.csv", charges)


@contextmanager
def package_index() -> Iterator[str]:
    from tests.monitor.stack.support import PackageIndex, torch_releases
    from tests.support.http_server import LocalHttpServer

    with LocalHttpServer() as server:
        PackageIndex(server, {"torch": torch_releases()})
        yield server.url("/simple")


def build(tmp: Path, n: int, now: datetime) -> tuple[Path, str, str]:
    """The data set; returns the configuration file, an admin token and an auditor token."""
    start = now - timedelta(days=WEEKS * 7)
    clock = FrozenClock(start)
    with package_index() as index_url:
        config = write_config(tmp, n, index_url)
        runtime = Runtime.create(Settings(config=config, database_url=f"sqlite:///{tmp / 'mlmon.db'}"), clock=clock)
        prepare_database(runtime)
        runner = SourceRunner(runtime.store, clock, HttpFactory(timeout=30))
        locks = [p for p in runtime.plans if p.kind == "lockfile"]
        for step in range(WEEKS + 1):
            moment = start + timedelta(days=7 * step)
            clock.set(moment)
            write_locks(tmp, n, step)
            began = time.perf_counter()
            failed = [p.id for p in locks if not runner.run(p).ok]
            report = tick(runtime.store, runtime.config, moment, HttpFactory(timeout=30), {})
            if failed or report.reconcile.errors or report.ingest.errors:
                raise SystemExit(
                    f"stack step {step} failed: {failed[:3]} {report.reconcile.errors} {report.ingest.errors}"
                )
            changed = f"+{report.reconcile.opened} -{report.reconcile.resolved} findings"
            print(f"  stack sync {moment:%Y-%m-%d}: {len(locks)} lock files, {changed}, "
                  f"{time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
            runtime.store.changes.record(Change(moment, "bench", "token.create", None, f"weekly-{step}", {}))
    clock.set(now)
    began = time.perf_counter()
    batch = quality_samples(n, start, now)
    for offset in range(0, len(batch), 20_000):
        runtime.store.samples.append(batch[offset : offset + 20_000])
    runtime.store.events.add(version_events(n, start))
    print(f"  quality: {len(batch):,} samples, {time.perf_counter() - began:.1f} s", flush=True)
    began = time.perf_counter()
    focus_file(tmp, n, start, now)
    [aws] = [p for p in runtime.plans if p.kind == "focus"]
    record = runner.run(aws)
    if not record.ok:
        raise SystemExit(f"the focus source failed: {record.error}")
    print(f"  spend: {WEEKS * 7 * n:,} FOCUS rows read by the focus source, {time.perf_counter() - began:.1f} s")
    began = time.perf_counter()
    evaluation = build_engine(runtime).evaluate()
    print(f"  alerts: one evaluation, {time.perf_counter() - began:.1f} s ({evaluation})"[:200], flush=True)
    admin, _ = runtime.tokens.create("bench-admin", Role.ADMIN, (), "bench", now)
    auditor, _ = runtime.tokens.create("bench-auditor", Role.AUDITOR, (), "bench", now)
    profile_scorecard(runtime, now)
    runtime.store.close()
    return config, admin, auditor


def profile_scorecard(runtime: Runtime, now: datetime) -> None:
    """The scorecard's reads in-process, per family: where the overview's time goes."""
    from monitor.views import scorecard as sc

    config, store = runtime.config, runtime.store
    projects = list(config.projects)
    began = time.perf_counter()
    sc.build_scorecards(store, config, now, projects)
    cold = time.perf_counter() - began
    parts: dict[str, float] = {}
    steps = {
        "quality reads": lambda: sc.read_quality(store, projects, True),
        "spend (memoised)": lambda: sc.read_spend(store, config, now),
        "stack reads": lambda: (
            sc.read_stack(store.engine, None, config.stack.sla, now),
            sc.torch_builds(store.engine, None),
        ),
        "alert counts": lambda: sc.alert_cells(store.engine),
    }
    for name, step in steps.items():
        began = time.perf_counter()
        step()
        parts[name] = time.perf_counter() - began
    spend = sc.read_spend(store, config, now)
    began = time.perf_counter()
    for project in projects:
        sc.spend_cell(spend.get(project.id), project, now)
    parts["budgets, forecasts, TCO (not memoised)"] = time.perf_counter() - began
    began = time.perf_counter()
    sc.build_scorecards(store, config, now, projects)
    warm = time.perf_counter() - began
    print(f"  scorecards of {len(projects)} projects in-process: {cold * 1000:.0f} ms cold, {warm * 1000:.0f} ms warm; "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in parts.items()))  # fmt: skip


# --- the server ------------------------------------------------------------------------------------


@contextmanager
def server(tmp: Path, config: Path) -> Iterator[str]:
    from tests.support.peers import free_port, wait_until

    listen = f"127.0.0.1:{free_port()}"
    database_url = f"sqlite:///{tmp / 'mlmon.db'}"
    command = [sys.executable, "-m", "monitor", "serve", "--no-scheduler", "--listen", listen]
    env = {**os.environ, "MLMON_CONFIG": str(config), "MLMON_DATABASE_URL": database_url, "MLMON_LOG_LEVEL": "warning"}
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{listen}"
    try:
        wait_until(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, 120, interval=0.2,
                   what="the server to be ready")  # fmt: skip
        print(f"server: mlmon serve --no-scheduler, pid {proc.pid}", flush=True)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def measure(base: str, admin: str, auditor: str, requests: int) -> dict[str, list[float]]:
    targets = {
        "overview GET /": ("/", admin, "text/html"),
        "audit GET /api/v1/reports/audit": ("/api/v1/reports/audit", auditor, "application/json"),
        "overview, all rows ?per_page=1000": ("/?per_page=1000", admin, "text/html"),
    }
    timings: dict[str, list[float]] = {name: [] for name in targets}
    with httpx.Client(base_url=base, timeout=120) as client:
        for warm in range(3 + requests):
            for name, (path, token, media) in targets.items():
                began = time.perf_counter()
                answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
                spent = time.perf_counter() - began
                if answer.status_code != 200 or media not in answer.headers.get("content-type", ""):
                    raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
                if warm >= 3:
                    timings[name].append(spent)
        check = client.get("/api/v1/reports/audit", headers={"Authorization": f"Bearer {auditor}"}).json()
        print(f"audit report: {check['summary']['projects']} projects, {check['summary']['findings']:,} findings, "
              f"{len(check['changes'])} changes")  # fmt: skip
        page = client.get("/", headers={"Authorization": f"Bearer {admin}"}).text
        print(f"overview page: {len(page):,} bytes, {page.count('<tr data-project=')} rows shown")
    return timings


def report(timings: dict[str, list[float]]) -> bool:
    goals: dict[str, float | None] = {
        "overview GET /": OVERVIEW_GOAL_S,
        "audit GET /api/v1/reports/audit": AUDIT_GOAL_S,
        "overview, all rows ?per_page=1000": None,
    }
    print(f"\n{'request':34} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'goal p95':>9}  verdict")
    ok = True
    for name, values in timings.items():
        p95 = percentile(values, 95)
        goal = goals[name]
        met = goal is None or p95 <= goal
        ok &= met
        verdict = "(figure only)" if goal is None else "met" if met else "MISSED"
        target = f"{goal * 1000:>7.0f}ms" if goal is not None else f"{'-':>9}"
        print(f"{name:34} {len(values):>4} {statistics.median(values) * 1000:>8.0f} {p95 * 1000:>8.0f} "
              f"{max(values) * 1000:>8.0f} {target}  {verdict}")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, server log)")
    args = parser.parse_args()
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise SystemExit("the focus source needs pyarrow: pip install -e '.[dev]'") from None
    tmp = Path(tempfile.mkdtemp(prefix="mlmon-bench-ui-"))
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    try:
        print(f"building {args.projects} projects with {WEEKS * 7} days of data in {tmp}", flush=True)
        began = time.perf_counter()
        config, admin, auditor = build(tmp, args.projects, now)
        print(f"built in {time.perf_counter() - began:.0f} s", flush=True)
        with server(tmp, config) as base:
            timings = measure(base, admin, auditor, args.requests)
        ok = report(timings)
        print_machine_speed()
        (tmp / "timings.json").write_text(json.dumps(timings))
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
