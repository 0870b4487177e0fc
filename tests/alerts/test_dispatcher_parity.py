"""Grouping timers and inhibition side by side with a real Alertmanager (0.25).

mlmon runs for real (API, evaluation on ingest, dispatcher and delivery loops) with a webhook
receiver; Alertmanager runs with the same route timers and inhibit rule, and is fed the very
alerts mlmon's engine produced (labels, annotations, start and end times) the moment they change.
Both notify a local sink. The notifications must come at the same moments (within 1 s) with the
same contents: group_wait for a new group, group_interval ticks for later changes, an inhibited
alert left out until its source resolves, and an alert that fires again after its group fully
resolved notified at the group's next tick (the group is kept, not re-created).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.payloads import iso
from monitor.api.app import create_app
from monitor.services import Services
from tests.conftest import RuntimeFactory, token_headers
from tests.support.alertmanager import Arrival, TimedSink, running_alertmanager

pytestmark = [pytest.mark.peer, pytest.mark.slow]

EXTERNAL = "http://mlmon.test"
ROUTE = """
  receiver: hook
  group_by: [project, alertname]
  group_wait: 2s
  group_interval: 6s
  repeat_interval: 1h
"""
INHIBIT = """
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [project, model]
"""
AM_CONFIG = (
    f"route:{ROUTE}"
    + """
receivers:
  - name: hook
    webhook_configs: [{url: "__URL__", send_resolved: true}]
inhibit_rules:"""
    + INHIBIT
)
MLMON_CONFIG = (
    """
alerting: {evaluation_interval: 1s, external_url: "__EXTERNAL__"}
projects:
  - id: p
    owners: [{name: Ada, email: ada@example.com}]
rules:
  - name: acc-critical
    kind: threshold
    labels: {severity: critical}
    params: {metric: acc, op: "<", value: 0.8}
  - name: acc-warning
    kind: threshold
    labels: {severity: warning}
    params: {metric: acc, op: "<", value: 0.9}
receivers:
  - name: hook
    webhook: {url: "__URL__"}
"""
    + f"route:{ROUTE}inhibit_rules:{INHIBIT}"
).replace("__EXTERNAL__", EXTERNAL)
TOLERANCE = 1.0


@pytest.fixture
def sinks() -> Iterator[tuple[TimedSink, TimedSink]]:
    ours, theirs = TimedSink(), TimedSink()
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


def as_am_alert(alert: dict[str, Any]) -> dict[str, Any]:
    """mlmon's alert as Prometheus would post it: startsAt = when it fired, endsAt = when it resolved."""
    fired = datetime.fromisoformat(alert["fired_at"])
    ends = (
        datetime.fromisoformat(alert["resolved_at"])
        if alert["state"] == "resolved"
        else datetime.now(UTC) + timedelta(hours=1)
    )
    return {
        "labels": alert["labels"],
        "annotations": alert["annotations"],
        "startsAt": iso(fired),
        "endsAt": iso(ends),
        "generatorURL": f"{EXTERNAL}/api/v1/alerts/{alert['id']}",
    }


def summary(arrival: Arrival, origin: float) -> tuple[float, dict[str, Any]]:
    body = arrival.body
    alerts = sorted(
        (
            {
                "status": a["status"],
                "labels": a["labels"],
                "annotations": a["annotations"],
                "startsAt": datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00")),
                "endsAt": a["endsAt"]
                if a["status"] == "firing"
                else datetime.fromisoformat(a["endsAt"][:-1] + "+00:00"),
                "generatorURL": a["generatorURL"],
                "fingerprint": a["fingerprint"],
            }
            for a in body["alerts"]
        ),
        key=lambda a: sorted(a["labels"].items()),
    )
    kept = {
        k: body[k]
        for k in ("receiver", "status", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "version")
    }
    kept |= {"groupKey": body["groupKey"], "truncatedAlerts": body["truncatedAlerts"], "alerts": alerts}
    return arrival.at - origin, kept


def test_grouping_timers_and_inhibition_match_alertmanager(
    tmp_path: Path, make_runtime: RuntimeFactory, sinks: tuple[TimedSink, TimedSink]
) -> None:
    ours, theirs = sinks
    runtime = make_runtime(MLMON_CONFIG.replace("__URL__", ours.url))
    with (
        running_alertmanager(tmp_path, AM_CONFIG.replace("__URL__", theirs.url), external_url=EXTERNAL) as am,
        TestClient(create_app(runtime), headers=token_headers(runtime)) as client,
    ):
        services = Services.build(runtime)
        services.start(elect=False)
        try:
            forwarded: dict[int, dict[str, Any]] = {}

            def push(model: str, value: float) -> None:
                sample = {"project": "p", "metric": "acc", "labels": {"model": model}, "value": value}
                assert client.post("/api/v1/samples", json={"samples": [sample]}).status_code == 200
                # The engine evaluated the ingest before answering. Alertmanager gets every alert
                # whose state, start or annotations changed, as Prometheus re-sends an alert with
                # its annotations refreshed at each evaluation.
                changed = []
                for alert in client.get("/api/v1/alerts").json():
                    posted = as_am_alert(alert)
                    seen = {k: v for k, v in posted.items() if k != "endsAt"} | {"state": alert["state"]}
                    if alert["state"] in ("firing", "resolved") and forwarded.get(alert["id"]) != seen:
                        forwarded[alert["id"]] = seen
                        changed.append(posted)
                if changed:
                    am.post_alerts(changed)

            def wait_until(offset: float) -> None:
                time.sleep(max(0.0, origin + offset - time.monotonic()))

            origin = time.monotonic()
            push("a", 0.7)  # critical a and warning a fire; warning a is inhibited by critical a
            wait_until(3)
            push("b", 0.85)  # warning b fires, not inhibited (another model)
            wait_until(9)
            push("a", 0.85)  # critical a resolves: warning a is no longer inhibited
            # once both groups have said so at their 14 s tick, critical a fires again
            deadline = time.monotonic() + 60  # generous: a late side fails the timing check below
            while len(ours.arrivals()) < 4 or len(theirs.arrivals()) < 4:
                assert time.monotonic() < deadline, (
                    f"notifications: mlmon {len(ours.arrivals())}, Alertmanager {len(theirs.arrivals())}"
                )
                time.sleep(0.05)
            push("a", 0.7)
            wait_until(23)
        finally:
            services.stop()

    mine = [summary(a, origin) for a in ours.arrivals()]
    reference = [summary(a, origin) for a in theirs.arrivals()]
    by_group: dict[str, list[list[tuple[float, dict[str, Any]]]]] = {}
    for side, notifications in enumerate((mine, reference)):
        for at, body in notifications:
            by_group.setdefault(body["groupKey"], [[], []])[side].append((at, body))
    assert set(by_group) == {
        '{}:{alertname="acc-critical", project="p"}',
        '{}:{alertname="acc-warning", project="p"}',
    }, [b["groupKey"] for _, b in reference]
    for key, (got, expected) in by_group.items():
        assert [body for _, body in got] == [body for _, body in expected], key
        for (at, _), (want, _) in zip(got, expected, strict=True):
            assert abs(at - want) <= TOLERANCE, f"{key}: mlmon at {at:.2f} s, Alertmanager at {want:.2f} s"
    critical = [
        (round(at), [a["status"] for a in body["alerts"]])
        for at, body in by_group['{}:{alertname="acc-critical", project="p"}'][1]
    ]
    warning = [
        (round(at), [a["labels"]["model"] for a in body["alerts"]])
        for at, body in by_group['{}:{alertname="acc-warning", project="p"}'][1]
    ]
    # the timeline Alertmanager itself gave (group_wait 2 s, group_interval 6 s), for the reader
    assert [s for _, s in critical] == [["firing"], ["resolved"], ["firing"]]
    assert [t for t, _ in critical] == [2, 14, 20]
    assert warning == [(8, ["b"]), (14, ["a", "b"])]
