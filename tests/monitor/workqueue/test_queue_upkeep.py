"""The leader keeps the jobs table fit for procrastinate's fetch on a real PostgreSQL: it analyzes
the table after a burst of runs (as autovacuum would, which may be off or asleep) and vacuums the
queue's tables after pruning old jobs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from monitor.store.db import make_engine
from monitor.workqueue.names import QUEUE_SCHEMA
from monitor.workqueue.node import NodeOptions, QueueNode
from tests.support.peers import wait_until

pytestmark = pytest.mark.postgres


def _upkeep(url: str) -> dict[str, tuple[bool, bool]]:
    """Table -> (analyzed ever, vacuumed ever), by hand or by autovacuum."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT relname, coalesce(last_analyze, last_autoanalyze) IS NOT NULL, "
                    "coalesce(last_vacuum, last_autovacuum) IS NOT NULL FROM pg_stat_user_tables "
                    "WHERE schemaname = :schema"
                ),
                {"schema": QUEUE_SCHEMA},
            ).all()
    finally:
        engine.dispose()
    return {name: (bool(analyzed), bool(vacuumed)) for name, analyzed, vacuumed in rows}


def test_a_burst_of_runs_gets_the_jobs_table_analyzed_once(queue_db: str) -> None:
    node = QueueNode(queue_db, NodeOptions(name="leader"))
    node.start()
    try:
        assert node.keep_statistics() is False  # an empty table: nothing changed
        now = datetime.now(UTC)
        queued, _ = node.enqueue_many([(f"p/s{i}", "default", now) for i in range(600)])
        assert queued == 600
        # the server counts changes once the enqueuing backend has reported its statistics
        analyzed: list[bool] = []
        wait_until(lambda: analyzed.append(node.keep_statistics()) or analyzed[-1], timeout=30, interval=0.5)
        assert _upkeep(queue_db)["procrastinate_jobs"][0]
        assert node.keep_statistics() is False  # nothing changed since: no second ANALYZE
    finally:
        node.stop()


def test_pruning_vacuums_the_queue_tables(queue_db: str) -> None:
    node = QueueNode(queue_db, NodeOptions(name="leader"))
    node.start()
    try:
        node.enqueue_many([("p/s", "default", datetime.now(UTC))])
        node.prune(24)
    finally:
        node.stop()
    upkeep = _upkeep(queue_db)
    assert upkeep["procrastinate_jobs"] == (True, True)
    assert upkeep["procrastinate_events"] == (True, True)
