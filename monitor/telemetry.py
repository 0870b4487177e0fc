"""mlmon's own per-process metrics (HTTP, ingest, reloads, leadership).

Numbers that must agree across processes (source health, stored series) are not here: the
StoreCollector reads them from the store at scrape time.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Telemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http_requests = Counter(
            "mlmon_http_requests", "HTTP requests served", ["method", "route", "status"], registry=registry
        )
        self.http_duration = Histogram(
            "mlmon_http_request_duration_seconds",
            "Time to serve an HTTP request",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.samples_ingested = Counter("mlmon_ingest_samples", "Samples accepted through the API", registry=registry)
        self.batches_rejected = Counter(
            "mlmon_ingest_rejected_batches",
            "Sample batches rejected as invalid",
            ["reason"],
            registry=registry,
        )
        self.reload_successful = Gauge(
            "mlmon_config_last_reload_successful",
            "1 when the last configuration (re)load succeeded, 0 when the file was refused",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.reload_timestamp = Gauge(
            "mlmon_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.notifications = Counter(
            "mlmon_notifications", "Notifications delivered", ["integration"], registry=registry
        )
        self.notifications_failed = Counter(
            "mlmon_notifications_failed",
            "Notifications given up (kept as failed in the outbox)",
            ["integration"],
            registry=registry,
        )
        self.notification_requests = Counter(
            "mlmon_notification_requests", "Delivery attempts", ["integration"], registry=registry
        )
        self.notification_retries = Counter(
            "mlmon_notification_requests_failed",
            "Delivery attempts that failed and will be retried",
            ["integration"],
            registry=registry,
        )
        self.notification_latency = Histogram(
            "mlmon_notification_request_duration_seconds",
            "Time of one delivery attempt",
            ["integration"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.rule_evaluation_seconds = Gauge(
            "mlmon_rule_evaluation_duration_seconds",
            "Duration of the last full evaluation cycle",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.rule_evaluation_failures = Counter(
            "mlmon_rule_evaluation_failures", "Rule evaluations that raised", ["rule"], registry=registry
        )
        self.rule_last_evaluation = Gauge(
            "mlmon_rule_last_evaluation_timestamp_seconds",
            "When the last full evaluation cycle ended",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.leader = Gauge(
            "mlmon_scheduler_leader",
            "1 when this process runs the scheduled jobs (holds the leader lock)",
            registry=registry,
            multiprocess_mode="liveall",
        )
