"""Alert fingerprints equal Alertmanager's: an independent FNV-1a 64 and a real Alertmanager agree."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.model import fingerprint
from tests.support.alertmanager import running_alertmanager

LABEL_SETS = [
    {},
    {"alertname": "a"},
    {"alertname": "a", "project": "p"},
    {"project": "p", "alertname": "a"},  # order does not matter
    {"alertname": "a", "zone": "é"},
    {"alertname": "accuracy-low", "project": "churn", "model": "churn-classifier", "severity": "critical"},
    {"alertname": "x", "a": "b=c", "b": 'quote " and \\ backslash', "c": "日本"},
    {"alertname": "a", "project": "p", "empty": ""},  # Alertmanager drops empty labels before hashing
]


def fnv1a_64(data: bytes) -> int:
    """FNV-1a 64 as its specification states it (offset basis, then xor and multiply per byte)."""
    return functools.reduce(lambda h, byte: ((h ^ byte) * 1099511628211) % 2**64, data, 14695981039346656037)


def alertmanager_layout(labels: dict[str, str]) -> bytes:
    """name 0xff value 0xff ..., names in byte order, empty values left out."""
    kept = sorted((k.encode(), v.encode()) for k, v in labels.items() if v)
    return b"".join(name + b"\xff" + value + b"\xff" for name, value in kept)


@pytest.mark.parametrize("labels", LABEL_SETS, ids=lambda labels: ",".join(labels) or "empty")
def test_fingerprint_is_fnv1a_64_over_the_sorted_label_pairs(labels: dict[str, str]) -> None:
    assert fingerprint(labels) == f"{fnv1a_64(alertmanager_layout(labels)):016x}"


def test_fingerprints_of_the_worked_examples() -> None:
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"alertname": "a"}) == "d258efc389808447"
    assert fingerprint({"alertname": "a", "project": "p"}) == "ae18fd402255da64"
    assert fingerprint({"alertname": "a", "zone": "é"}) == "b70545a78317559f"


AM_CONFIG = """
route: {receiver: none}
receivers: [{name: none}]
"""


@pytest.mark.peer
def test_fingerprints_equal_a_real_alertmanagers(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    sets = [s for s in LABEL_SETS if s]
    with running_alertmanager(tmp_path, AM_CONFIG) as am:
        am.post_alerts(
            [
                {"labels": labels, "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
                for labels in sets
            ]
        )
        stored = {a["fingerprint"]: a["labels"] for a in am.alerts()}
    expected = {fingerprint(labels) for labels in sets}
    assert set(stored) == expected
    for fp, labels in stored.items():
        assert fingerprint(labels) == fp
