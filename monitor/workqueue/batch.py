"""The leader's due runs, gathered for a moment and queued in one statement.

APScheduler fires each source on its own; 300 sources at 2 s are 150 enqueues a second, and one
round trip each kept the scheduler's threads so busy that ticks were skipped on a loaded machine.
Runs due within `gather_seconds` of each other share one INSERT instead.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Protocol

log = logging.getLogger("mlmon.workqueue")


class Enqueues(Protocol):
    def enqueue_many(self, due: list[tuple[str, str, datetime]]) -> tuple[int, int]: ...


class DueBatcher:
    def __init__(self, queue: Enqueues, gather_seconds: float = 0.05) -> None:
        self.queue = queue
        self.gather_seconds = gather_seconds
        self._due: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="enqueue-batcher", daemon=True)

    def submit(self, plan_id: str, queue: str, due: datetime) -> None:
        """Note a due run (a source due twice before the flush is queued once)."""
        with self._lock:
            self._due[plan_id] = (queue, due)
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.flush()

    def flush(self) -> None:
        with self._lock:
            due, self._due = self._due, {}
        if not due:
            return
        try:
            queued, waiting = self.queue.enqueue_many([(p, q, when) for p, (q, when) in due.items()])
        except Exception:
            log.exception("queueing %d due runs failed; they run at their next tick", len(due))
            return
        if waiting:
            log.debug("%d due runs queued, %d still waiting from before", queued, waiting)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.wait(self.gather_seconds):
                return
            self.flush()
