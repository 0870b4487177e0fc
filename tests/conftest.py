"""Fixtures: stores on SQLite and PostgreSQL (the same contract tests run on both), runtimes
built from YAML text, frozen clocks."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.config.settings import Settings
from monitor.core.clock import FrozenClock
from monitor.runtime import Runtime
from monitor.store import migrate
from monitor.store.catalog import metadata
from monitor.store.db import make_engine
from monitor.store.store import Store
from tests.support.peers import missing

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _admin_pg_url() -> str | None:
    url = os.environ.get("MLMON_TEST_POSTGRES_URL", DEFAULT_PG)
    return url or None


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new PostgreSQL database named `prefix` + a random suffix, migrated to head, dropped after."""
    admin = _admin_pg_url()
    how = f"start PostgreSQL or set MLMON_TEST_POSTGRES_URL (default {DEFAULT_PG}); set it empty to skip"
    if admin is None:
        missing("PostgreSQL (MLMON_TEST_POSTGRES_URL is empty)", how)
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head."""
    with fresh_postgres_database("mlmon_test_") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _truncate_postgres(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # the job queue (migration 0009): runs queued by one test never reach the next one's workers
        conn.execute(text("TRUNCATE mlmon_queue.procrastinate_jobs, mlmon_queue.procrastinate_workers CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "mlmon.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    yield url
    _truncate_postgres(url)


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "mlmon.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


RuntimeFactory = Callable[..., Runtime]


@pytest.fixture
def make_runtime(tmp_path: Path, sqlite_url: str) -> Iterator[RuntimeFactory]:
    """Build a Runtime from YAML text (on SQLite unless a database URL is given)."""
    made: list[Runtime] = []

    def factory(config_text: str, *, database_url: str | None = None, clock: FrozenClock | None = None) -> Runtime:
        path = tmp_path / f"config-{len(made)}.yaml"
        path.write_text(config_text)
        settings = Settings(config=path, database_url=database_url or sqlite_url)
        runtime = Runtime.create(settings, clock=clock)
        made.append(runtime)
        return runtime

    yield factory
    for runtime in made:
        runtime.store.close()


BASIC_CONFIG = """
projects:
  - id: churn
    name: Churn classifier
    team: growth
    owners:
      - {name: Ada, email: ada@example.com, slack: "@ada"}
    labels: {tier: gold}
  - id: vision
    owners:
      - {name: Grace, email: grace@example.com}
"""


def token_headers(
    runtime: Runtime, role: str = "admin", projects: tuple[str, ...] = (), name: str | None = None
) -> dict[str, str]:
    """Create a token in the runtime's store and return the header that carries it."""
    from monitor.auth.model import Role

    label = name or f"test-{role}-{'-'.join(projects) or 'all'}-{uuid.uuid4().hex[:6]}"
    secret, _ = runtime.tokens.create(label, Role(role), projects, "tests", runtime.clock.now())
    return {"Authorization": f"Bearer {secret}"}


def cli_token(database_url: str, role: str = "admin", projects: tuple[str, ...] = ()) -> str:
    """Create a token the way an operator does (`mlmon token create`), for tests of real processes."""
    import subprocess

    from tests.support.peers import mlmon_command

    args = ["token", "create", "--role", role, "--database-url", database_url]
    for project in projects:
        args += ["--project", project]
    done = subprocess.run(mlmon_command(*args), capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()
