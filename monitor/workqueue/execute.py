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

from sqlalchemy import Engine, text

from monitor.plans import SourcePlan
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.workqueue.names import FENCE_CLASS

log = logging.getLogger("mlmon.workqueue")


@contextmanager
def fenced(engine: Engine, plan_id: str) -> Iterator[bool]:
    """Yield True while this process alone runs `plan_id` (False: another run holds it)."""
    with engine.connect() as conn:
        got = conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:cls, hashtext(:key))"), {"cls": FENCE_CLASS, "key": plan_id}
        ).scalar()
        try:
            yield bool(got)
        finally:
            conn.rollback()  # ends the transaction, which releases the lock


@dataclass
class QueuedRuns:
    """The task body of a worker: `(source id, job id, due)` -> one stored run."""

    runtime: Runtime
    runner: SourceRunner
    worker: str
    _plans: tuple[int, dict[str, SourcePlan]] = field(default=(0, {}))

    def __call__(self, source_id: str, job_id: int, due: str, attempts: int = 0) -> None:
        plan = self._plan(source_id)
        if plan is None:
            log.warning("job %d names source %s, which this worker's configuration lacks; skipped", job_id, source_id)
            return
        with fenced(self.runtime.store.engine, source_id) as alone:
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
