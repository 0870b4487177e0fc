"""`/metrics`: the latest value of every stored series, and source health, read from the store at
scrape time (the client_python custom-collector pattern), so every web worker gives the same answer."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from alerts.store import AlertStore, OutboxStore
from monitor.config.models import MlmonConfig
from monitor.core.clock import Clock
from monitor.core.naming import EXPORT_PREFIX
from monitor.quality import metrics as quality_metrics
from monitor.spend import metrics as spend_metrics
from monitor.stack import metrics as stack_metrics
from monitor.store.store import Store

log = logging.getLogger("mlmon.exposition")

SOURCE_LABELS = ["project", "source", "kind"]


class StoreCollector:
    """Reads the store at each scrape; no state carries over between scrapes."""

    def __init__(self, store: Store, config: Callable[[], MlmonConfig], clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    def describe(self) -> list[Metric]:
        # Families depend on what is stored; an empty description keeps registration free of I/O.
        return []

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily(
            "mlmon_scrape_store_readable", "1 when this scrape could read the store, 0 when it could not"
        )
        try:
            families = [*self._series(), *self._sources(), *self._alerts()]
            for family in (stack_metrics, quality_metrics, spend_metrics):
                families.extend(family.families(self.store, self.config()))
        except Exception:
            log.exception("reading the store for /metrics failed")
            families = []
            ok.add_metric([], 0.0)
        else:
            ok.add_metric([], 1.0)
        yield from families
        yield from self._projects()
        yield ok

    def _series(self) -> Iterator[Metric]:
        by_metric: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        for key, point in self.store.samples.latest_all():
            by_metric[key.metric].append(({"project": key.project, **dict(key.labels)}, point.value))
        for metric in sorted(by_metric):
            family = Metric(EXPORT_PREFIX + metric, f"Latest stored value of the series {metric}", "gauge")
            for labels, value in by_metric[metric]:
                family.add_sample(family.name, labels, value)
            yield family

    def _sources(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("mlmon_source_up", "1 when the source's last run succeeded", labels=SOURCE_LABELS)
        success = GaugeMetricFamily(
            "mlmon_source_last_success_timestamp_seconds",
            "When the source last succeeded",
            labels=SOURCE_LABELS,
        )
        last_run = GaugeMetricFamily(
            "mlmon_source_last_run_timestamp_seconds", "When the source last ran", labels=SOURCE_LABELS
        )
        failing = GaugeMetricFamily("mlmon_source_consecutive_failures", "Failed runs in a row", labels=SOURCE_LABELS)
        duration = SummaryMetricFamily(
            "mlmon_source_run_duration_seconds", "Duration of the source's runs", labels=SOURCE_LABELS
        )
        failures = CounterMetricFamily("mlmon_source_failures", "Failed runs of the source", labels=SOURCE_LABELS)
        for s in self.store.sources.statuses(checkpoints=False):
            labels = [s.project, s.source, s.kind]
            up.add_metric(labels, 1.0 if s.up else 0.0)
            if s.last_success_at is not None:
                success.add_metric(labels, s.last_success_at.timestamp())
            if s.last_run_at is not None:
                last_run.add_metric(labels, s.last_run_at.timestamp())
            failing.add_metric(labels, float(s.consecutive_failures))
            duration.add_metric(labels, count_value=s.runs_total, sum_value=s.run_seconds_total)
            failures.add_metric(labels, float(s.failures_total))
        yield from (up, success, last_run, failing, duration, failures)

    def _alerts(self) -> Iterator[Metric]:
        alerts = GaugeMetricFamily("mlmon_alerts", "Pending and firing alerts", labels=["project", "state", "severity"])
        for project, state, severity, count in AlertStore(self.store.engine).counts():
            alerts.add_metric([project or "", state, severity], float(count))
        counts, oldest = OutboxStore(self.store.engine).stats()
        outbox = GaugeMetricFamily(
            "mlmon_outbox_notifications", "Notifications in the outbox by state", labels=["integration", "status"]
        )
        for (integration, status), count in sorted(counts.items()):
            outbox.add_metric([integration, status], float(count))
        age = GaugeMetricFamily(
            "mlmon_outbox_oldest_pending_age_seconds", "Age of the oldest notification not yet delivered (0 if none)"
        )
        age.add_metric([], max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest else 0.0)
        yield from (alerts, outbox, age)

    def _projects(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "mlmon_project_info", "A configured project (always 1)", labels=["project", "name", "team"]
        )
        owners = GaugeMetricFamily("mlmon_project_owners", "Number of owners of the project", labels=["project"])
        for project in self.config().projects:
            info.add_metric([project.id, project.display_name, project.team or ""], 1.0)
            owners.add_metric([project.id], float(len(project.owners)))
        yield from (info, owners)


def build_registry(process: CollectorRegistry, store_collector: StoreCollector) -> CollectorRegistry:
    """The registry `/metrics` serves: per-process metrics plus the store's view.

    With PROMETHEUS_MULTIPROC_DIR set (several uvicorn workers), per-process metrics are merged from
    the shared directory; the store's view is the same from every worker anyway.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        served = CollectorRegistry()
        MultiProcessCollector(served)  # type: ignore[no-untyped-call]
    else:
        served = process
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            served.register(collector)
    served.register(store_collector)
    return served
