"""The engine's background loops: dispatch (groups -> outbox) and delivery (outbox -> receivers).

Each loop sleeps until its next deadline (a group's next flush, a retry's next attempt) or until
poked, at most `max_sleep`; so a notification with `group_wait: 0` leaves within milliseconds of
the evaluation that fired it. The loops do work only while `active()` (this process leads).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from alerts.delivery import Deliverer
from alerts.dispatcher import Dispatcher
from monitor.core.clock import Clock

log = logging.getLogger("mlmon.alerts.loops")


class Loop:
    def __init__(
        self,
        name: str,
        work: Callable[[], datetime | None],
        clock: Clock,
        active: Callable[[], bool],
        max_sleep: float = 1.0,
    ) -> None:
        self.name = name
        self.work = work
        self.clock = clock
        self.active = active
        self.max_sleep = max_sleep
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            due: datetime | None = None
            if self.active():
                try:
                    due = self.work()
                except Exception:
                    log.exception("%s loop iteration failed", self.name)
            sleep = self.max_sleep
            if due is not None:
                sleep = max(0.0, min(sleep, (due - self.clock.now()).total_seconds()))
            self._wake.wait(sleep)
            self._wake.clear()


class AlertLoops:
    def __init__(self, dispatcher: Dispatcher, deliverer: Deliverer, clock: Clock, active: Callable[[], bool]) -> None:
        self.dispatcher = dispatcher
        self.deliverer = deliverer
        self.delivery = Loop("alert-delivery", self._deliver, clock, active)
        self.dispatch = Loop("alert-dispatch", self._dispatch, clock, active)

    def _dispatch(self) -> datetime | None:
        report = self.dispatcher.tick()
        if report.enqueued:
            self.delivery.poke()
        return report.next_flush_at

    def _deliver(self) -> datetime | None:
        self.deliverer.deliver_due()
        return self.deliverer.next_due()

    def start(self) -> None:
        self.delivery.start()
        self.dispatch.start()

    def poke(self) -> None:
        self.dispatch.poke()

    def stop(self) -> None:
        self.dispatch.stop()
        self.delivery.stop()
