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

- one more project, `big`, whose lock file (torch 2.5.1 with torchvision, torchaudio and triton,
  old transformers, pillow and numpy, and synthetic packages whose advisories are added to the real
  OSV records) has at least 300 open findings and a remediation plan computed by the stack sync
  against a PEP 691 index with torch's real release history and the companions' metadata.

Then a real server, `mlmon serve --no-scheduler` on that file. After warm-up requests, REQUESTS
requests alternate between the overview page (`GET /`, an admin token, 100 rows of the 1,000
sorted by health), the audit report (`GET /api/v1/reports/audit`, JSON, an auditor token) and the
project page of `big` (300 findings and its plan): p50 / p95 / max of each side by side. Goals:
overview p95 <= 300 ms, audit report p95 <= 2 s, project page with 300 findings and its plan p95
<= 300 ms. Also printed: the plan's own computation for `big`, cold (index read) and from the
store's cache, against the page's time.
Also printed: the scorecard's read model in-process, per family, to show where the time goes.

    .venv/bin/python bench/ui.py                     # 1,000 projects, 100 requests each
    .venv/bin/python bench/ui.py --projects 200 --requests 30 --keep
    .venv/bin/python bench/ui.py --baseline-tree ../main  # main's overview timed in the same run
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
from contextlib import ExitStack, contextmanager
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
PROJECT_PAGE_GOAL_S = 0.3
BIG_FINDINGS = 300
BIG_LOCK = {
    "torch": "2.5.1", "torchvision": "0.20.1", "torchaudio": "2.5.1", "triton": "3.1.0",
    "transformers": "4.30.0", "pillow": "9.0.0", "numpy": "1.21.0",
}  # fmt: skip
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
    big_lock = tmp / "locks" / "big" / "requirements.txt"
    lines += [
        "  - id: big",
        "    name: Big project (300 findings)",
        "    owners: [{name: Big, email: big@example.com}]",
        "    sources:",
        f"      - {{name: deps, kind: lockfile, interval: 1h, params: {{path: '{big_lock}', "
        "environment: {python_version: '3.11', sys_platform: linux, platform_machine: x86_64}}}",
    ]
    osv = tmp / "osv"
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


def write_locks(tmp: Path, n: int, step: int, synthetic: int) -> None:
    for i in range(n):
        path = tmp / "locks" / project_id(i) / "requirements.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"torch=={torch_at(i, step)}\nnumpy==2.2.6\nrequests==2.32.3\n")
    big = tmp / "locks" / "big" / "requirements.txt"
    big.parent.mkdir(parents=True, exist_ok=True)
    pins = {**BIG_LOCK, **{synthetic_name(k): "1.0.0" for k in range(synthetic)}}
    big.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()))


def synthetic_name(k: int) -> str:
    return f"benchpkg-{k:03d}"


SYNTHETIC_RELEASES = {v: {"upload_time": f"2025-0{i + 1}-01T00:00:00Z", "requires_python": ">=3.9", "yanked": False}
                      for i, v in enumerate(("1.0.0", "1.1.0", "1.2.0", "1.3.0", "2.0.0"))}  # fmt: skip


def write_advisories(tmp: Path, big_real: int) -> int:
    """The real OSV records, plus two synthetic records per synthetic package (one fixed in 1.2.0,
    one in 2.0.0 with a regression range) so `big` reaches BIG_FINDINGS; returns how many packages."""
    real = REPO.parent / "shared" / "data" / "osv"
    shutil.copytree(real / "PyPI", tmp / "osv" / "PyPI", dirs_exist_ok=True)
    count = max(0, (BIG_FINDINGS - big_real + 1) // 2)
    for k in range(count):
        name = synthetic_name(k)
        folder = tmp / "osv" / "PyPI" / name
        folder.mkdir(parents=True, exist_ok=True)
        for suffix, events, vector in (
            ("A", [{"introduced": "0"}, {"fixed": "1.2.0"}], "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            ("B", [{"introduced": "0"}, {"fixed": "1.1.0"}, {"introduced": "1.3.0"}, {"fixed": "2.0.0"}],
             "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N"),
        ):  # fmt: skip
            ident = f"BENCH-{k:03d}-{suffix}"
            doc = {
                "schema_version": "1.6.0", "id": ident, "modified": "2025-06-01T00:00:00Z",
                "published": "2025-05-01T00:00:00Z", "summary": f"synthetic advisory {ident}",
                "severity": [{"type": "CVSS_V3", "score": vector}],
                "affected": [{"package": {"ecosystem": "PyPI", "name": name},
                              "ranges": [{"type": "ECOSYSTEM", "events": events}]}],
            }  # fmt: skip
            (folder / f"{ident}.json").write_text(json.dumps(doc))
    return count


def big_real_findings() -> int:
    """Findings of `big`'s real packages under the real records (to size the synthetic part)."""
    from monitor.stack.advisories.index import AdvisoryIndex
    from monitor.stack.advisories.model import parse_advisory
    from tests.monitor.stack.support import osv_documents

    index = AdvisoryIndex([parse_advisory(d) for d in osv_documents()])
    return sum(len(index.match(name, version)) for name, version in BIG_LOCK.items())


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
def package_index(synthetic: int) -> Iterator[str]:
    """torch's real release history with its companions' metadata (the plan tests' index), and the
    synthetic packages' releases."""
    from tests.monitor.stack.plan_index import PlanIndex
    from tests.monitor.stack.support import PackageIndex
    from tests.support.http_server import LocalHttpServer

    with LocalHttpServer() as server:
        PlanIndex(server)
        PackageIndex(server, {synthetic_name(k): SYNTHETIC_RELEASES for k in range(synthetic)})
        yield server.url("/simple")


def build(tmp: Path, n: int, now: datetime) -> tuple[Path, str, str]:
    """The data set; returns the configuration file, an admin token and an auditor token."""
    start = now - timedelta(days=WEEKS * 7)
    clock = FrozenClock(start)
    synthetic = write_advisories(tmp, big_real_findings())
    with package_index(synthetic) as index_url:
        config = write_config(tmp, n, index_url)
        runtime = Runtime.create(Settings(config=config, database_url=f"sqlite:///{tmp / 'mlmon.db'}"), clock=clock)
        prepare_database(runtime)
        runner = SourceRunner(runtime.store, clock, HttpFactory(timeout=30))
        locks = [p for p in runtime.plans if p.kind == "lockfile"]
        for step in range(WEEKS + 1):
            moment = start + timedelta(days=7 * step)
            clock.set(moment)
            write_locks(tmp, n, step, synthetic)
            began = time.perf_counter()
            failed = [p.id for p in locks if not runner.run(p).ok]
            report = tick(runtime.store, runtime.config, moment, HttpFactory(timeout=30), {})
            if failed or report.reconcile.errors or report.ingest.errors:
                raise SystemExit(
                    f"stack step {step} failed: {failed[:3]} {report.reconcile.errors} {report.ingest.errors}"
                )
            changed = f"+{report.reconcile.opened} -{report.reconcile.resolved} findings"
            if report.plans is not None:
                changed += (
                    f", plans {report.plans.computed} computed / {report.plans.kept} kept in "
                    f"{report.plans.seconds:.1f} s"
                )
            print(f"  stack sync {moment:%Y-%m-%d}: {len(locks)} lock files, {changed}, "
                  f"{time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
            runtime.store.changes.record(Change(moment, "bench", "token.create", None, f"weekly-{step}", {}))
        profile_plan(runtime, start + timedelta(days=7 * WEEKS), index_url)
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


def profile_plan(runtime: Runtime, now: datetime, index_url: str) -> None:
    """`big`'s plan computed in-process: cold (reading the index) and from the store's cache."""
    from monitor.stack.findings import find
    from monitor.stack.inventory.model import Inventory, merge
    from monitor.stack.plan.index_client import IndexClient, MemoryCache
    from monitor.stack.plan.inputs import plan_for
    from monitor.stack.plan.store import PlanStore, StoreIndexCache
    from monitor.stack.store import StackStore
    from monitor.stack.sync import advisory_index

    store = runtime.store
    stack = StackStore(store.engine)
    index = advisory_index(stack)
    assert index is not None
    docs = stack.inventory_documents("big")
    merged = merge("repo", "big", [Inventory.from_doc(d) for d in docs.values()])
    findings = find(merged, index, project="big")
    platform = {"sys_platform": "linux", "platform_machine": "x86_64"}
    with HttpFactory(timeout=30).client() as http:
        began = time.perf_counter()
        cold = IndexClient(http, index_url, MemoryCache(), now)
        plan_for(merged, findings, index, cold, index_url=index_url, now=now, platform=platform)
        cold_s = time.perf_counter() - began
    began = time.perf_counter()
    cached = IndexClient(None, index_url, StoreIndexCache(store.engine), now)
    plan = plan_for(merged, findings, index, cached, index_url=index_url, now=now, platform=platform)
    cached_s = time.perf_counter() - began
    stored = PlanStore(store.engine).plans(["big"]).get("big")
    torch = plan.for_package("torch")
    print(f"  plan of big: {len(findings)} findings, {len(plan.packages)} packages to upgrade "
          f"(torch -> {torch.target if torch else None}); computed cold (index over HTTP) in {cold_s * 1000:.0f} ms "
          f"({cold.requests} requests), from the store's cache in {cached_s * 1000:.0f} ms; "
          f"stored by the sync: {'yes' if stored is not None else 'NO'}", flush=True)  # fmt: skip
    if len(findings) < BIG_FINDINGS or stored is None:
        raise SystemExit(
            f"big has {len(findings)} findings (wanted {BIG_FINDINGS}) / stored plan: {stored is not None}"
        )


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
def server(tmp: Path, config: Path, tree: Path = REPO, name: str = "server") -> Iterator[str]:
    """`mlmon serve --no-scheduler` of the source tree `tree` (this one, or a checkout of another
    revision to compare with) on the benchmark's database."""
    from tests.support.peers import free_port, wait_until

    listen = f"127.0.0.1:{free_port()}"
    database_url = f"sqlite:///{tmp / 'mlmon.db'}"
    command = [sys.executable, "-m", "monitor", "serve", "--no-scheduler", "--listen", listen]
    env = {**os.environ, "MLMON_CONFIG": str(config), "MLMON_DATABASE_URL": database_url, "MLMON_LOG_LEVEL": "warning",
           "PYTHONPATH": str(tree)}  # fmt: skip
    log = (tmp / f"{name}.log").open("wb")
    proc = subprocess.Popen(command, env=env, cwd=tree, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{listen}"
    try:
        wait_until(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, 120, interval=0.2,
                   what="the server to be ready")  # fmt: skip
        print(f"{name}: mlmon serve --no-scheduler of {tree}, pid {proc.pid}", flush=True)
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


BASELINE_OVERVIEW = "baseline tree: overview GET /"


def measure(base: str, admin: str, auditor: str, requests: int, baseline: str | None = None) -> dict[str, list[float]]:
    """Each round asks every target once (and the baseline tree's overview right after this
    tree's, so both see the same machine load)."""
    targets = {
        "overview GET /": (base, "/", admin, "text/html"),
        "audit GET /api/v1/reports/audit": (base, "/api/v1/reports/audit", auditor, "application/json"),
        "overview, all rows ?per_page=1000": (base, "/?per_page=1000", admin, "text/html"),
        "project page GET /projects/big": (base, "/projects/big", admin, "text/html"),
    }
    if baseline is not None:
        targets = {"overview GET /": targets["overview GET /"], BASELINE_OVERVIEW: (baseline, "/", admin, "text/html"),
                   **{k: v for k, v in targets.items() if k != "overview GET /"}}  # fmt: skip
    timings: dict[str, list[float]] = {name: [] for name in targets}
    with httpx.Client(timeout=120) as client:
        for warm in range(3 + requests):
            for name, (origin, path, token, media) in targets.items():
                began = time.perf_counter()
                answer = client.get(origin + path, headers={"Authorization": f"Bearer {token}"})
                spent = time.perf_counter() - began
                if answer.status_code != 200 or media not in answer.headers.get("content-type", ""):
                    raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
                if warm >= 3:
                    timings[name].append(spent)
        check = client.get(base + "/api/v1/reports/audit", headers={"Authorization": f"Bearer {auditor}"}).json()
        print(f"audit report: {check['summary']['projects']} projects, {check['summary']['findings']:,} findings, "
              f"{len(check['changes'])} changes")  # fmt: skip
        page = client.get(base + "/", headers={"Authorization": f"Bearer {admin}"}).text
        header = "present" if 'id="fleet"' in page else "ABSENT"
        sparks = page.count('class="spark ')
        print(f"overview page: {len(page):,} bytes, {page.count('<tr data-project=')} rows shown, "
              f"fleet header {header}, {sparks} sparklines")  # fmt: skip
        big = client.get(base + "/projects/big", headers={"Authorization": f"Bearer {admin}"}).text
        print(f"project page of big: {len(big):,} bytes, {big.count('<tr data-finding=')} finding rows, "
              f"{big.count('class=' + chr(34) + 'finding-group')} package groups, plan rows "
              f"{big.count('<tr data-package=')}")  # fmt: skip
    return timings


def report(timings: dict[str, list[float]]) -> bool:
    goals: dict[str, float | None] = {
        "overview GET /": OVERVIEW_GOAL_S,
        "audit GET /api/v1/reports/audit": AUDIT_GOAL_S,
        "overview, all rows ?per_page=1000": None,
        BASELINE_OVERVIEW: None,
        "project page GET /projects/big": PROJECT_PAGE_GOAL_S,
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
    if BASELINE_OVERVIEW in timings:
        ours, theirs = timings["overview GET /"], timings[BASELINE_OVERVIEW]
        p50 = statistics.median(ours) / statistics.median(theirs)
        p95 = percentile(ours, 95) / percentile(theirs, 95)
        print(f"\noverview against the baseline tree in the same run: p50 {p50:.2f}x, p95 {p95:.2f}x")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, server log)")
    parser.add_argument(
        "--baseline-tree", type=Path, default=None, help="a checkout of another revision (main) timed side by side"
    )
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
        with ExitStack() as stack:
            base = stack.enter_context(server(tmp, config))
            baseline = None
            if args.baseline_tree is not None:
                baseline = stack.enter_context(server(tmp, config, args.baseline_tree.resolve(), "baseline"))
            timings = measure(base, admin, auditor, args.requests, baseline)
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
