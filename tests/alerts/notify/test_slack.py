"""Slack incoming-webhook notifications, posted to a real local sink whose URL comes from the
environment variable the receiver names (`url_env`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from alerts.store import OutboxStore
from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.runtime import Runtime
from monitor.services import Services
from tests.conftest import RuntimeFactory, token_headers
from tests.support.sinks import WebhookSink

URL_ENV = "MLMON_TEST_SLACK_WEBHOOK_URL"

CONFIG = """
projects:
  - id: churn
    name: Churn classifier
    owners:
      - {{name: Ada, email: ada@example.com, slack: "@ada"}}
      - {{name: Bob, slack: U024BE7LH}}
      - {{name: Carol, email: carol@example.com}}
rules:
  - name: accuracy-low
    kind: threshold
    labels: {{severity: critical}}
    params: {{metric: accuracy, op: "<", value: 0.90}}
    annotations:
      summary: "{{{{ project.name }}}} accuracy is {{{{ value | percent }}}}"
      runbook_url: https://runbooks.example.com/accuracy
receivers:
  - name: team-slack
    slack: {{url_env: {url_env}, channel: "#ml-alerts", mention_owners: {mention}}}
route:
  receiver: team-slack
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 1h
"""


class Slack:
    def __init__(self, runtime: Runtime, client: TestClient) -> None:
        self.client = client
        self.services = Services.build(runtime)
        self.outbox = OutboxStore(runtime.store.engine)

    def push(self, value: float) -> None:
        sample = {"project": "churn", "metric": "accuracy", "labels": {"model": "m"}, "value": value}
        assert self.client.post("/api/v1/samples", json={"samples": [sample]}).status_code == 200

    def step(self) -> None:
        self.services.loops.dispatcher.tick()
        self.services.loops.deliverer.deliver_due()


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink(path="/services/T000/B000/XXXX") as made:
        yield made


def slack(make_runtime: RuntimeFactory, clock: FrozenClock, mention: bool = True) -> Iterator[Slack]:
    runtime = make_runtime(CONFIG.format(url_env=URL_ENV, mention=str(mention).lower()), clock=clock)
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        made = Slack(runtime, client)
        yield made
        made.services.http_senders.close()


def test_slack_body_mentions_the_owners(
    make_runtime: RuntimeFactory, clock: FrozenClock, sink: WebhookSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV, sink.url)
    for team in slack(make_runtime, clock):
        team.push(0.80)
        team.step()
        [request] = sink.accepted()
        assert request.path == "/services/T000/B000/XXXX"
        assert request.header("Content-Type") == "application/json"
        body = request.json()
        assert set(body) == {"text", "blocks", "channel"}
        assert body["channel"] == "#ml-alerts"
        text = body["text"]
        assert text.splitlines()[0] == "*[FIRING:1] accuracy-low - Churn classifier*"
        assert "@ada" in text and "<@U024BE7LH>" in text
        assert "Carol" not in text  # no Slack handle: not mentioned
        assert "[FIRING] Churn classifier accuracy is 80.0% (value 0.8)" in text
        assert "Runbook: https://runbooks.example.com/accuracy" in text
        assert body["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        key = request.header("Idempotency-Key")
        assert key and key == team.outbox.items()[0].idempotency_key

        clock.advance(timedelta(minutes=1))
        team.push(0.95)
        team.step()
        resolved = sink.accepted()[1].json()
        assert resolved["text"].splitlines()[0] == "*[RESOLVED] accuracy-low - Churn classifier*"
        assert "[RESOLVED] Churn classifier accuracy is 95.0% (value 0.95)" in resolved["text"]


def test_no_mentions_when_turned_off(
    make_runtime: RuntimeFactory, clock: FrozenClock, sink: WebhookSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV, sink.url)
    for team in slack(make_runtime, clock, mention=False):
        team.push(0.80)
        team.step()
        text = sink.accepted()[0].json()["text"]
        assert "@ada" not in text and "U024BE7LH" not in text


def test_a_missing_url_variable_is_retried_until_it_is_set(
    make_runtime: RuntimeFactory, clock: FrozenClock, sink: WebhookSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    for team in slack(make_runtime, clock):
        team.push(0.80)
        team.step()
        [item] = team.outbox.items()
        assert item.status == "pending"
        assert item.last_error == f"slack: environment variable {URL_ENV} is not set"
        assert sink.requests() == []

        monkeypatch.setenv(URL_ENV, sink.url)
        clock.set(item.next_attempt_at)
        team.step()
        [item] = team.outbox.items()
        assert item.status == "sent" and item.attempts == 2
        [request] = sink.accepted()
        assert request.header("Idempotency-Key") == item.idempotency_key
