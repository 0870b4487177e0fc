"""distributed workers: procrastinate's job queue (PostgreSQL only) and who ran each source run

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

QUEUE_SCHEMA = "mlmon_queue"
"""procrastinate's tables, types and functions live in their own schema: mlmon's tables stay
alone in the default one, and a downgrade drops the whole queue in one statement."""


def upgrade() -> None:
    op.add_column("source_runs", sa.Column("worker", sa.String(length=128), nullable=True))
    op.add_column("source_runs", sa.Column("job_id", sa.BigInteger(), nullable=True))
    op.add_column("source_state", sa.Column("last_worker", sa.String(length=128), nullable=True))
    op.create_index("ix_source_runs_job_id", "source_runs", ["job_id"])
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite runs every source in-process: there is no queue
    from procrastinate.schema import SchemaManager

    bind = op.get_bind()
    previous = bind.exec_driver_sql("SELECT current_setting('search_path')").scalar_one()
    bind.exec_driver_sql(f"CREATE SCHEMA {QUEUE_SCHEMA}")
    bind.exec_driver_sql(f"SELECT set_config('search_path', '{QUEUE_SCHEMA}', true)")
    # straight to psycopg without parameters, so the `%` in procrastinate's own SQL stays as it is
    bind.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
    # later migrations in this transaction must see mlmon's schema again
    bind.execute(sa.text("SELECT set_config('search_path', :p, true)"), {"p": previous})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {QUEUE_SCHEMA} CASCADE")
    op.drop_index("ix_source_runs_job_id", table_name="source_runs")
    op.drop_column("source_state", "last_worker")
    op.drop_column("source_runs", "job_id")
    op.drop_column("source_runs", "worker")
