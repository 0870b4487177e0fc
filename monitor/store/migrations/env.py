"""Alembic environment: runs on the connection mlmon hands over, or on MLMON_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from monitor.config.settings import Settings
from monitor.store.catalog import metadata
from monitor.store.db import make_engine

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or Settings().database_url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("mlmon migrations run online only: use `mlmon migrate`")
run_online()
