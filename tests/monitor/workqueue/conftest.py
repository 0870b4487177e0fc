"""A PostgreSQL database of their own for the worker tests (CREATE DATABASE mlmon_workers_*):
their queues and runs never meet other tests' rows in the session's database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.store import migrate
from monitor.store.db import make_engine
from tests.conftest import DEFAULT_PG, _admin_pg_url
from tests.support.peers import missing


@pytest.fixture
def queue_db() -> Iterator[str]:
    """A fresh database migrated to head (procrastinate's schema included)."""
    admin = _admin_pg_url()
    how = f"start PostgreSQL or set MLMON_TEST_POSTGRES_URL (default {DEFAULT_PG}); set it empty to skip"
    if admin is None:
        missing("PostgreSQL (MLMON_TEST_POSTGRES_URL is empty)", how)
    name = f"mlmon_workers_{uuid.uuid4().hex[:10]}"
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        missing(f"PostgreSQL at {admin} ({type(exc).__name__})", how)
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    migrated = make_engine(url)
    migrate.upgrade(migrated)
    migrated.dispose()
    yield url
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
