"""The per-source fence on a real PostgreSQL: one holder at a time, released when the run ends or
fails, never left behind on a pooled connection, and not lost to a connection the server dropped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from monitor.store.db import make_engine
from monitor.workqueue.fence import Fences

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(queue_db: str) -> Iterator[Engine]:
    engine = make_engine(queue_db, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def _advisory_locks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar_one())


def _fence_sessions(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = 'mlmon fence'"))
        return [int(pid) for (pid,) in rows]


def _end_the_fence_session(engine: Engine) -> int:
    """Terminate the one fence connection's session (as a server restart would) and wait for it."""
    (pid,) = _fence_sessions(engine)
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
    return pid


def test_one_holder_at_a_time_and_released_after_the_run(queue_db: str, engine: Engine) -> None:
    fences = Fences(queue_db, 3)
    try:
        with fences.hold("vision/eval") as first:
            assert first
            with fences.hold("vision/eval") as second, fences.hold("vision/other") as other:
                assert not second  # the same source: refused, whichever connection asks
                assert other  # another source is not held up
                assert _advisory_locks(engine) == 2
            assert _advisory_locks(engine) == 1
        assert _advisory_locks(engine) == 0
        with fences.hold("vision/eval") as again:
            assert again
    finally:
        fences.close()


def test_another_process_sees_the_fence(queue_db: str) -> None:
    mine, theirs = Fences(queue_db, 1), Fences(queue_db, 1)
    try:
        with mine.hold("vision/eval") as held:
            assert held
            with theirs.hold("vision/eval") as refused:
                assert not refused
        with theirs.hold("vision/eval") as taken:
            assert taken
    finally:
        mine.close()
        theirs.close()


def test_a_failing_run_gives_the_fence_back(queue_db: str, engine: Engine) -> None:
    fences = Fences(queue_db, 1)
    try:
        with pytest.raises(RuntimeError), fences.hold("vision/eval") as held:
            assert held
            raise RuntimeError("the collector failed")
        # the one pooled connection is back in the pool without the lock
        assert _advisory_locks(engine) == 0
        with fences.hold("vision/eval") as again:
            assert again
        assert len(_fence_sessions(engine)) == 1
    finally:
        fences.close()


@pytest.mark.parametrize("during_the_run", [False, True], ids=["between runs", "during a run"])
def test_a_fence_session_the_server_ended_is_replaced(queue_db: str, engine: Engine, during_the_run: bool) -> None:
    fences = Fences(queue_db, 1)
    try:
        with fences.hold("vision/eval") as held:
            assert held
            if during_the_run:  # the give-back then fails: the dead connection must not be pooled
                pid = _end_the_fence_session(engine)
        if not during_the_run:  # found out only when the next run uses the pooled connection
            pid = _end_the_fence_session(engine)
        assert _advisory_locks(engine) == 0  # the session's end released its lock
        with fences.hold("vision/eval") as again:
            assert again
            assert _advisory_locks(engine) == 1
            assert _fence_sessions(engine) != [pid]
    finally:
        fences.close()


def test_closing_before_any_run_connects_nothing(queue_db: str, engine: Engine) -> None:
    Fences(queue_db, 4).close()
    assert _fence_sessions(engine) == []
