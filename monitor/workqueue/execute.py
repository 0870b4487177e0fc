"""What a worker does with one queued run: find the source in its configuration, fence it
(fence.py), run it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from monitor.plans import SourcePlan
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.workqueue.fence import Fences

log = logging.getLogger("mlmon.workqueue")


@dataclass
class QueuedRuns:
    """The task body of a worker: `(source id, job id, due)` -> one stored run."""

    runtime: Runtime
    runner: SourceRunner
    worker: str
    fences: Fences
    _plans: tuple[int, dict[str, SourcePlan]] = field(default=(0, {}))

    def __call__(
        self, source_id: str, job_id: int, due: str, attempts: int = 0, collected: Callable[[], None] | None = None
    ) -> None:
        plan = self._plan(source_id)
        if plan is None:
            log.warning("job %d names source %s, which this worker's configuration lacks; skipped", job_id, source_id)
            return
        with self.fences.hold(source_id) as alone:
            if not alone:
                log.warning("job %d: another run of %s is still in progress; this one is dropped", job_id, source_id)
                return
            if attempts and self.runtime.store.sources.ran_job(job_id):
                # a retry of a run whose worker stored it and died before telling the queue
                log.info("job %d (%s) was already stored by its first worker; not run twice", job_id, source_id)
                return
            self.runner.run(plan, worker=self.worker, job_id=job_id, collected=collected)

    def _plan(self, source_id: str) -> SourcePlan | None:
        plans = self.runtime.plans
        key, by_id = self._plans
        if key != id(plans):  # the configuration was reloaded: index its plans again
            by_id = {p.id: p for p in plans}
            self._plans = (id(plans), by_id)
        return by_id.get(source_id)
