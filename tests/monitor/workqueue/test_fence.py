"""The per-source fence on a real PostgreSQL: one holder at a time, released when the run ends or
fails, and never left behind on a pooled connection."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from monitor.store.db import make_engine
from monitor.workqueue.execute import fenced

pytestmark = pytest.mark.postgres


def _advisory_locks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar_one())


def test_one_holder_at_a_time_and_released_after_the_run(queue_db: str) -> None:
    engine = make_engine(queue_db, pool_size=3, max_overflow=0)
    try:
        with fenced(engine, "vision/eval") as first:
            assert first
            with fenced(engine, "vision/eval") as second, fenced(engine, "vision/other") as other:
                assert not second  # the same source: refused, whichever connection asks
                assert other  # another source is not held up
            assert _advisory_locks(engine) == 1
        assert _advisory_locks(engine) == 0
        with fenced(engine, "vision/eval") as again:
            assert again
    finally:
        engine.dispose()


def test_a_failing_run_gives_the_fence_back(queue_db: str) -> None:
    engine = make_engine(queue_db, pool_size=1, max_overflow=0)
    try:
        with pytest.raises(RuntimeError), fenced(engine, "vision/eval") as held:
            assert held
            raise RuntimeError("the collector failed")
        # the one pooled connection is back in the pool without the lock
        assert _advisory_locks(engine) == 0
        with fenced(engine, "vision/eval") as again:
            assert again
    finally:
        engine.dispose()
