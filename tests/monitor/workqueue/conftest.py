"""A PostgreSQL database of their own for the worker tests (CREATE DATABASE mlmon_workers_*):
their queues and runs never meet other tests' rows in the session's database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import fresh_postgres_database


@pytest.fixture
def queue_db() -> Iterator[str]:
    """A fresh database migrated to head (procrastinate's schema included)."""
    with fresh_postgres_database("mlmon_workers_") as url:
        yield url
