"""A source on a queue no worker serves: check-config warns (file, line, the command to start), and
once its queued run has waited past the grace the API and the overview say it waits for a worker."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from monitor.config.settings import Settings
from monitor.runtime import Runtime
from monitor.store.db import make_engine
from monitor.workqueue.node import NodeOptions, QueueNode
from monitor.workqueue.waiting import GRACE, waiting_runs
from tests.conftest import token_headers
from tests.monitor.web.world import web_app
from tests.support.peers import REPO, mlmon_command

CONFIG = """\
projects:
  - id: vision
    sources:
      - name: eval
        kind: http_json
        interval: 1m
        queue: gpu
        params:
          url: http://127.0.0.1:9/none
          metrics: [{metric: v, path: $.value}]
      - name: poll
        kind: http_json
        params:
          url: http://127.0.0.1:9/none
          metrics: [{metric: v, path: $.value}]
"""


def test_check_config_warns_of_a_queue_no_worker_serves(tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    path.write_text(CONFIG)
    done = subprocess.run(
        [*mlmon_command("check-config", str(path))], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "OK (1 projects, 2 sources" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert f"{path}:7:" in warnings[0] and "projects[0].sources[0].queue" in warnings[0]
    assert "mlmon worker --queues gpu" in warnings[0]

    path.write_text(CONFIG + "workers:\n  queues: [default, gpu]\n")
    done = subprocess.run(
        [*mlmon_command("check-config", str(path))], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "warning" not in done.stderr


def test_worker_refuses_a_bad_queue_name(tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    path.write_text(CONFIG)
    done = subprocess.run(
        [*mlmon_command("worker", "--config", str(path), "--queues", "GPU!")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--queues" in done.stderr and "GPU!" in done.stderr


@pytest.mark.postgres
def test_a_run_nobody_takes_is_shown_waiting_for_a_worker(queue_db: str, tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    path.write_text(CONFIG + "auth:\n  anonymous: viewer\n")
    runtime = Runtime.create(Settings(config=path, database_url=queue_db))
    node = QueueNode(queue_db, NodeOptions(name="leader-only"))  # queues nothing itself
    node.start()
    try:
        now = datetime.now(UTC)
        assert node.enqueue_many([("vision/eval", "gpu", now), ("vision/poll", "default", now)]) == (2, 0)
        # a second tick while the first waits is not queued twice
        assert node.enqueue_many([("vision/eval", "gpu", now)]) == (0, 1)
        intervals = {p.id: p.interval_seconds for p in runtime.plans}
        assert waiting_runs(runtime.store.engine, now, intervals) == {}, "fresh runs are not yet waiting"

        engine = make_engine(queue_db)
        with engine.begin() as conn:  # the runs were queued two minutes ago
            conn.execute(text("UPDATE mlmon_queue.procrastinate_events SET at = now() - interval '2 minutes'"))
        engine.dispose()
        later = datetime.now(UTC)
        waiting = waiting_runs(runtime.store.engine, later, intervals)
        assert set(waiting) == {"vision/eval", "vision/poll"}
        assert waiting["vision/eval"].queue == "gpu"
        assert waiting["vision/eval"].message.startswith("waiting for a worker on queue gpu")
        assert later - waiting["vision/eval"].since > GRACE

        client = TestClient(web_app(runtime))
        headers = token_headers(runtime)
        sources = {s["name"]: s for s in client.get("/api/v1/projects/vision", headers=headers).json()["sources"]}
        assert sources["eval"]["queue"] == "gpu"
        assert sources["eval"]["waiting"].startswith("waiting for a worker on queue gpu")
        assert sources["eval"]["up"] is None, "never run: unknown, not fine"
        page = client.get("/", headers=headers).text
        assert 'id="waiting-runs"' in page and "waiting for a worker on queue gpu" in page
    finally:
        node.stop()
        runtime.store.close()


def test_sqlite_has_no_queue_and_nothing_waits(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    assert waiting_runs(engine, datetime.now(UTC) + timedelta(days=1), {"a/b": 60.0}) == {}
    engine.dispose()
