"""The store's contract, run unchanged against SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.core.matchers import parse_selector
from monitor.core.types import Event, Sample, SeriesKey
from monitor.store.db import write_tx
from monitor.store.retention import apply_retention
from monitor.store.sources import RunRecord
from monitor.store.store import Store

HOUR = 3_600_000
BASE = 1_795_608_000_000  # 2026-11-25T08:00:00Z, on an hour boundary
ACC = SeriesKey("churn", "accuracy", (("model", "v7"),))
ACC_V8 = SeriesKey("churn", "accuracy", (("model", "v8"),))
SPEND = SeriesKey("vision", "gpu_spend_usd", ())


def test_append_is_idempotent_and_last_write_wins(store: Store) -> None:
    batch = [Sample(ACC, BASE + i * 60_000, 0.9) for i in range(10)]
    assert store.samples.append(batch) == 10
    store.samples.append(batch)
    store.samples.append([Sample(ACC, BASE, 0.5), Sample(ACC, BASE, 0.6)])  # duplicate within a batch
    points = store.samples.points(ACC, BASE, BASE + HOUR)
    assert len(points) == 10
    assert points[0].value == 0.6


def test_series_identity_is_project_metric_and_labels(store: Store) -> None:
    store.samples.append([Sample(ACC, BASE, 0.9), Sample(ACC_V8, BASE, 0.8), Sample(SPEND, BASE, 12.5)])
    keys = [r.key for r in store.samples.find_series()]
    assert sorted(keys, key=str) == sorted([ACC, ACC_V8, SPEND], key=str)
    assert [r.key for r in store.samples.find_series(parse_selector('accuracy{model=~"v8|v9"}'))] == [ACC_V8]
    assert [r.key for r in store.samples.find_series(parse_selector('{project="vision"}'))] == [SPEND]
    assert store.samples.find_series(project="churn", selector=parse_selector("gpu_spend_usd")) == []
    # a second store on the same database (another process) resolves the same ids
    other = Store.on(store.engine)
    other.samples.append([Sample(ACC, BASE + 1, 0.95)])
    assert store.samples.count_series() == 3


def test_atomic_batch(store: Store) -> None:
    with pytest.raises(RuntimeError, match="rest of the batch"), write_tx(store.engine) as conn:
        store.samples.append([Sample(ACC, BASE, 0.9)], conn)
        raise RuntimeError("the rest of the batch failed")
    assert store.samples.points(ACC, 0, BASE * 2) == []


def test_latest_and_latest_all(store: Store) -> None:
    store.samples.append([Sample(ACC, BASE + i, float(i)) for i in range(5)] + [Sample(SPEND, BASE, 3.0)])
    assert store.samples.latest(ACC) is not None
    assert store.samples.latest(ACC).value == 4.0  # type: ignore[union-attr]
    assert store.samples.latest(ACC_V8) is None
    latest = dict(store.samples.latest_all())
    assert latest[ACC].value == 4.0 and latest[SPEND].value == 3.0


@pytest.mark.parametrize(
    ("reduce", "expected"),
    [("last", 7.0), ("avg", 31 / 6), ("min", 2.0), ("max", 9.0)],
)
def test_window_reduced_is_the_window_reduced_in_sql(store: Store, reduce: str, expected: float) -> None:
    # ACC: 0, 1, ... 9 at 10-minute steps, except that the point at 50 min is 9.0 (the largest is
    # not the last); the window [20 min, 70 min] holds 2, 3, 4, 9, 6, 7
    store.samples.append([Sample(ACC, BASE + i * 600_000, 9.0 if i == 5 else float(i)) for i in range(10)])
    store.samples.append([Sample(ACC_V8, BASE, 1.0), Sample(SPEND, BASE + 20 * 600_000, 5.0)])
    start, end = BASE + 2 * 600_000, BASE + 7 * 600_000
    selector = parse_selector("accuracy")
    reduced = store.samples.window_reduced(selector, start, end, reduce, projects=["churn"])  # type: ignore[arg-type]
    by_key = {s.key: s.points for s in reduced}
    assert set(by_key) == {ACC, ACC_V8}
    assert by_key[ACC_V8] == []  # nothing in the window: no point, as window() gives none
    (point,) = by_key[ACC]
    assert point.ts_ms == end  # the newest timestamp in the window
    assert point.value == pytest.approx(expected)
    raw = {s.key: s.points for s in store.samples.window(selector, start, end)}
    values = [p.value for p in raw[ACC]]
    python = {"last": values[-1], "avg": sum(values) / len(values), "min": min(values), "max": max(values)}
    assert point.value == pytest.approx(python[reduce])
    assert store.samples.window_reduced(parse_selector("gpu_spend_usd"), start, end, "avg", projects=["churn"]) == []


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("avg", [1.5, 5.5]),
        ("min", [0.0, 4.0]),
        ("max", [3.0, 7.0]),
        ("last", [3.0, 7.0]),
        ("sum", [6.0, 22.0]),
        ("count", [4.0, 4.0]),
    ],
)
def test_query_range_aggregates_per_step(store: Store, agg: str, expected: list[float]) -> None:
    # 8 points, 15 minutes apart: two 1-hour buckets of four
    store.samples.append([Sample(ACC, BASE + i * 15 * 60_000, float(i)) for i in range(8)])
    (result,) = store.samples.query_range(parse_selector("accuracy"), BASE, BASE + 2 * HOUR - 1, HOUR, agg)  # type: ignore[arg-type]
    assert result.key == ACC
    assert [p.ts_ms for p in result.points] == [BASE, BASE + HOUR]
    assert [p.value for p in result.points] == pytest.approx(expected)


def test_query_range_limits(store: Store) -> None:
    from monitor.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="over the limit"):
        store.samples.query_range(parse_selector("accuracy"), 0, 100_000_000, 1)
    with pytest.raises(InvalidInput, match="end must not be before start"):
        store.samples.query_range(parse_selector("accuracy"), 10, 5, 1)


def test_retention_downsamples_then_deletes(store: Store) -> None:
    # 3 days of 10-minute data, raw retention 1 day, hourly retention 2 days
    store.samples.append([Sample(ACC, BASE + i * 600_000, float(i % 6)) for i in range(3 * 24 * 6)])
    now = datetime.fromtimestamp((BASE + 3 * 24 * HOUR) / 1000, UTC)
    selector = parse_selector("accuracy")
    window = (BASE + 26 * HOUR, BASE + 47 * HOUR - 1)  # past the raw retention, inside the hourly one
    before = {a: store.samples.query_range(selector, *window, HOUR, a)[0].points for a in ("avg", "min", "max", "last")}
    report = apply_retention(store.engine, now, timedelta(days=1), timedelta(days=2), timedelta(days=30))
    assert report.downsampled_rows == 2 * 24 * 6
    after = {a: store.samples.query_range(selector, *window, HOUR, a)[0].points for a in before}
    assert after == before
    assert store.samples.points(ACC, 0, BASE + 2 * 24 * HOUR - 1) == []  # raw gone
    (old,) = store.samples.query_range(selector, BASE, BASE + 24 * HOUR - 1, HOUR, "count")
    assert old.points == []  # past the hourly retention: deleted
    # late samples for an already downsampled hour merge into it
    store.samples.append([Sample(ACC, BASE + 30 * HOUR + 1, 100.0)])
    apply_retention(store.engine, now, timedelta(days=1), timedelta(days=2), timedelta(days=30))
    (merged,) = store.samples.query_range(selector, BASE + 30 * HOUR, BASE + 31 * HOUR - 1, HOUR, "max")
    assert merged.points[0].value == 100.0


def test_events(store: Store) -> None:
    store.events.add(
        [
            Event("churn", BASE, "version_change", "torch", "2.14.1", "2.15.0", source="env"),
            Event("churn", BASE + 10, "model_version", "churn-classifier", "7", "8"),
            Event("vision", BASE + 5, "config_change", "configuration", message="reloaded"),
        ]
    )
    churn = store.events.events(project="churn")
    assert [e.describe() for e in churn] == ["churn-classifier 7 -> 8", "torch 2.14.1 -> 2.15.0"]
    assert store.events.events(kinds=["config_change"])[0].project == "vision"
    nearest = store.events.latest_before("churn", BASE + 5)
    assert nearest is not None and nearest.subject == "torch"


def test_source_runs_and_state(store: Store) -> None:
    t = datetime(2026, 11, 25, 8, tzinfo=UTC)
    store.sources.record(RunRecord("churn", "eval", "http_json", t, 0.5, "ok", samples=3), {"cursor": 7})
    store.sources.record(RunRecord("churn", "eval", "http_json", t + timedelta(minutes=1), 0.2, "failed", "boom"))
    store.sources.record(RunRecord("churn", "eval", "http_json", t + timedelta(minutes=2), 0.3, "timeout", "slow"))
    status = store.sources.status("churn", "eval")
    assert status is not None
    assert (status.consecutive_failures, status.runs_total, status.failures_total) == (2, 3, 2)
    assert status.last_success_at == t and status.last_error == "slow" and not status.up
    assert status.checkpoint == {"cursor": 7}
    assert status.run_seconds_total == pytest.approx(1.0)
    assert [r.outcome for r in store.sources.runs("churn", "eval")] == ["timeout", "failed", "ok"]
    store.sources.record(RunRecord("churn", "eval", "http_json", t + timedelta(minutes=3), 0.1, "ok"))
    status = store.sources.status("churn", "eval")
    assert status is not None and status.consecutive_failures == 0 and status.up


def test_statuses_without_checkpoints_keep_every_other_field(store: Store) -> None:
    t = datetime(2026, 11, 25, 8, tzinfo=UTC)
    store.sources.record(RunRecord("churn", "eval", "http_json", t, 0.5, "ok"), {"files": {"a.csv": 1}})
    store.sources.record(RunRecord("churn", "eval", "http_json", t + timedelta(minutes=1), 0.2, "failed", "boom"))
    store.sources.record(RunRecord("vision", "bill", "focus", t, 0.1, "ok"))
    full = store.sources.statuses()
    light = store.sources.statuses(checkpoints=False)
    assert [(s.project, s.source) for s in full] == [("churn", "eval"), ("vision", "bill")]
    assert full[0].checkpoint == {"files": {"a.csv": 1}} and full[0].last_run_at == t + timedelta(minutes=1)
    assert full[0].last_success_at is not None and full[0].last_success_at.tzinfo is not None
    assert [s.checkpoint for s in light] == [None, None]
    assert [replace(s, checkpoint=None) for s in full] == light
    # read again after one source ran: the change shows, the unchanged status is the same object
    store.sources.record(RunRecord("vision", "bill", "focus", t + timedelta(minutes=5), 0.3, "failed", "gone"))
    again = store.sources.statuses(checkpoints=False)
    assert again[0] is light[0]
    assert (again[1].last_outcome, again[1].consecutive_failures, again[1].last_error) == ("failed", 1, "gone")
    assert again == [replace(s, checkpoint=None) for s in store.sources.statuses()]
    assert store.sources.statuses(refs={("vision", "bill"), ("nobody", "x")}) == [again[1]]
    assert store.sources.statuses(refs=set()) == []


def test_selectors_that_list_label_values_read_only_those_series(store: Store) -> None:
    """The store narrows `=` and literal `=~` matchers in SQL before it matches the rows; the
    answer must be exactly what matching every series gives."""
    keys = [SeriesKey("finops", "spend", (("attributed", name),)) for name in ("a", "b.c", "b-c", "big", "x|y")]
    keys.append(SeriesKey("finops", "spend", ()))  # no attributed label: matches as ""
    store.samples.append([Sample(k, BASE + i, float(i)) for i, k in enumerate(keys)])
    selectors = [
        'spend{attributed="a"}',
        'spend{attributed=~"a|big"}',
        r'spend{attributed=~"b\\.c|x\\|y"}',  # escaped, as re.escape writes them
        'spend{attributed=~"b.c"}',  # a real regex: both b.c and b-c
        'spend{attributed=~"a|"}',  # admits the missing label
        'spend{attributed=~"(?i)A"}',
        'spend{project="finops",attributed=~"big|nobody"}',
        'spend{project=~"finops|other",attributed!="a"}',
    ]
    for text in selectors:
        selector = parse_selector(text, select_all=True)
        expected = sorted(
            (k for k in keys if all(m.matches({**dict(k.labels), "project": k.project}) for m in selector.matchers)),
            key=str,
        )
        for name, found in (
            ("find_series", [r.key for r in store.samples.find_series(selector)]),
            ("window", [s.key for s in store.samples.window(selector, BASE, BASE + HOUR)]),
            ("latest_many", [s.key for s in store.samples.latest_many(selector)]),
            ("window_reduced", [s.key for s in store.samples.window_reduced(selector, BASE, BASE + HOUR, "last")]),
        ):
            assert sorted(found, key=str) == expected, (text, name)


@pytest.mark.parametrize("size", [1, 999, 1_000, 1_001, 2_500])
def test_append_sizes_on_both_write_paths(store: Store, size: int) -> None:
    """PostgreSQL takes small batches as arrays in one statement and large ones by COPY: the
    stored rows, replacements and counts are the same either way."""
    batch = [Sample(ACC, BASE + i, float(i)) for i in range(size)]
    assert store.samples.append(batch) == size
    assert store.samples.append([Sample(ACC, BASE + i, -float(i)) for i in range(size)]) == size
    points = store.samples.points(ACC, BASE, BASE + size)
    assert [(p.ts_ms, p.value) for p in points] == [(BASE + i, -float(i)) for i in range(size)]
