"""Forwarding to a real Alertmanager (0.25, API v2): mlmon posts its alerts, keeps re-posting them
every `resend_delay` while they fire (so Alertmanager's `endsAt` keeps moving and the alert never
times out), and posts the resolution; Alertmanager notifies its own webhook receiver, a local sink.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from alerts.payloads import iso
from alerts.store import OutboxStore
from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.services import Services
from tests.conftest import RuntimeFactory, token_headers
from tests.support.peers import free_port, require_binary, stop_process, wait_http, wait_until
from tests.support.sinks import WebhookSink

RESEND = 2.0
VALIDITY = 4 * RESEND  # 4 x max(evaluation_interval, resend_delay), as Prometheus does

MLMON_CONFIG = """
alerting: {{evaluation_interval: 1s, resend_delay: 2s, external_url: "http://mlmon.test"}}
projects:
  - id: churn
    name: Churn classifier
    owners:
      - {{name: Ada, email: ada@example.com}}
rules:
  - name: accuracy-low
    kind: threshold
    labels: {{severity: critical}}
    params: {{metric: accuracy, op: "<", value: 0.90}}
    annotations:
      summary: "{{{{ project.name }}}} accuracy is {{{{ value | percent }}}}"
receivers:
  - name: am
    alertmanager: {{urls: ["{url}"]}}
route:
  receiver: am
  group_wait: 0s
  group_interval: 10s
  repeat_interval: 1h
"""

AM_CONFIG = """
global:
  resolve_timeout: 5m
route:
  receiver: sink
  group_by: [alertname, project]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: "{url}"
        send_resolved: true
"""


def alertmanager_binary() -> str:
    # Debian and Ubuntu install it as prometheus-alertmanager; upstream tarballs as alertmanager
    return shutil.which("alertmanager") or require_binary(
        "prometheus-alertmanager", "install the prometheus-alertmanager package (or put alertmanager on PATH)"
    )


@dataclass
class Alertmanager:
    url: str
    log: Path

    def alerts(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v2/alerts", params={"filter": 'alertname="accuracy-low"'}, timeout=5)
        response.raise_for_status()
        return list(response.json())


@pytest.fixture
def am_sink() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def alertmanager(tmp_path: Path, am_sink: WebhookSink) -> Iterator[Alertmanager]:
    binary = alertmanager_binary()
    config = tmp_path / "alertmanager.yml"
    config.write_text(AM_CONFIG.format(url=am_sink.url))
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # no gossip: a single instance
                "--log.level=debug",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready")
        yield Alertmanager(url, log)
    finally:
        stop_process(proc)


def parse_time(text: str) -> datetime:
    """Alertmanager writes Go's RFC3339Nano (trailing zeros of the fraction dropped)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.peer
@pytest.mark.slow
def test_mlmon_forwards_refreshes_and_resolves_alerts_in_alertmanager(
    make_runtime: RuntimeFactory, alertmanager: Alertmanager, am_sink: WebhookSink
) -> None:
    runtime = make_runtime(MLMON_CONFIG.format(url=alertmanager.url))
    outbox = OutboxStore(runtime.store.engine)
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        services = Services.build(runtime)
        services.start(elect=False)
        try:
            sample = {"project": "churn", "metric": "accuracy", "labels": {"model": "m"}, "value": 0.8}
            assert client.post("/api/v1/samples", json={"samples": [sample]}).status_code == 200
            wait_until(lambda: len(alertmanager.alerts()) == 1, timeout=30, what="the alert in Alertmanager")
            [mine] = client.get("/api/v1/alerts").json()

            [alert] = alertmanager.alerts()
            assert alert["labels"] == {
                "alertname": "accuracy-low",
                "project": "churn",
                "severity": "critical",
                "model": "m",
            }
            assert alert["annotations"] == {"summary": "Churn classifier accuracy is 80.0%"}
            assert alert["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
            assert alert["receivers"] == [{"name": "sink"}]
            assert alert["generatorURL"] == f"http://mlmon.test/api/v1/alerts/{mine['id']}"
            assert parse_time(alert["startsAt"]) == parse_time(iso(datetime.fromisoformat(mine["fired_at"])))
            # the end is mlmon's (a few resend intervals ahead), not Alertmanager's resolve_timeout (5m)
            assert parse_time(alert["endsAt"]) - datetime.now(UTC) <= timedelta(seconds=VALIDITY + 2)

            # firing: re-sent before it runs out, so it stays active well past one validity period
            ends: list[datetime] = []
            deadline = time.monotonic() + VALIDITY + 3 * RESEND
            while time.monotonic() < deadline:
                [alert] = alertmanager.alerts()
                assert alert["status"]["state"] == "active"
                assert parse_time(alert["endsAt"]) > datetime.now(UTC)
                ends.append(parse_time(alert["endsAt"]))
                time.sleep(0.25)
            assert ends == sorted(ends)
            assert len(set(ends)) >= 3, "endsAt moved forward with each re-send"

            # Alertmanager's receiver heard of it once, however often mlmon re-posted it
            [firing] = am_sink.wait_for(1)
            assert firing.header("User-Agent") == "Alertmanager/0.25.0"
            body = firing.json()
            assert body["status"] == "firing" and body["receiver"] == "sink"
            assert body["alerts"][0]["labels"] == alert["labels"]
            assert body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"

            sample["value"] = 0.95
            assert client.post("/api/v1/samples", json={"samples": [sample]}).status_code == 200
            wait_until(lambda: alertmanager.alerts() == [], timeout=30, what="the resolution in Alertmanager")
            [mine] = client.get("/api/v1/alerts").json()
            assert mine["state"] == "resolved"

            [_, resolved] = am_sink.wait_for(2)
            body = resolved.json()
            assert body["status"] == "resolved"
            assert parse_time(body["alerts"][0]["endsAt"]) == parse_time(
                iso(datetime.fromisoformat(mine["resolved_at"]))
            )
            assert body["alerts"][0]["annotations"] == {"summary": "Churn classifier accuracy is 95.0%"}
        finally:
            services.stop()
    items = outbox.items()
    assert {(i.integration, i.status) for i in items} == {("alertmanager", "sent")}
    assert len(items) >= 4
    assert len(am_sink.accepted()) == 2


# --- without the binary: what mlmon posts to an Alertmanager URL --------------------------------


def test_an_acknowledged_alert_is_still_kept_alive_in_alertmanager(
    make_runtime: RuntimeFactory, clock: FrozenClock
) -> None:
    """An acknowledgement stops mlmon's own repeats, but Alertmanager must keep hearing of a firing
    alert: without re-posts it times the alert out and tells its receivers it resolved."""
    with WebhookSink(path="/api/v2/alerts") as fake_am:
        runtime = make_runtime(MLMON_CONFIG.format(url=f"http://127.0.0.1:{fake_am.port}"), clock=clock)
        with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
            services = Services.build(runtime)

            def step() -> None:
                services.loops.dispatcher.tick()
                services.loops.deliverer.deliver_due()

            sample = {"project": "churn", "metric": "accuracy", "value": 0.8}
            assert client.post("/api/v1/samples", json={"samples": [sample]}).status_code == 200
            step()
            [first] = fake_am.accepted()
            [posted] = first.json()
            assert set(posted) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
            assert parse_time(posted["endsAt"]) == clock.now() + timedelta(seconds=VALIDITY)
            clock.advance(timedelta(seconds=RESEND))
            step()
            assert len(fake_am.accepted()) == 2

            [mine] = client.get("/api/v1/alerts").json()
            assert client.post(f"/api/v1/alerts/{mine['id']}/ack", json={"comment": "on it"}).status_code == 200
            for _ in range(int(VALIDITY / RESEND) + 2):  # past the validity of the last post before the ack
                clock.advance(timedelta(seconds=RESEND))
                step()
            services.http_senders.close()
        last = fake_am.accepted()[-1].json()[0]
        assert parse_time(last["endsAt"]) > clock.now(), "Alertmanager would time the firing alert out"
