"""What a worker does with one queued run: find the source in its configuration, fence it, run it.

The fence is a per-source PostgreSQL advisory lock held for the whole run. procrastinate's `lock`
lets one job per source be `doing`, but a worker the reaper took for dead may only be paused
(SIGSTOP, a long GC, a VM steal): its retry must then refuse to start rather than collect the same
source twice at once. The lock lives with the holder's connection, so it is released the moment
a killed worker's connection drops, and never while a paused one still holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from monitor.plans import SourcePlan
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.store.db import make_engine
from monitor.workqueue.names import FENCE_CLASS

log = logging.getLogger("mlmon.workqueue")


_LOCK = text("SELECT pg_try_advisory_lock(:cls, hashtext(:key))")
_UNLOCK = text("SELECT pg_advisory_unlock(:cls, hashtext(:key))")


def fence_engine(database_url: str) -> Engine:
    """The fences' own pool, without SQLAlchemy's pre-ping (one more round trip on every run): a
    connection that died is found by the lock statement itself, and `fenced` takes a fresh one."""
    return make_engine(database_url, pool_pre_ping=False, pool_size=4, max_overflow=64, pool_recycle=600)


@contextmanager
def fenced(engine: Engine, plan_id: str) -> Iterator[bool]:
    """Yield True while this process alone runs `plan_id` (False: another run holds it).

    A session lock on an autocommit connection: one statement to take it and one to give it
    back, where a transaction-scoped lock took BEGIN, the statement and ROLLBACK (each round trip
    is paid on every queued run)."""
    key = {"cls": FENCE_CLASS, "key": plan_id}
    conn, got = _take(engine, key)
    try:
        yield got
    finally:
        try:
            if got:
                conn.execute(_UNLOCK, key)
        except Exception:
            # never hand a connection that may still hold the lock back to the pool: closing it
            # is what releases the lock
            conn.invalidate()
            raise
        finally:
            conn.close()


def _take(engine: Engine, key: dict[str, object]) -> tuple[Connection, bool]:
    """A connection and whether it took the lock; a pooled connection found dead is replaced once."""
    for last in (False, True):
        conn = engine.connect()
        try:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            return conn, bool(conn.execute(_LOCK, key).scalar())
        except DBAPIError as exc:
            conn.close()
            if last or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


@dataclass
class QueuedRuns:
    """The task body of a worker: `(source id, job id, due)` -> one stored run."""

    runtime: Runtime
    runner: SourceRunner
    worker: str
    _plans: tuple[int, dict[str, SourcePlan]] = field(default=(0, {}))
    _fences: Engine = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fences = fence_engine(self.runtime.settings.database_url)

    def close(self) -> None:
        self._fences.dispose()

    def __call__(self, source_id: str, job_id: int, due: str, attempts: int = 0) -> None:
        plan = self._plan(source_id)
        if plan is None:
            log.warning("job %d names source %s, which this worker's configuration lacks; skipped", job_id, source_id)
            return
        with fenced(self._fences, source_id) as alone:
            if not alone:
                log.warning("job %d: another run of %s is still in progress; this one is dropped", job_id, source_id)
                return
            if attempts and self.runtime.store.sources.ran_job(job_id):
                # a retry of a run whose worker stored it and died before telling the queue
                log.info("job %d (%s) was already stored by its first worker; not run twice", job_id, source_id)
                return
            self.runner.run(plan, worker=self.worker, job_id=job_id)

    def _plan(self, source_id: str) -> SourcePlan | None:
        plans = self.runtime.plans
        key, by_id = self._plans
        if key != id(plans):  # the configuration was reloaded: index its plans again
            by_id = {p.id: p for p in plans}
            self._plans = (id(plans), by_id)
        return by_id.get(source_id)
