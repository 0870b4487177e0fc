"""The names the queue is built from, shared by the migration, the workers and the readers."""

from __future__ import annotations

from sqlalchemy.engine import make_url

QUEUE_SCHEMA = "mlmon_queue"
"""The PostgreSQL schema holding procrastinate's tables (migration 0008 creates it)."""

TASK = "mlmon.run_source"

FENCE_CLASS = 0x6D6C
"""First key of the per-source advisory lock a run holds (the two-key form never meets the
leader's one-key lock)."""


def lock_of(plan_id: str) -> str:
    """The procrastinate `lock` and `queueing_lock` of a source: one run doing, one waiting."""
    return f"src:{plan_id}"


def uses_queue(database_url: str) -> bool:
    """Runs go through the queue on PostgreSQL; on SQLite they run in-process."""
    return make_url(database_url).get_backend_name() == "postgresql"


def conninfo(database_url: str) -> str:
    """The libpq URL of a SQLAlchemy `postgresql+psycopg://` URL (same server and credentials)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
