"""Wiring of the long-running parts around a Runtime: the source runner, the alert engine and its
loops, the scheduler and its maintenance jobs. `serve`, `worker` and `collect` use it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
from monitor.providers import engine_extras
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.scheduler import MaintenanceJob, Scheduler
from monitor.store import migrate
from monitor.store.retention import apply_retention

log = logging.getLogger("mlmon.services")

RETENTION_EVERY_SECONDS = 3600.0


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

    @classmethod
    def build(cls, runtime: Runtime, engine: AlertEngine | None = None) -> Services:
        engine = engine or build_engine(runtime)
        runner = SourceRunner(runtime.store, runtime.clock, HttpFactory(), listeners=[runtime.ingested])
        scheduler = Scheduler(runtime, runner)
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
        return cls(runtime, runner, engine, scheduler, loops, http)

    def start(self, elect: bool = True) -> None:
        self.scheduler.start(elect=elect)
        self.loops.start()

    def quiesce(self) -> None:
        """Called as soon as a stop is asked for (before the web server drains its connections)."""
        self.scheduler.quiesce()

    def stop(self) -> None:
        self.loops.stop()
        self.scheduler.shutdown()
        self.http_senders.close()


def _retention(runtime: Runtime) -> None:
    policy = runtime.config.retention
    report = apply_retention(runtime.store.engine, runtime.clock.now(), policy.raw, policy.hourly, policy.source_runs)
    if report.downsampled_rows or report.hourly_rows_deleted or report.runs_deleted:
        log.info("retention: %s", report)
