"""Wiring of the long-running parts around a Runtime: the source runner, the alert engine and its
loops, the scheduler and its maintenance jobs. `serve`, `worker` and `collect` use it."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from alerts.delivery import Deliverer
from alerts.dispatcher import Dispatcher
from alerts.engine import AlertEngine
from alerts.kinds import REGISTRY as RULE_KINDS
from alerts.loops import AlertLoops
from alerts.notify.base import Sender
from alerts.notify.email import send_email
from alerts.notify.http import HttpSenders
from monitor import jobs as stack_jobs
from monitor.http import HttpFactory
from monitor.plans import SourcePlan
from monitor.providers import engine_extras
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.scheduler import MaintenanceJob, Scheduler
from monitor.store import migrate
from monitor.store.retention import apply_retention
from monitor.workqueue.batch import DueBatcher
from monitor.workqueue.names import uses_queue

if TYPE_CHECKING:
    from monitor.workqueue.node import QueueNode

log = logging.getLogger("mlmon.services")

RETENTION_EVERY_SECONDS = 3600.0
QUEUE_KEEP_HOURS = 24
"""Finished queue jobs kept this long (each run's outcome stays in source_runs)."""
QUEUE_STATISTICS_EVERY_SECONDS = 2.0
"""How often the leader looks whether the jobs table needs new planner statistics (one catalog
read; the ANALYZE itself only after a burst of enqueued or finished runs)."""


@dataclass(frozen=True)
class WorkerRole:
    """What this process takes from the PostgreSQL job queue (ignored on SQLite)."""

    queues: tuple[str, ...] = ("default",)
    concurrency: int = 8
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")


class SchemaNotReady(Exception):
    """The database schema is behind; `mlmon migrate` must run first."""


def prepare_database(runtime: Runtime, *, auto_migrate_empty_sqlite: bool = True) -> None:
    """Migrate an empty SQLite database; refuse to run on any schema that is not at head."""
    engine = runtime.store.engine
    if auto_migrate_empty_sqlite and engine.dialect.name == "sqlite" and migrate.is_empty(engine):
        log.info("empty SQLite database: creating the schema")
        migrate.upgrade(engine)
        return
    current, head = migrate.current_revision(engine), migrate.head_revision(engine)
    if current != head:
        raise SchemaNotReady(
            f"the database schema is at {current or 'no revision'} but this mlmon needs {head}; run `mlmon migrate`"
        )


def build_engine(runtime: Runtime) -> AlertEngine:
    """The alert engine, evaluating right after each ingest that touches a rule's series."""
    config = lambda: runtime.config  # noqa: E731 - the current configuration, read at each use
    engine = AlertEngine(runtime.store, runtime.clock, RULE_KINDS, config, engine_extras(config))
    runtime.on_ingest(engine.on_ingest)
    return engine


@dataclass
class Services:
    runtime: Runtime
    runner: SourceRunner
    engine: AlertEngine
    scheduler: Scheduler
    loops: AlertLoops
    http_senders: HttpSenders
    queue: QueueNode | None = None
    """The job queue on PostgreSQL: the leader enqueues due runs, this process runs its queues'."""
    batcher: DueBatcher | None = None

    @classmethod
    def build(cls, runtime: Runtime, engine: AlertEngine | None = None, role: WorkerRole | None = None) -> Services:
        engine = engine or build_engine(runtime)
        runner = SourceRunner(runtime.store, runtime.clock, HttpFactory(), listeners=[runtime.ingested])
        queue = _queue_node(runtime, runner, role or WorkerRole())
        batcher = DueBatcher(queue) if queue is not None else None
        scheduler = Scheduler(runtime, runner, dispatch=_enqueuer(runtime, batcher) if batcher else None)
        telemetry = runtime.telemetry
        http = HttpSenders()
        senders: dict[str, Sender] = {
            "webhook": http.webhook,
            "slack": http.slack,
            "alertmanager": http.alertmanager,
            "email": send_email,
        }

        def observe(integration: str, outcome: str, seconds: float) -> None:
            telemetry.notification_requests.labels(integration).inc()
            telemetry.notification_latency.labels(integration).observe(seconds)
            if outcome == "sent":
                telemetry.notifications.labels(integration).inc()
            elif outcome == "retry":
                telemetry.notification_retries.labels(integration).inc()
            else:
                telemetry.notifications_failed.labels(integration).inc()

        dispatcher = Dispatcher(runtime.store, runtime.clock, lambda: runtime.config, runtime.settings.base_url)
        deliverer = Deliverer(runtime.store, runtime.clock, lambda: runtime.config, senders, observe=observe)
        loops = AlertLoops(dispatcher, deliverer, runtime.clock, lambda: scheduler.is_leader)
        engine.on_change = loops.poke

        def evaluate() -> None:
            report = engine.evaluate()
            telemetry.rule_evaluation_seconds.set(report.seconds)
            telemetry.rule_last_evaluation.set(runtime.clock.now().timestamp())
            for rule in report.failures:
                telemetry.rule_evaluation_failures.labels(rule.split("/", 1)[0]).inc()

        interval = runtime.config.alerting.evaluation_interval.total_seconds()
        scheduler.add_maintenance(MaintenanceJob("evaluate", interval, evaluate, first_delay=1.0))
        scheduler.add_maintenance(
            MaintenanceJob("retention", RETENTION_EVERY_SECONDS, lambda: _retention(runtime), first_delay=60.0)
        )
        scheduler.add_maintenance(MaintenanceJob("overrides", 15.0, runtime.refresh_overrides, first_delay=15.0))
        for job in stack_jobs.maintenance_jobs(runtime):
            scheduler.add_maintenance(job)
        if queue is not None:
            reap_every = max(1.0, runtime.settings.worker_heartbeat_seconds)
            scheduler.add_maintenance(MaintenanceJob("reap-stalled-runs", reap_every, lambda: _reap(queue)))
            scheduler.add_maintenance(
                MaintenanceJob("queue-statistics", QUEUE_STATISTICS_EVERY_SECONDS, queue.keep_statistics)
            )
            scheduler.add_maintenance(
                MaintenanceJob(
                    "queue-retention", RETENTION_EVERY_SECONDS, lambda: queue.prune(QUEUE_KEEP_HOURS), first_delay=90.0
                )
            )
        return cls(runtime, runner, engine, scheduler, loops, http, queue, batcher)

    def start(self, elect: bool = True) -> None:
        if self.queue is not None:
            self.queue.start()
        if self.batcher is not None:
            self.batcher.start()
        self.scheduler.start(elect=elect)
        self.loops.start()

    def quiesce(self) -> None:
        """Called as soon as a stop is asked for (before the web server drains its connections)."""
        self.scheduler.quiesce()

    def stop(self) -> None:
        # The queue first: it takes no new run and lets the ones in flight finish and be marked
        # done (the runner's stop below would cut them short and leave the queue to retry them).
        if self.batcher is not None:
            self.batcher.stop()
        if self.queue is not None:
            self.queue.stop()
        self.loops.stop()
        self.scheduler.shutdown()
        self.http_senders.close()


def _queue_node(runtime: Runtime, runner: SourceRunner, role: WorkerRole) -> QueueNode | None:
    if not uses_queue(runtime.settings.database_url):
        return None
    from monitor.workqueue.execute import QueuedRuns
    from monitor.workqueue.fence import Fences
    from monitor.workqueue.node import NodeOptions, QueueNode

    settings = runtime.settings
    options = NodeOptions(
        name=role.name,
        queues=role.queues,
        concurrency=role.concurrency,
        heartbeat_seconds=settings.worker_heartbeat_seconds,
        stalled_seconds=settings.worker_stalled_seconds,
    )
    fences = Fences(settings.database_url, options.job_threads)  # a fence per job thread
    execute = QueuedRuns(runtime, runner, role.name, fences)
    return QueueNode(settings.database_url, options, execute, on_stopped=fences.close)


def _enqueuer(runtime: Runtime, batcher: DueBatcher) -> Callable[[SourcePlan], object]:
    def enqueue(plan: SourcePlan) -> None:
        batcher.submit(plan.id, plan.config.queue, runtime.clock.now())

    return enqueue


def _reap(queue: QueueNode) -> None:
    report = queue.reap()
    if report.retried or report.failed:
        log.warning("stalled runs: %d retried, %d failed", len(report.retried), len(report.failed))


def _retention(runtime: Runtime) -> None:
    policy = runtime.config.retention
    report = apply_retention(runtime.store.engine, runtime.clock.now(), policy.raw, policy.hourly, policy.source_runs)
    if report.downsampled_rows or report.hourly_rows_deleted or report.runs_deleted:
        log.info("retention: %s", report)
