"""Restarts of a real `mlmon serve` process on one SQLite file: a notification queued while the
receiver is down survives the restart and is delivered exactly once; an alert already notified is
not notified again before repeat_interval; a firing alert is still firing afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts.store import OutboxItem, OutboxStore
from monitor.store.db import make_engine
from tests.conftest import cli_token
from tests.support.peers import REPO, free_port, mlmon_command, stop_process, wait_http, wait_until
from tests.support.sinks import WebhookSink

pytestmark = pytest.mark.slow

CONFIG = """
alerting: {{evaluation_interval: 1s}}
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
receivers:
  - name: hook
    webhook: {{url: "{url}"}}
route:
  receiver: hook
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
"""

QUIET = 3.0  # seconds to watch for a notification that must not come (3 x group_interval)


class Server:
    """`mlmon serve` as a subprocess, started and stopped as often as the test likes."""

    def __init__(self, tmp_path: Path, config: Path, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MLMON_")},
            "MLMON_CONFIG": str(config),
            "MLMON_DATABASE_URL": database_url,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.token: str | None = None
        self.base = ""
        self.runs = 0
        self.started_at = 0.0

    @property
    def log(self) -> Path:
        return self.tmp_path / f"serve-{self.runs}.log"

    def start(self) -> None:
        self.runs += 1
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.started_at = time.time()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                mlmon_command("serve"),
                cwd=REPO,
                env={**self.env, "MLMON_LISTEN": f"127.0.0.1:{port}"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_http(f"{self.base}/healthz")

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops it: a clean shutdown ends with status 0."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(30)
        self.proc = None
        assert status == 0, f"exit status {status} (log: {self.log})"

    def kill(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.base}{path}", timeout=10)
        response.raise_for_status()
        return response.json() if path != "/metrics" else response.text

    def metric(self, name: str, **labels: str) -> float | None:
        for family in text_string_to_metric_families(self.get("/metrics")):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return None

    def push(self, value: float) -> None:
        if self.token is None:  # an owner's token, made as an operator would, once the schema exists
            self.token = cli_token(self.env["MLMON_DATABASE_URL"], "owner", ("churn",))
        sample = {"project": "churn", "metric": "accuracy", "labels": {"model": "m"}, "value": value}
        headers = {"Authorization": f"Bearer {self.token}"}
        response = httpx.post(f"{self.base}/api/v1/samples", json={"samples": [sample]}, headers=headers, timeout=10)
        assert response.status_code == 200, response.text

    def wait_for_evaluation(self) -> None:
        """Until this run has evaluated the rules at least once (and so dispatched since)."""

        def evaluated() -> bool:
            last = self.metric("mlmon_rule_last_evaluation_timestamp_seconds")
            return last is not None and last > self.started_at

        wait_until(evaluated, timeout=30, what=f"a rule evaluation after start (log: {self.log})")


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    made = WebhookSink()
    yield made
    made.close()


@pytest.fixture
def server(tmp_path: Path, sink: WebhookSink) -> Iterator[Server]:
    config = tmp_path / "mlmon.yaml"
    config.write_text(CONFIG.format(url=sink.url))
    made = Server(tmp_path, config, f"sqlite:///{tmp_path / 'mlmon.db'}")
    yield made
    made.kill()


def outbox(server: Server) -> list[OutboxItem]:
    engine = make_engine(server.env["MLMON_DATABASE_URL"])
    try:
        return OutboxStore(engine).items()
    finally:
        engine.dispose()


def test_queued_notification_survives_restarts_and_is_delivered_once(server: Server, sink: WebhookSink) -> None:
    # the receiver is down: the notification waits in the outbox, retried
    server.start()
    server.push(0.5)
    wait_until(
        lambda: server.metric("mlmon_outbox_notifications", integration="webhook", status="pending") == 1,
        timeout=30,
        what="a pending notification on /metrics",
    )
    wait_until(lambda: outbox(server)[0].attempts >= 1, timeout=30, what="a failed delivery attempt")
    [before] = server.get("/api/v1/alerts")
    assert before["state"] == "firing"
    server.stop()

    [item] = outbox(server)
    assert item.status == "pending"
    assert item.last_error is not None and "ConnectError" in item.last_error
    assert sink.requests() == []

    # the receiver comes back; so does mlmon, on the same database
    sink.open()
    server.start()
    [delivered] = sink.wait_for(1, timeout=90)  # at worst a lease (60s) held by the stopped process
    wait_until(lambda: outbox(server)[0].status == "sent", timeout=30, what="the outbox to record the delivery")
    server.wait_for_evaluation()
    time.sleep(QUIET)
    assert len(sink.requests()) == 1, "delivered exactly once"
    assert delivered.header("Idempotency-Key") == item.idempotency_key
    body = delivered.json()
    assert body["status"] == "firing" and body["mlmon"]["notification_reason"] == "new_alert"
    assert body["alerts"][0]["labels"]["alertname"] == "accuracy-low"
    [after] = server.get("/api/v1/alerts")
    assert (after["id"], after["state"], after["fired_at"]) == (before["id"], "firing", before["fired_at"])
    assert server.metric("mlmon_outbox_notifications", integration="webhook", status="sent") == 1
    server.stop()

    # another restart well within repeat_interval: the alert is still firing, and nobody hears of it again
    server.start()
    server.wait_for_evaluation()
    time.sleep(QUIET)
    assert len(sink.requests()) == 1, "no repeat before repeat_interval"
    [again] = server.get("/api/v1/alerts")
    assert (again["id"], again["state"], again["fired_at"]) == (before["id"], "firing", before["fired_at"])
    assert [i.status for i in outbox(server)] == ["sent"]
    server.stop()
