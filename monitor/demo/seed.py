"""The demo's evaluation job: pushes quality history and model version changes into the store,
through the same validation as `POST /api/v1/samples` and `POST /api/v1/events`, then keeps
pushing a fresh evaluation and rewriting today's bill while the demo runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from monitor.core.clock import Clock
from monitor.core.types import ms_from_datetime
from monitor.demo import history
from monitor.demo.files import write_focus
from monitor.demo.fleet import DemoProject
from monitor.ingest import parse_events, parse_samples
from monitor.store.store import Store

log = logging.getLogger("mlmon.demo")

LIVE_EVERY = timedelta(minutes=5)


def push_history(store: Store, fleet: Sequence[DemoProject], anchor: datetime, start: datetime, end: datetime) -> int:
    """Push every project's samples of [start, end]; the count pushed."""
    projects = {p.id for p in fleet}
    now_ms = ms_from_datetime(end)
    pushed = 0
    for project in fleet:
        body = orjson.dumps({"samples": history.samples(project, anchor, start, end)})
        batch = parse_samples(body, projects, now_ms)
        store.samples.append(batch)
        pushed += len(batch)
    return pushed


def push_events(store: Store, fleet: Sequence[DemoProject], anchor: datetime, now: datetime) -> int:
    body = orjson.dumps({"events": history.events(fleet, anchor)})
    batch = parse_events(body, {p.id for p in fleet}, ms_from_datetime(now))
    return store.events.add(batch)


class LiveFeed:
    """Pushes a new evaluation per project and rewrites the bill every LIVE_EVERY."""

    def __init__(self, store: Store, fleet: Sequence[DemoProject], data: Path, anchor: datetime, clock: Clock):
        self.store, self.fleet, self.data, self.anchor, self.clock = store, fleet, data, anchor, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlmon-demo-feed", daemon=True)
        self._last = clock.now()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def tick(self, now: datetime) -> int:
        """One round: the evaluations since the last round, and the bill up to `now`."""
        pushed = push_history(self.store, self.fleet, self.anchor, self._last, now)
        write_focus(self.data, self.fleet, now)
        self._last = now
        return pushed

    def _run(self) -> None:
        while not self._stop.wait(LIVE_EVERY.total_seconds()):
            try:
                self.tick(self.clock.now())
            except Exception:
                # The demo's own feed failing must not stop the server; its sources go stale and say so.
                log.exception("the demo feed could not push its evaluation or rewrite the bill")
