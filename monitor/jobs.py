"""The stack family's maintenance job, for the scheduler (runs on the leader only).

Every `stack.sync_interval`: ingest new inventories from source checkpoints, refresh the advisory
and release feeds whose own refresh interval has passed, reconcile the findings history. Wired by
`monitor.services.Services.build` (see docs/stack.md: "Service wiring").
"""

from __future__ import annotations

import logging
import os

from monitor.http import HttpFactory
from monitor.runtime import Runtime
from monitor.scheduler import MaintenanceJob
from monitor.stack.sync import tick

log = logging.getLogger("mlmon.stack.jobs")


def sync_once(runtime: Runtime) -> None:
    report = tick(runtime.store, runtime.config, runtime.clock.now(), HttpFactory(), os.environ)
    rec = report.reconcile
    if rec.reconciled or report.ingest.updated or any(f.ran for f in report.feeds):
        log.info(
            "stack sync: %d inventories, feeds %s, %d projects reconciled (+%d -%d ~%d) in %.2fs",
            len(report.ingest.updated),
            [f.name for f in report.feeds if f.ran],
            rec.reconciled,
            rec.opened,
            rec.resolved,
            rec.changed,
            rec.seconds,
        )
    for where, error in {**report.ingest.errors, **rec.errors}.items():
        log.error("stack sync: %s: %s", where, error)


def maintenance_jobs(runtime: Runtime) -> list[MaintenanceJob]:
    seconds = runtime.config.stack.sync_interval.total_seconds()
    return [MaintenanceJob("stack-sync", seconds, lambda: sync_once(runtime), first_delay=5.0)]
