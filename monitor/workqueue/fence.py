"""The per-source fence: a PostgreSQL advisory lock a worker holds for the whole of one run.

procrastinate's `lock` lets one job per source be `doing`, but a worker the reaper took for dead
may only be paused (SIGSTOP, a long GC, a VM steal): its retry must then refuse to start rather
than collect the same source twice at once. The lock lives with the holder's session, so it is
released the moment a killed worker's connection drops, and never while a paused one still holds
it.

The fences have a small pool of their own, in autocommit, holding session-level locks: taking one
is a single round trip and giving it back another. Through the store's engine the same fence cost
four (the pool's ping, BEGIN, the lock, ROLLBACK): 1.5 ms of every queued run, measured under
load, a third of the queue's whole overhead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from monitor.workqueue.names import FENCE_CLASS, conninfo

log = logging.getLogger("mlmon.workqueue")

_TAKE = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"
_GIVE_BACK = "SELECT pg_advisory_unlock(%s, hashtext(%s))"


class Fences:
    """Fences for the runs of one process; `size` is how many runs it makes at once."""

    def __init__(self, database_url: str, size: int) -> None:
        self._pool = ConnectionPool(
            conninfo(database_url),
            kwargs={"autocommit": True, "application_name": "mlmon fence"},
            min_size=0,
            max_size=max(1, size),
            open=False,
        )
        self._opened = False
        self._opening = threading.Lock()

    def close(self) -> None:
        with self._opening:
            if self._opened:
                self._pool.close()
                self._opened = False

    def _open(self) -> None:
        # opened on the first run: a process that serves no queue never connects
        with self._opening:
            if not self._opened:
                self._pool.open()
                self._opened = True

    @contextmanager
    def hold(self, plan_id: str) -> Iterator[bool]:
        """Yield True while this process alone runs `plan_id` (False: another run holds it)."""
        if not self._opened:
            self._open()
        for attempt in (1, 2):
            with self._pool.connection() as conn:
                try:
                    row = conn.execute(_TAKE, (FENCE_CLASS, plan_id)).fetchone()
                except psycopg.OperationalError:
                    # A pooled connection the server dropped (restart, idle timeout) is found out
                    # only by using it: the pool discards it on return, and a fresh one is tried.
                    if attempt == 2:
                        raise
                    continue
                if not (row and row[0]):
                    yield False
                    return
                try:
                    yield True
                finally:
                    self._give_back(conn, plan_id)
                return

    def _give_back(self, conn: psycopg.Connection[Any], plan_id: str) -> None:
        try:
            conn.execute(_GIVE_BACK, (FENCE_CLASS, plan_id))
        except psycopg.Error as exc:
            # Closing ends the session, which releases every lock it held: a connection that may
            # still hold one never goes back to the pool.
            log.warning("giving back the fence of %s failed (%s); its connection is closed instead", plan_id, exc)
            conn.close()
