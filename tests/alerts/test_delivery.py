"""Webhook notifications end to end: samples pushed through the API, the real engine, dispatcher and
deliverer (as `Services.build` wires them), and a real local HTTP sink.

Most tests run on a frozen clock and drive the pipeline by hand (`tick` + `deliver_due`), so retries
and timers are exact; the last one runs the real background loops on the system clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from alerts.delivery import Backoff, DeliveryStats
from alerts.dispatcher import DispatchReport
from alerts.payloads import ZERO_TIME, iso
from alerts.store import OutboxItem, OutboxStore
from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.runtime import Runtime
from monitor.services import Services
from tests.conftest import T0, RuntimeFactory, token_headers
from tests.support.peers import shared_data, wait_until
from tests.support.sinks import WebhookSink

RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

CONFIG = """
alerting: {{evaluation_interval: 1s, external_url: "http://mlmon.test"}}
projects:
  - id: churn
    name: Churn classifier
    owners:
      - {{name: Ada, email: ada@example.com, slack: "@ada"}}
      - {{name: Grace, email: grace@example.com}}
  - id: vision
    owners:
      - {{name: Linus, email: linus@example.com}}
rules:
  - name: accuracy-low
    kind: threshold
    keep_firing_for: {keep_firing_for}
    labels: {{severity: critical}}
    params: {{metric: accuracy, op: "<", value: 0.90}}
    annotations:
      summary: "{{{{ project.name }}}} accuracy is {{{{ value | percent }}}}"
      runbook_url: https://runbooks.example.com/accuracy
receivers:
  - name: hook
    webhook: {{url: "{url}", timeout: {timeout}, max_alerts: {max_alerts}}}
route:
  receiver: hook
  group_by: [project, alertname]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 1h
"""


def config(sink: WebhookSink, keep_firing_for: str = "0s", timeout: str = "5s", max_alerts: int = 0) -> str:
    return CONFIG.format(url=sink.url, keep_firing_for=keep_firing_for, timeout=timeout, max_alerts=max_alerts)


class Pipeline:
    """The wired services of one runtime, driven by hand on a frozen clock."""

    def __init__(self, runtime: Runtime, client: TestClient) -> None:
        self.runtime = runtime
        self.client = client
        self.services = Services.build(runtime)
        self.outbox = OutboxStore(runtime.store.engine)
        clock = runtime.clock
        assert isinstance(clock, FrozenClock)
        self.clock = clock

    def push(self, value: float, project: str = "churn", model: str = "m") -> None:
        sample = {"project": project, "metric": "accuracy", "labels": {"model": model}, "value": value}
        response = self.client.post("/api/v1/samples", json={"samples": [sample]})
        assert response.status_code == 200, response.text

    def tick(self) -> DispatchReport:
        return self.services.loops.dispatcher.tick()

    def deliver(self) -> DeliveryStats:
        return self.services.loops.deliverer.deliver_due()

    def step(self) -> DeliveryStats:
        self.tick()
        return self.deliver()

    def items(self) -> list[OutboxItem]:
        return self.outbox.items()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.client.get("/metrics").text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    made = WebhookSink()
    yield made
    made.close()


def make_pipeline(runtime: Runtime) -> Iterator[Pipeline]:
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        pipeline = Pipeline(runtime, client)
        try:
            yield pipeline
        finally:
            pipeline.services.http_senders.close()


@pytest.fixture
def pipeline(make_runtime: RuntimeFactory, db_url: str, clock: FrozenClock, sink: WebhookSink) -> Iterator[Pipeline]:
    yield from make_pipeline(make_runtime(config(sink), database_url=db_url, clock=clock))


def recorded(name: str) -> Any:
    return json.loads(shared_data("recorded", "alertmanager", name).read_text())


def assert_same_shape(body: dict[str, Any], reference: dict[str, Any]) -> None:
    """Alertmanager's keys with Alertmanager's JSON types (plus mlmon's own `mlmon` object)."""
    assert set(body) == set(reference) | {"mlmon"}
    for key, value in reference.items():
        assert type(body[key]) is type(value), key
    alerts, ref_alerts = body["alerts"], reference["alerts"]
    assert isinstance(alerts, list) and isinstance(ref_alerts, list)
    for alert in alerts:
        assert set(alert) == set(ref_alerts[0])
        for key, value in ref_alerts[0].items():
            assert type(alert[key]) is type(value), f"alerts[].{key}"
        assert RFC3339_MS.fullmatch(alert["startsAt"])


# --- the body ---------------------------------------------------------------------------------------


def test_webhook_bodies_are_alertmanager_v4_plus_mlmon_fields(pipeline: Pipeline, sink: WebhookSink) -> None:
    sink.open()
    fired_at = pipeline.clock.now()
    pipeline.push(0.80)
    assert pipeline.step().sent == 1

    [firing] = sink.accepted()
    assert firing.method == "POST" and firing.path == "/hook"
    assert firing.header("Content-Type") == "application/json"
    body = firing.json()
    assert_same_shape(body, recorded("webhook_payload_firing.json"))
    labels = {"alertname": "accuracy-low", "project": "churn", "severity": "critical", "model": "m"}
    assert body["status"] == "firing" and body["version"] == "4" and body["receiver"] == "hook"
    assert body["groupLabels"] == {"project": "churn", "alertname": "accuracy-low"}
    assert body["commonLabels"] == labels
    assert body["groupKey"].startswith("{}") and body["groupKey"].endswith(
        ':{alertname="accuracy-low", project="churn"}'
    )
    assert body["externalURL"] == "http://mlmon.test" and body["truncatedAlerts"] == 0
    [alert] = body["alerts"]
    assert alert["status"] == "firing" and alert["labels"] == labels
    assert alert["annotations"] == {
        "summary": "Churn classifier accuracy is 80.0%",
        "runbook_url": "https://runbooks.example.com/accuracy",
    }
    assert body["commonAnnotations"] == alert["annotations"]
    assert alert["startsAt"] == iso(fired_at)
    assert alert["endsAt"] == ZERO_TIME == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"].startswith("http://mlmon.test/")
    mlmon = body["mlmon"]
    assert mlmon["idempotency_key"] == firing.header("Idempotency-Key")
    assert mlmon["notification_reason"] == "new_alert"
    assert mlmon["project"] == "churn"
    assert mlmon["owners"] == [
        {"name": "Ada", "email": "ada@example.com", "slack": "@ada"},
        {"name": "Grace", "email": "grace@example.com", "slack": None},
    ]
    assert [(a["state"], a["value"]) for a in mlmon["alerts"]] == [("firing", 0.80)]

    # still firing at another value: nothing new to say within the group
    pipeline.clock.advance(timedelta(seconds=30))
    pipeline.push(0.85)
    assert pipeline.step().sent == 0

    pipeline.clock.advance(timedelta(seconds=30))
    resolved_at = pipeline.clock.now()
    pipeline.push(0.95)
    assert pipeline.step().sent == 1
    resolved = sink.accepted()[1]
    body = resolved.json()
    assert_same_shape(body, recorded("webhook_payload_resolved.json"))
    assert body["status"] == "resolved"
    [alert] = body["alerts"]
    assert alert["status"] == "resolved" and alert["labels"] == labels
    assert alert["startsAt"] == iso(fired_at)
    assert alert["endsAt"] == iso(resolved_at) != ZERO_TIME
    # the value at resolution, not the last firing value (85%)
    assert alert["annotations"]["summary"] == "Churn classifier accuracy is 95.0%"
    assert body["commonAnnotations"]["summary"] == "Churn classifier accuracy is 95.0%"
    assert body["mlmon"]["notification_reason"] == "resolved"
    assert [(a["state"], a["value"]) for a in body["mlmon"]["alerts"]] == [("resolved", 0.95)]
    assert body["mlmon"]["idempotency_key"] == resolved.header("Idempotency-Key")
    assert body["mlmon"]["idempotency_key"] != firing.header("Idempotency-Key")
    assert body["groupKey"] == firing.json()["groupKey"]


def test_resolution_after_keep_firing_for_carries_the_resolving_value(
    make_runtime: RuntimeFactory, clock: FrozenClock, sink: WebhookSink
) -> None:
    sink.open()
    for pipeline in make_pipeline(make_runtime(config(sink, keep_firing_for="2m"), clock=clock)):
        pipeline.push(0.80)
        assert pipeline.step().sent == 1
        clock.advance(timedelta(minutes=1))
        pipeline.push(0.95)  # clear, but keep_firing_for holds it firing (showing 80%)
        assert pipeline.step().sent == 0
        clock.advance(timedelta(minutes=2))
        pipeline.push(0.97)
        assert pipeline.step().sent == 1
        body = sink.accepted()[1].json()
        assert body["status"] == "resolved"
        assert body["alerts"][0]["annotations"]["summary"] == "Churn classifier accuracy is 97.0%"
        assert body["alerts"][0]["endsAt"] == iso(clock.now())
        assert body["mlmon"]["alerts"][0]["value"] == 0.97


def test_max_alerts_truncates_like_alertmanager(
    make_runtime: RuntimeFactory, clock: FrozenClock, sink: WebhookSink
) -> None:
    sink.open()
    for pipeline in make_pipeline(make_runtime(config(sink, max_alerts=2), clock=clock)):
        for model in ("a", "b", "c"):
            pipeline.push(0.80, model=model)
        assert pipeline.step().sent == 1
        body = sink.accepted()[0].json()
        assert body["truncatedAlerts"] == 1
        sent = [a["labels"]["model"] for a in body["alerts"]]
        assert len(sent) == len(set(sent)) == 2 and set(sent) < {"a", "b", "c"}
        assert [a["fingerprint"] for a in body["mlmon"]["alerts"]] == [a["fingerprint"] for a in body["alerts"]]
        # like Alertmanager, the common labels are those of the alerts sent
        assert body["commonLabels"] == {
            "alertname": "accuracy-low",
            "project": "churn",
            "severity": "critical",
        }


# --- reliable delivery ------------------------------------------------------------------------------


def test_refused_then_500_then_accepted_delivers_everything_once_with_one_key_each(
    pipeline: Pipeline, sink: WebhookSink
) -> None:
    clock = pipeline.clock
    pipeline.push(0.80, "churn")
    pipeline.push(0.70, "vision")
    assert pipeline.tick().enqueued == 2
    keys = {item.idempotency_key for item in pipeline.items()}
    assert len(keys) == 2

    delays: dict[str, list[float]] = {key: [] for key in keys}

    def attempt(expect_error: str) -> None:
        stats = pipeline.deliver()
        assert (stats.sent, stats.retried, stats.failed) == (0, 2, 0)
        for item in pipeline.items():
            assert item.status == "pending"
            assert item.last_error is not None and expect_error in item.last_error, item.last_error
            delays[item.idempotency_key].append((item.next_attempt_at - clock.now()).total_seconds())
        assert pipeline.deliver() == DeliveryStats(), "nothing is due before its next attempt"
        clock.set(max(item.next_attempt_at for item in pipeline.items()))

    attempt("ConnectError")  # the port is closed
    sink.open()
    sink.answer(500, "temporarily broken")
    for _ in range(4):
        attempt("answered 500: temporarily broken")
    assert len(sink.requests(500)) == 8

    sink.accept()
    stats = pipeline.deliver()
    assert (stats.sent, stats.retried, stats.failed) == (2, 0, 0)
    assert {item.status for item in pipeline.items()} == {"sent"}
    assert all(item.attempts == 6 and item.last_error is None for item in pipeline.items())

    # every notification arrived exactly once; every attempt of one carried its one key
    assert sorted(str(r.header("Idempotency-Key")) for r in sink.accepted()) == sorted(keys)
    for request in sink.requests():
        key = request.header("Idempotency-Key")
        assert key in keys
        assert request.json()["mlmon"]["idempotency_key"] == key
    by_key = {key: [r.body for r in sink.requests() if r.header("Idempotency-Key") == key] for key in keys}
    assert all(len(set(bodies)) == 1 and len(bodies) == 5 for bodies in by_key.values())

    # exponential backoff with jitter: attempt n waits first * factor**(n-1), +-jitter
    backoff = Backoff()
    for series in delays.values():
        for n, delay in enumerate(series, start=1):
            base = backoff.first * backoff.factor ** (n - 1)
            assert base * (1 - backoff.jitter) <= delay <= base * (1 + backoff.jitter), (n, delay)
        assert series[-1] > 2 * series[0]
    ratios = [d / (backoff.first * backoff.factor**n) for series in delays.values() for n, d in enumerate(series)]
    assert len({round(r, 6) for r in ratios}) > 1, "the jitter spreads retries"


def test_a_receiver_that_answers_late_gets_the_duplicate_with_the_same_key(
    make_runtime: RuntimeFactory, clock: FrozenClock, sink: WebhookSink
) -> None:
    sink.open()
    sink.answer(200, delay=1.5)  # the receiver takes it, but answers after mlmon's timeout
    for pipeline in make_pipeline(make_runtime(config(sink, timeout="300ms"), clock=clock)):
        pipeline.push(0.80)
        stats = pipeline.step()
        assert stats.retried == 1
        [item] = pipeline.items()
        assert item.last_error is not None and "timed out" in item.last_error
        sink.accept()
        clock.set(item.next_attempt_at)
        assert pipeline.deliver().sent == 1
        first, second = sink.wait_for(2)
        assert first.body == second.body
        key = item.idempotency_key
        assert first.header("Idempotency-Key") == second.header("Idempotency-Key") == key
        assert first.json()["mlmon"]["idempotency_key"] == second.json()["mlmon"]["idempotency_key"] == key


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(400, "failed"), (404, "failed"), (422, "failed"), (429, "pending"), (503, "pending")],
)
def test_4xx_fails_for_good_with_the_answer_5xx_and_429_retry(
    make_runtime: RuntimeFactory, clock: FrozenClock, sink: WebhookSink, status: int, outcome: str
) -> None:
    sink.open()
    sink.answer(status, {"error": f"the receiver says {status}"})
    for pipeline in make_pipeline(make_runtime(config(sink), clock=clock)):
        pipeline.push(0.80)
        pipeline.step()
        [item] = pipeline.items()
        assert item.status == outcome
        assert item.last_error is not None
        assert f"answered {status}" in item.last_error and f"the receiver says {status}" in item.last_error
        clock.advance(timedelta(hours=1))
        pipeline.deliver()
        assert len(sink.requests()) == (1 if outcome == "failed" else 2)


def test_retries_give_up_after_a_day_and_keep_the_notification_as_failed(
    make_runtime: RuntimeFactory, clock: FrozenClock, sink: WebhookSink
) -> None:
    for pipeline in make_pipeline(make_runtime(config(sink), clock=clock)):
        pipeline.push(0.80)
        pipeline.step()
        clock.advance(timedelta(hours=23))
        assert pipeline.deliver().retried == 1
        clock.advance(timedelta(hours=2))
        assert pipeline.deliver().failed == 1
        [item] = pipeline.items()
        assert item.status == "failed"
        assert item.last_error is not None and item.last_error.startswith("gave up after 3 attempts: webhook:")
        assert pipeline.services.loops.deliverer.next_due() is None


# --- metrics ----------------------------------------------------------------------------------------


def test_outbox_and_notification_metrics(make_runtime: RuntimeFactory, sink: WebhookSink) -> None:
    clock = FrozenClock(datetime(2026, 11, 20, 12, tzinfo=UTC))
    for pipeline in make_pipeline(make_runtime(config(sink), clock=clock)):
        hook = (("integration", "webhook"),)
        assert pipeline.metrics()[("mlmon_outbox_oldest_pending_age_seconds", ())] == 0

        pipeline.push(0.80)
        pipeline.step()  # refused
        clock.advance(timedelta(minutes=10))
        metrics = pipeline.metrics()
        assert metrics[("mlmon_outbox_notifications", (*hook, ("status", "pending")))] == 1
        assert metrics[("mlmon_outbox_oldest_pending_age_seconds", ())] == 600
        assert metrics[("mlmon_notification_requests_total", hook)] == 1
        assert metrics[("mlmon_notification_requests_failed_total", hook)] == 1
        assert metrics.get(("mlmon_notifications_total", hook), 0) == 0

        sink.open()
        clock.advance(timedelta(minutes=1))
        assert pipeline.deliver().sent == 1
        metrics = pipeline.metrics()
        assert metrics[("mlmon_outbox_notifications", (*hook, ("status", "sent")))] == 1
        assert ("mlmon_outbox_notifications", (*hook, ("status", "pending"))) not in metrics
        assert metrics[("mlmon_outbox_oldest_pending_age_seconds", ())] == 0
        assert metrics[("mlmon_notification_requests_total", hook)] == 2
        assert metrics[("mlmon_notifications_total", hook)] == 1
        assert metrics[("mlmon_notification_request_duration_seconds_count", hook)] == 2

        sink.answer(400, "no")
        clock.advance(timedelta(minutes=1))
        pipeline.push(0.70, "vision")
        pipeline.step()
        metrics = pipeline.metrics()
        assert metrics[("mlmon_outbox_notifications", (*hook, ("status", "failed")))] == 1
        assert metrics[("mlmon_notifications_failed_total", hook)] == 1
        assert metrics[("mlmon_notification_requests_total", hook)] == 3


# --- the real loops ---------------------------------------------------------------------------------


def test_background_loops_deliver_through_refusal_and_500s(make_runtime: RuntimeFactory, sink: WebhookSink) -> None:
    runtime = make_runtime(config(sink))  # the system clock
    outbox = OutboxStore(runtime.store.engine)
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        services = Services.build(runtime)
        services.start(elect=False)
        try:
            sample = {"project": "churn", "metric": "accuracy", "labels": {"model": "m"}, "value": 0.5}
            assert client.post("/api/v1/samples", json={"samples": [sample]}).status_code == 200

            def failed_with(text: str) -> bool:
                return any(item.last_error and text in item.last_error for item in outbox.items())

            wait_until(lambda: failed_with("ConnectError"), timeout=30, what="a refused attempt")
            sink.open()
            sink.answer(500, "down for maintenance")
            wait_until(lambda: len(sink.requests(500)) >= 2, timeout=30, what="two attempts answered 500")
            sink.accept()
            [delivered] = sink.wait_for(1, timeout=30)
            wait_until(lambda: outbox.items()[0].status == "sent", timeout=10, what="the outbox to record it")
        finally:
            services.stop()
    [item] = outbox.items()
    assert item.attempts >= 4
    assert delivered.header("Idempotency-Key") == item.idempotency_key
    assert {r.header("Idempotency-Key") for r in sink.requests()} == {item.idempotency_key}
    assert len(sink.accepted()) == 1
    assert delivered.json()["alerts"][0]["labels"]["project"] == "churn"
    assert item.created_at > T0  # really the system clock
