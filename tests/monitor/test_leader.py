"""Leader election between real `mlmon worker` processes: one runs the jobs, the other stands by,
and after `kill -9` of the leader the standby takes over within an interval (plus a poll).

Each worker fills a `${VAR}` header of its http_json source with its own name, so the local HTTP
server knows which process ran each collection.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from monitor.store.db import make_engine
from monitor.store.schema import metadata
from monitor.store.store import Store
from tests.support.http_server import Answer, LocalHttpServer
from tests.support.peers import REPO, mlmon_command, stop_process, wait_until

pytestmark = pytest.mark.slow

INTERVAL = 2.0
POLL = 0.5
TAKEOVER_MARGIN = 2.0  # process scheduling and a database round trip on a busy CI machine

CONFIG = """
projects:
  - id: leader-test
    sources:
      - name: probe
        kind: http_json
        interval: {interval}s
        timeout: 5s
        params:
          url: {url}
          headers: {{X-Worker: "${{LEADER_TEST_WORKER}}"}}
          metrics:
            - {{metric: probe_value, path: $.value}}
"""


def _clean_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY CASCADE"))
        conn.execute(text("TRUNCATE mlmon_queue.procrastinate_jobs, mlmon_queue.procrastinate_workers CASCADE"))
    engine.dispose()


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    url: str = request.getfixturevalue("postgres_url")
    _clean_postgres(url)
    yield url
    _clean_postgres(url)


@pytest.fixture
def probe() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as server:
        server.route("/probe.json", Answer({"value": 1}))
        yield server


Spawn = Callable[[str], subprocess.Popen[bytes]]


@pytest.fixture
def spawn_worker(tmp_path: Path, database: str, probe: LocalHttpServer) -> Iterator[Spawn]:
    config = tmp_path / "mlmon.yaml"
    config.write_text(CONFIG.format(interval=int(INTERVAL), url=probe.url("/probe.json")))
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "MLMON_DATABASE_URL": database,
            "MLMON_CONFIG": str(config),
            "MLMON_LEADER_POLL_SECONDS": str(POLL),
            "MLMON_LOG_LEVEL": "info",
            "LEADER_TEST_WORKER": name,
        }
        with open(tmp_path / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                [*mlmon_command("worker"), "--name", name], env=env, cwd=REPO, stdout=log, stderr=log
            )
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        stop_process(proc)


def log_of(tmp_path: Path, name: str) -> str:
    return (tmp_path / f"{name}.log").read_text(errors="replace")


def test_one_leader_runs_jobs_and_the_standby_takes_over_after_kill_9(
    spawn_worker: Spawn, probe: LocalHttpServer, database: str, tmp_path: Path
) -> None:
    workers = {name: spawn_worker(name) for name in ("alpha", "beta")}
    store = Store.open(database)
    try:

        def origins() -> list[str | None]:
            return [seen.header("X-Worker") for seen in probe.requests("/probe.json")]

        wait_until(lambda: len(origins()) >= 4, timeout=30, interval=0.1, what="four collections")
        wait_until(
            lambda: sum("now the leader" in log_of(tmp_path, name) for name in workers) == 1,
            timeout=10,
            what="one leader",
        )
        leader = next(name for name in workers if "now the leader" in log_of(tmp_path, name))
        standby = next(name for name in workers if name != leader)
        queued = database.startswith("postgresql")
        if not queued:
            assert set(origins()) == {leader}, "on SQLite only the leader runs sources"
        else:
            assert set(origins()) <= {leader, standby}, "on PostgreSQL both workers take runs from the queue"
        assert all(proc.poll() is None for proc in workers.values()), "both workers are alive"
        wait_until(
            lambda: len(store.sources.runs("leader-test", "probe")) == len(origins()),
            timeout=10,
            what="one stored run per collection",
        )
        assert all(run.ok for run in store.sources.runs("leader-test", "probe"))
        assert "now the leader" not in log_of(tmp_path, standby)

        before = len(origins())
        workers[leader].send_signal(signal.SIGKILL)
        workers[leader].wait(10)

        wait_until(
            lambda: standby in origins()[before:],
            timeout=INTERVAL + POLL + TAKEOVER_MARGIN,
            interval=0.05,
            what=f"the standby {standby} to collect after the leader was killed",
        )
        # counted after the kill: on PostgreSQL the standby took queued runs before it, too
        wait_until(lambda: origins()[before:].count(standby) >= 3, timeout=20, what="the new leader to keep collecting")
        after = origins()[before:]
        assert set(after) <= {leader, standby}
        # At most the request the killed leader had in flight comes from it; all later ones are the standby's.
        assert after[after.index(standby) :] == [standby] * len(after[after.index(standby) :])
        if queued:
            assert all(run.worker in (None, leader, standby) for run in store.sources.runs("leader-test", "probe"))
        assert "now the leader" in log_of(tmp_path, standby)
        wait_until(
            lambda: sum(r.ok for r in store.sources.runs("leader-test", "probe")) >= before + 2,
            timeout=10,
            what="the new leader's runs in the store",
        )
    finally:
        store.close()
