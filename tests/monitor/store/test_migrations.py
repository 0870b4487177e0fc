"""Migrations: upgrade to head, downgrade to base, upgrade again; autogenerate finds no difference."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from monitor.store import migrate
from monitor.store.catalog import metadata
from monitor.store.db import make_engine
from tests.conftest import DEFAULT_PG, _admin_pg_url
from tests.support.peers import missing


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    admin = _admin_pg_url()
    if admin is None:
        missing("PostgreSQL", f"set MLMON_TEST_POSTGRES_URL (default {DEFAULT_PG})")
    name = f"mlmon_mig_{uuid.uuid4().hex[:8]}"
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        missing(f"PostgreSQL at {admin} ({type(exc).__name__})", "start PostgreSQL")
    yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    return list(diff)


def test_upgrade_downgrade_upgrade_and_no_autogenerate_diff(empty_url: str) -> None:
    engine = make_engine(empty_url)
    assert migrate.is_empty(engine)
    migrate.upgrade(engine)
    assert migrate.is_at_head(engine)
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= tables
    assert _diff(empty_url) == []
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert migrate.is_at_head(engine)
    assert _diff(empty_url) == []
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/wal.db")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_alert_fingerprints_are_rekeyed_as_alertmanager_computes_them(empty_url: str) -> None:
    """Alerts stored with the old SHA-256 fingerprints get Alertmanager's, and the groups' record of
    what they announced follows, so nothing is notified again after the upgrade; and back."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from alerts.model import fingerprint
    from monitor.store.schema import alert_groups, alert_instances

    engine = make_engine(empty_url)
    before = "0008"  # the revision 0009 (alert fingerprints) follows
    migrate.upgrade(engine, before)
    labels = {"alertname": "a", "project": "p"}
    old = "8a4bd3e5f1c0a3b7"  # any pre-upgrade key: the migration recomputes from the labels
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(alert_instances).values(
                rule="a",
                fingerprint=old,
                project="p",
                labels=labels,
                annotations={},
                state="firing",
                nodata=False,
                updated_at=now,
            )
        )
        conn.execute(
            insert(alert_groups).values(
                group_key="g",
                route="root",
                receiver="r",
                group_labels={},
                created_at=now,
                next_flush_at=now,
                sent_firing=[old, "other"],
                sent_resolved=[],
            )
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(select(alert_instances.c.fingerprint)).scalar_one() == fingerprint(labels)
        assert conn.execute(select(alert_groups.c.sent_firing)).scalar_one() == [fingerprint(labels), "other"]
    migrate.downgrade(engine, before)
    with engine.connect() as conn:
        back = conn.execute(select(alert_instances.c.fingerprint)).scalar_one()
    assert back != fingerprint(labels) and len(back) == 16
    engine.dispose()
