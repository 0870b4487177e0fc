"""The dispatcher on a frozen clock: the `alertmanager` integration hears of a resolution (and of a
new firing alert) at the evaluation that made it, not at the next resend; a fully resolved group
is kept, so an alert firing again is notified at the group's next tick."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from alerts.payloads import iso
from alerts.store import GroupStore
from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.services import Services
from tests.conftest import RuntimeFactory, token_headers
from tests.support.sinks import WebhookSink

CONFIG = """
alerting: {{evaluation_interval: 30s, resend_delay: 1m, external_url: "http://mlmon.test"}}
projects:
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
rules:
  - name: accuracy-low
    kind: threshold
    labels: {{severity: critical}}
    params: {{metric: accuracy, op: "<", value: 0.90}}
receivers:
  - name: am
    alertmanager: {{urls: ["{am}"]}}
  - name: hook
    webhook: {{url: "{hook}"}}
route:
  receiver: hook
  group_by: [project, alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - {{matchers: ['severity="critical"'], receiver: am, continue: true}}
"""


class World:
    def __init__(self, client: TestClient, services: Services, clock: FrozenClock) -> None:
        self.client, self.services, self.clock = client, services, clock

    def push(self, value: float) -> None:
        sample = {"project": "churn", "metric": "accuracy", "labels": {"model": "m"}, "value": value}
        assert self.client.post("/api/v1/samples", json={"samples": [sample]}).status_code == 200

    def step(self, seconds: float = 0) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self.services.loops.dispatcher.tick()
        self.services.loops.deliverer.deliver_due()


@pytest.fixture
def sinks() -> Iterator[tuple[WebhookSink, WebhookSink]]:
    am, hook = WebhookSink(path="/api/v2/alerts"), WebhookSink()
    am.open()
    hook.open()
    yield am, hook
    am.close()
    hook.close()


@pytest.fixture
def world(make_runtime: RuntimeFactory, clock: FrozenClock, sinks: tuple[WebhookSink, WebhookSink]) -> Iterator[World]:
    am, hook = sinks
    runtime = make_runtime(CONFIG.format(am=f"http://127.0.0.1:{am.port}", hook=hook.url), clock=clock)
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        services = Services.build(runtime)
        try:
            yield World(client, services, clock)
        finally:
            services.http_senders.close()


def test_alertmanager_hears_of_a_resolution_and_a_refire_at_once(
    world: World, sinks: tuple[WebhookSink, WebhookSink]
) -> None:
    am, _ = sinks
    world.push(0.8)
    world.step()
    assert len(am.accepted()) == 1, "a new firing alert goes out at the evaluation that fired it"
    world.clock.advance(timedelta(seconds=10))  # well inside resend_delay
    world.push(0.95)
    resolved_at = world.clock.now()
    world.step()
    [_, resolution] = am.accepted()
    [posted] = resolution.json()
    assert posted["endsAt"] == iso(resolved_at), "the resolution is sent at once, not at the next resend"
    world.step(5)
    world.push(0.8)
    refired_at = world.clock.now()
    world.step()
    [*_, refire] = am.accepted()
    assert len(am.accepted()) == 3
    [again] = refire.json()
    assert (
        again["startsAt"] == iso(refired_at)
        and datetime.fromisoformat(again["endsAt"].replace("Z", "+00:00")) > refired_at
    ), "the new firing alert goes out at once too"


def test_a_fully_resolved_group_is_kept_and_a_refire_waits_for_its_next_tick(
    world: World, sinks: tuple[WebhookSink, WebhookSink]
) -> None:
    _, hook = sinks
    world.push(0.8)
    world.step(30)  # group_wait
    assert len(hook.accepted()) == 1
    world.push(0.95)
    world.step(300)  # the next tick says it resolved
    [_, resolved] = hook.accepted()
    assert resolved.json()["status"] == "resolved"
    with world.services.runtime.store.engine.connect() as conn:
        kept = [g for g in GroupStore().load(conn).values() if g.route == "root"]
    assert len(kept) == 1 and kept[0].sent_firing == frozenset(), "the group lives on, with nothing announced"
    world.step(10)
    world.push(0.8)  # fires again 10 s after the resolved notification
    for _ in range(28):  # nothing before the group's next tick, 5 m after the last one
        world.step(10)
    assert len(hook.accepted()) == 2
    world.step(10)
    [*_, refired] = hook.accepted()
    assert len(hook.accepted()) == 3 and refired.json()["status"] == "firing"
