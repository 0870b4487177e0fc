"""The scheduler: one APScheduler 3.x job per configured source, plus maintenance jobs.

This is the only module that imports apscheduler. Jobs are built from the configuration at
start and on reload (nothing is pickled); `coalesce=True` and `max_instances=1` mean a slow
source never piles up runs. Jobs run only while this process is the leader.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.leader import Elector, lock_for
from monitor.plans import SourcePlan
from monitor.runner import SourceRunner
from monitor.runtime import Runtime

log = logging.getLogger("mlmon.scheduler")

SOURCE_PREFIX = "source:"
FIRST_RUN_SPREAD_SECONDS = 3.0


@dataclass(frozen=True)
class MaintenanceJob:
    name: str
    seconds: float
    run: Callable[[], object]
    first_delay: float = 1.0


class Scheduler:
    def __init__(self, runtime: Runtime, runner: SourceRunner, workers: int = 8) -> None:
        self.runtime = runtime
        self.runner = runner
        self._plans: dict[str, SourcePlan] = {}
        self._maintenance: list[MaintenanceJob] = []
        self._sched = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._elector: Elector | None = None
        runtime.on_reload("scheduler", lambda _config, plans: self.apply(plans))

    # --- jobs -----------------------------------------------------------------------------------

    def add_maintenance(self, job: MaintenanceJob) -> None:
        self._maintenance.append(job)
        self._sched.add_job(
            _guarded(job.name, job.run),
            IntervalTrigger(seconds=job.seconds, timezone=UTC),
            id=f"maintenance:{job.name}",
            name=job.name,
            replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=job.first_delay),
        )

    def apply(self, plans: list[SourcePlan]) -> None:
        """Make the jobs match `plans`: add new, reschedule changed, remove gone."""
        if self._elector is not None:
            self._elector.poll_seconds = self._poll_seconds(plans)
        wanted = {p.id: p for p in plans}
        for job in self._sched.get_jobs():
            if job.id.startswith(SOURCE_PREFIX) and job.id[len(SOURCE_PREFIX) :] not in wanted:
                job.remove()
        for plan_id, plan in wanted.items():
            previous = self._plans.get(plan_id)
            self._plans[plan_id] = plan
            if previous is not None and previous.config.interval == plan.config.interval:
                continue
            interval = plan.interval_seconds
            self._sched.add_job(
                self._run_source,
                IntervalTrigger(seconds=interval, jitter=min(interval * 0.1, 10.0), timezone=UTC),
                args=[plan_id],
                id=SOURCE_PREFIX + plan_id,
                name=plan_id,
                replace_existing=True,
                next_run_time=datetime.now(UTC)
                + timedelta(seconds=random.uniform(0, min(FIRST_RUN_SPREAD_SECONDS, interval))),
            )
        for gone in set(self._plans) - set(wanted):
            del self._plans[gone]

    def _run_source(self, plan_id: str) -> None:
        plan = self._plans.get(plan_id)
        if plan is not None:
            self.runner.run(plan)

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self._sched.get_jobs())

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self, elect: bool = True) -> None:
        """Start paused; run jobs once this process is (or becomes) the leader."""
        self.apply(self.runtime.plans)
        self._sched.start(paused=True)
        if not elect:
            self._become_leader()
            return
        self._elector = Elector(
            lock_for(self.runtime.store.engine),
            self._poll_seconds(self.runtime.plans),
            self._become_leader,
            self._step_down,
        )
        self._elector.start()

    def _poll_seconds(self, plans: list[SourcePlan]) -> float:
        shortest = min((p.interval_seconds for p in plans), default=60.0)
        return max(0.2, min(self.runtime.settings.leader_poll_seconds, shortest / 2))

    def _become_leader(self) -> None:
        self.runtime.telemetry.leader.set(1)
        if not self.runner.stopping.is_set():
            self._sched.resume()

    def _step_down(self) -> None:
        self.runtime.telemetry.leader.set(0)
        self._sched.pause()

    @property
    def is_leader(self) -> bool:
        return self._elector.leader if self._elector else self._sched.running

    def quiesce(self) -> None:
        """On SIGTERM: start no new source run; the runs in flight give up within a short grace."""
        self.runner.stop()
        if self._sched.running:
            self._sched.pause()

    def shutdown(self) -> None:
        self.quiesce()
        if self._elector is not None:
            self._elector.stop()
        if self._sched.running:
            self._sched.shutdown(wait=True)


def _guarded(name: str, fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except Exception:
            log.exception("maintenance job %s failed", name)

    return run
