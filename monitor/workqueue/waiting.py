"""Runs queued but not picked up: a source whose queue no worker serves says so instead of going
silently stale ("waiting for a worker on queue gpu")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from monitor.workqueue.names import QUEUE_SCHEMA, TASK

GRACE = timedelta(seconds=30)
"""A run waiting longer than this (and longer than its source's interval) is reported: a busy
queue holds a run for moments, a queue nobody serves holds it for ever."""


@dataclass(frozen=True)
class Waiting:
    queue: str
    since: datetime

    @property
    def message(self) -> str:
        return f"waiting for a worker on queue {self.queue} (queued since {self.since.isoformat(timespec='seconds')})"


def waiting_runs(engine: Engine, now: datetime, intervals: dict[str, float]) -> dict[str, Waiting]:
    """Source id -> its oldest run still waiting past the grace (and its interval), on PostgreSQL."""
    if engine.dialect.name != "postgresql":
        return {}
    query = text(
        f"SELECT j.args->>'source' AS source, j.queue_name, min(e.at) AS since "
        f"FROM {QUEUE_SCHEMA}.procrastinate_jobs j "
        f"JOIN {QUEUE_SCHEMA}.procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred' "
        f"WHERE j.status = 'todo' AND j.task_name = :task AND e.at < :before "
        f"GROUP BY 1, 2"
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(query, {"task": TASK, "before": now - GRACE}).all()
    except SQLAlchemyError:
        return {}  # a database without the queue schema has nothing waiting in it
    out: dict[str, Waiting] = {}
    for source, queue, since in rows:
        if source is None or since is None:
            continue
        interval = timedelta(seconds=intervals.get(source, 0.0))
        if now - since > max(GRACE, interval):
            out[source] = Waiting(queue, since)
    return out
