"""Leader election: of several `mlmon worker` (or `serve`) processes, one runs the scheduled jobs.

On PostgreSQL the leader holds a session advisory lock on a dedicated connection; if the process
dies, the server drops the connection and the lock with it, and a standby's next poll wins. On a
SQLite file an exclusive `flock` on `<db>.leader` plays the same role for processes on one host.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

log = logging.getLogger("mlmon.leader")

ADVISORY_KEY = 0x6D6C6D6F6E  # "mlmon"


class LeaderLock(Protocol):
    def try_acquire(self) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...


class PostgresAdvisoryLock:
    def __init__(self, engine: Engine, key: int = ADVISORY_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        conn = self.engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            # A session lock lives exactly as long as its connection, so a live connection is proof.
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:
            log.warning("lost the connection that holds the leader lock")
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._conn.commit()
        except Exception:
            log.warning("could not release the leader lock cleanly; closing its connection")
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:
                pass
            self._conn = None


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        handle = open(self.path, "ab")  # noqa: SIM115 - held open as long as we lead
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class AlwaysLeader:
    """For an in-memory database, which no other process can share."""

    def try_acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        return None


def lock_for(engine: Engine) -> LeaderLock:
    url = make_url(engine.url.render_as_string(hide_password=False))
    if url.get_backend_name() == "postgresql":
        return PostgresAdvisoryLock(engine)
    if url.database in (None, "", ":memory:"):
        return AlwaysLeader()
    return FileLock(Path(os.path.abspath(str(url.database)) + ".leader"))


class Elector:
    """Polls for leadership in a thread; calls `elected` / `deposed` on changes."""

    def __init__(
        self,
        lock: LeaderLock,
        poll_seconds: float,
        elected: Callable[[], None],
        deposed: Callable[[], None],
    ) -> None:
        self.lock = lock
        self.poll_seconds = poll_seconds
        self.elected = elected
        self.deposed = deposed
        self.leader = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="leader-elector", daemon=True)

    def start(self) -> None:
        self._step()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self.leader:
            self.leader = False
            self.deposed()
        self.lock.release()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._step()

    def _step(self) -> None:
        try:
            if self.leader:
                if not self.lock.held():
                    self.leader = False
                    log.warning("leadership lost; pausing scheduled jobs")
                    self.deposed()
            elif self.lock.try_acquire():
                self.leader = True
                log.info("this process is now the leader (pid %d)", os.getpid())
                self.elected()
        except Exception:
            log.exception("leader election step failed")
