"""A stack history made the way the service makes it, for the audit report tests.

Real OSV records (../shared/data/osv) in an offline database directory, torch's real release
history served as a PEP 691 index, lock files read by the real `lockfile` source through the
runner, and `stack sync` (ingest, feeds, reconcile) at each step of a FrozenClock timeline:

  T1 2026-02-02 09:00  churn, ranker on torch 2.7.1, vision on 2.6.0+cu124; advisory revision A
                       (CVE-2025-3730 without a fix, CVE-2026-24747 fixed in 2.10.0, due 2026-02-26)
  T2 2026-02-10 09:00  vision ignores CVE-2026-24747 until 2026-03-31; an admin creates a token
  T3 2026-02-20 09:00  churn upgrades to torch 2.10.0 (fixed within the SLA)
  T4 2026-03-15 09:00  ranker upgrades to torch 2.10.0 (fixed after the due date)
  T5 2026-04-02 09:00  a sync after the ignore expired (`unignored`, expired)
  T6 2026-07-10 09:00  PYSEC-2026-1970 is published: CVE-2025-3730 gets its fix (2.8.0)
  NOW 2026-07-20 09:00
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.http import HttpFactory
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.stack.store import StackStore
from monitor.stack.sync import TickReport, tick
from monitor.store.store import Store
from tests.conftest import RuntimeFactory, token_headers
from tests.monitor.stack.support import PackageIndex, torch_releases
from tests.support.http_server import LocalHttpServer
from tests.support.peers import shared_data

T1 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
T3 = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
T4 = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
T5 = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
T6 = datetime(2026, 7, 10, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 7, 20, 9, 0, tzinfo=UTC)
IGNORE_EXPIRES = date(2026, 3, 31)
IGNORE_REASON = "torch.load runs only on weights we sign; INFRA-42"

REVISION_A = ["GHSA-887c-mr87-cxwp", "PYSEC-2026-2286", "GHSA-63cw-57p8-fm3p", "PYSEC-2025-41", "GHSA-53q9-r3pm-6pq6"]
FIX_RECORD = "PYSEC-2026-1970"


def config_text(tmp: Path, index_url: str, *, ignore: bool) -> str:
    ignores = (
        f'    stack:\n      ignores:\n        - {{id: GHSA-63cw-57p8-fm3p, reason: "{IGNORE_REASON}", expires: {IGNORE_EXPIRES}}}\n'
        if ignore
        else ""
    )
    return f"""
projects:
  - id: churn
    name: Churn classifier
    team: growth
    owners: [{{name: Ada, email: ada@example.com, slack: "@ada"}}]
    sources:
      - {{name: deps, kind: lockfile, interval: 1h, params: {{path: "{tmp / "churn" / "requirements.txt"}"}}}}
  - id: ranker
    team: search
    owners: [{{name: Linus, email: linus@example.com}}]
    sources:
      - {{name: deps, kind: lockfile, interval: 1h, params: {{path: "{tmp / "ranker" / "requirements.txt"}"}}}}
  - id: vision
    owners: [{{name: Grace, email: grace@example.com}}, {{name: Alan, slack: "#vision-oncall"}}]
    sources:
      - {{name: serving, kind: lockfile, interval: 1h, params: {{path: "{tmp / "vision" / "requirements.txt"}"}}}}
{ignores}  - id: billing
    team: finance
stack:
  advisories: {{path: "{tmp / "osv"}", refresh: 6h}}
  index: {{url: "{index_url}", packages: [torch], refresh: 6h}}
"""


@dataclass
class Timeline:
    runtime: Runtime
    clock: FrozenClock
    tmp: Path
    index_url: str
    admin: dict[str, str]

    @property
    def store(self) -> Store:
        return self.runtime.store

    @property
    def stack(self) -> StackStore:
        return StackStore(self.runtime.store.engine)

    def write(self, project: str, text: str) -> None:
        path = self.tmp / project / "requirements.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def publish(self, *ids: str) -> None:
        """Put real OSV records into the offline database directory."""
        target = self.tmp / "osv"
        target.mkdir(exist_ok=True)
        for ident in ids:
            shutil.copy(shared_data("osv", "PyPI", "torch", f"{ident}.json"), target / f"{ident}.json")

    def configure(self, *, ignore: bool) -> None:
        Path(self.runtime.settings.config).write_text(config_text(self.tmp, self.index_url, ignore=ignore))
        assert self.runtime.reload(actor="tests").ok

    def step(self, moment: datetime) -> TickReport:
        """Every source runs (through the runner), then one stack sync."""
        self.clock.set(moment)
        runner = SourceRunner(self.runtime.store, self.clock, HttpFactory(timeout=10))
        assert all(runner.run(plan).ok for plan in self.runtime.plans)
        report = tick(self.runtime.store, self.runtime.config, moment, HttpFactory(timeout=10), {})
        assert not report.ingest.errors and not report.reconcile.errors
        return report

    def client(self) -> TestClient:
        return TestClient(create_app(self.runtime), raise_server_exceptions=False)


@pytest.fixture
def index_server() -> Iterator[PackageIndex]:
    with LocalHttpServer() as server:
        yield PackageIndex(server, {"torch": torch_releases()})


def build_timeline(make_runtime: RuntimeFactory, database_url: str, tmp: Path, index_url: str) -> Timeline:
    clock = FrozenClock(T1)
    runtime = make_runtime(config_text(tmp, index_url, ignore=False), database_url=database_url, clock=clock)
    line = Timeline(runtime, clock, tmp, index_url, token_headers(runtime, "admin", name="ops-admin"))
    line.publish(*REVISION_A)
    line.write("churn", "torch==2.7.1\nrequests==2.32.3\n")
    line.write("ranker", "torch==2.7.1\n")
    line.write("vision", "torch==2.6.0+cu124\nnumpy==2.2.6\n")
    line.step(T1)

    clock.set(T2)
    line.configure(ignore=True)
    with line.client() as client:
        made = client.post("/api/v1/tokens", json={"name": "audit-team", "role": "auditor"}, headers=line.admin)
        assert made.status_code == 200, made.text
    line.step(T2)

    line.write("churn", "torch==2.10.0\nrequests==2.32.3\n")
    line.step(T3)
    line.write("ranker", "torch==2.10.0\n")
    line.step(T4)
    line.step(T5)
    line.publish(FIX_RECORD)
    line.step(T6)
    clock.set(NOW)
    return line


@pytest.fixture
def timeline(make_runtime: RuntimeFactory, db_url: str, tmp_path: Path, index_server: PackageIndex) -> Timeline:
    """The timeline on SQLite and on PostgreSQL."""
    return build_timeline(make_runtime, db_url, tmp_path, index_server.url)


@pytest.fixture
def sqlite_timeline(make_runtime: RuntimeFactory, sqlite_url: str, tmp_path: Path,
                    index_server: PackageIndex) -> Timeline:  # fmt: skip
    """The timeline on SQLite only (CLI, API and rendering tests)."""
    return build_timeline(make_runtime, sqlite_url, tmp_path, index_server.url)
