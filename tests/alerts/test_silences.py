"""Inhibition as Alertmanager does it, including the two-sided case (an alert matching both the
source and the target matchers is not muted by another such alert, itself included): the observed
table of the guide, pure, and the same alerts in a real Alertmanager."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.model import fingerprint
from alerts.silences import FiringSource, empty_match_problem, inhibited_by
from monitor.config.alerting import InhibitConfig
from monitor.core.matchers import parse_matchers
from tests.support.alertmanager import running_alertmanager

RULES = [
    InhibitConfig(source_matchers=['sev="critical"'], target_matchers=['sev=~"critical|warning"'], equal=["cluster"])
]
ALERTS = {
    "I1": {"alertname": "I1", "sev": "critical", "cluster": "c1"},
    "I2": {"alertname": "I2", "sev": "warning", "cluster": "c1"},
    "I3": {"alertname": "I3", "sev": "critical", "cluster": "c2"},
    "I4": {"alertname": "I4", "sev": "critical", "cluster": "c2"},
    "I5": {"alertname": "I5", "sev": "warning", "cluster": "c2"},
    "I6": {"alertname": "I6", "sev": "critical"},
    "I7": {"alertname": "I7", "sev": "warning"},
}
# the muted alerts and every alert that may mute each (Alertmanager names the first it finds: I5
# was shown inhibited by I3, the guide's observed table)
EXPECTED = {"I2": {"I1"}, "I5": {"I3", "I4"}, "I7": {"I6"}}


def mlmon_inhibitions() -> dict[str, set[str]]:
    names = {fingerprint(labels): name for name, labels in ALERTS.items()}
    firing = [FiringSource(fingerprint(labels), labels, None) for labels in ALERTS.values()]
    out = {}
    for name, labels in ALERTS.items():
        by = inhibited_by(labels, None, None, firing, RULES, fingerprint(labels))
        if by:
            out[name] = {names[fp] for fp in by}
    return out


def test_two_sided_rule_never_mutes_alerts_matching_both_sides() -> None:
    assert mlmon_inhibitions() == EXPECTED


def test_empty_matching_silences_are_refused_only_without_a_positive_matcher_that_needs_a_value() -> None:
    assert empty_match_problem(parse_matchers('model=~".*"')) is not None
    assert empty_match_problem(parse_matchers('foo="", alertname="x"')) is None
    assert empty_match_problem(parse_matchers('foo!="bar"')) is None


AM_CONFIG = """
route: {receiver: none, group_by: ['...'], group_wait: 0s, group_interval: 1s}
receivers: [{name: none}]
inhibit_rules:
  - source_matchers: ['sev="critical"']
    target_matchers: ['sev=~"critical|warning"']
    equal: [cluster]
"""


@pytest.mark.peer
def test_the_same_alerts_are_inhibited_by_the_same_sources_in_alertmanager(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    names = {fingerprint(labels): name for name, labels in ALERTS.items()}
    with running_alertmanager(tmp_path, AM_CONFIG) as am:
        am.post_alerts(
            [
                {"labels": labels, "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
                for labels in ALERTS.values()
            ]
        )
        # Alertmanager marks inhibition when its pipeline runs (group_wait 0s: at once)
        deadline = time.monotonic() + 20
        while True:
            shown = {
                names[a["fingerprint"]]: {names[fp] for fp in a["status"]["inhibitedBy"]}
                for a in am.alerts()
                if a["status"]["inhibitedBy"]
            }
            if set(shown) == set(EXPECTED) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    ours = mlmon_inhibitions()
    assert set(shown) == set(ours) == set(EXPECTED), "the same alerts are muted"
    for name, sources in shown.items():
        assert len(sources) == 1 and sources <= ours[name], f"{name}: Alertmanager's source is one of mlmon's"
