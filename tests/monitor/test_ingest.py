"""Parsing pushed batches: every rejection names the item index and field; nothing partial."""

from __future__ import annotations

import json

import pytest

from monitor.core.errors import InvalidInput, TooLarge
from monitor.core.types import SeriesKey
from monitor.ingest import MAX_BATCH, parse_events, parse_samples

NOW_MS = 1_795_650_000_000
PROJECTS = frozenset({"churn", "vision"})


def _body(*samples: dict[str, object]) -> bytes:
    return json.dumps({"samples": list(samples)}).encode()


def _ok(**extra: object) -> dict[str, object]:
    return {"project": "churn", "metric": "accuracy", "labels": {"model": "v7"}, "value": 0.91, **extra}


def test_valid_batch_with_both_timestamp_forms() -> None:
    got = parse_samples(
        _body(_ok(timestamp=1795649000.25), _ok(timestamp="2026-11-25T23:00:00Z"), _ok()), PROJECTS, NOW_MS
    )
    key = SeriesKey("churn", "accuracy", (("model", "v7"),))
    assert [s.series for s in got] == [key, key, key]
    assert [s.ts_ms for s in got] == [1795649000250, 1795647600000, NOW_MS]
    assert got[0].value == 0.91


def _rejected(body: bytes) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_samples(body, PROJECTS, NOW_MS)
    return info.value


@pytest.mark.parametrize(
    ("item", "index_field", "fragment"),
    [
        (_ok(project="nope"), (1, "project"), "unknown project 'nope'"),
        (_ok(metric="trainAcc"), (1, "metric"), "snake_case"),
        (_ok(value="NaN"), (1, "value"), "finite number"),
        (_ok(value=None), (1, "value"), "valid number"),
        (_ok(timestamp=NOW_MS / 1000 + 7200), (1, "timestamp"), "more than 1h in the future"),
        (_ok(timestamp=-5), (1, "timestamp"), "before 1970"),
        (_ok(labels={f"l{i}": "x" for i in range(40)}), (1, "labels"), "40 labels"),
        (_ok(labels={"model": "x" * 5000}), (1, "labels.model"), "limit is 1024"),
        (_ok(labels={"project": "x"}), (1, "labels.project"), "reserved"),
        ({"project": "churn", "value": 1.0}, (1, "metric"), "field required"),
    ],
)
def test_bad_items_are_named(item: dict[str, object], index_field: tuple[int, str], fragment: str) -> None:
    error = _rejected(_body(_ok(), item, _ok()))
    issue = error.issues[0]
    assert (issue.index, issue.field) == index_field
    assert fragment in issue.message
    assert "nothing was stored" in error.summary or "invalid samples" in error.summary


def test_nan_and_infinity_literals_are_rejected() -> None:
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        body = b'{"samples":[{"project":"churn","metric":"accuracy","value":' + literal + b"}]}"
        assert _rejected(body).issues[0].field == "value"


def test_malformed_json_and_non_utf8() -> None:
    assert "malformed JSON" in _rejected(b'{"samples": [').issues[0].message
    assert "not valid UTF-8" in _rejected(b'{"samples": ["\xff"]}').issues[0].message
    assert _rejected(b'{"rows": []}').issues[0].message == "field required"


def test_batch_over_the_limit_is_too_large() -> None:
    body = _body(*[_ok(timestamp=NOW_MS / 1000 - i) for i in range(MAX_BATCH + 1)])
    with pytest.raises(TooLarge, match="limit is 10000"):
        parse_samples(body, PROJECTS, NOW_MS)


def test_every_bad_item_is_reported() -> None:
    error = _rejected(_body(_ok(project="x"), _ok(), _ok(value="NaN"), _ok(metric="Bad")))
    assert [i.index for i in error.issues] == [0, 2, 3]


def test_events() -> None:
    body = json.dumps(
        {
            "events": [
                {
                    "project": "churn",
                    "kind": "model_version",
                    "subject": "churn-classifier",
                    "old": "7",
                    "new": "8",
                }
            ]
        }
    ).encode()
    (event,) = parse_events(body, PROJECTS, NOW_MS)
    assert event.describe() == "churn-classifier 7 -> 8"
    with pytest.raises(InvalidInput, match="unknown project"):
        parse_events(body.replace(b"churn", b"nope", 1), PROJECTS, NOW_MS)


def test_type_errors_and_rule_errors_are_reported_together() -> None:
    error = _rejected(_body(_ok(labels={"model": 3}), _ok(project="nope"), "not an object"))
    assert [(i.index, i.field) for i in error.issues] == [(0, "labels.model"), (1, "project"), (2, "(item)")]
