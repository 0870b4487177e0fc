"""SourceRunner: a source that raises, hangs or returns garbage is recorded as failed with its
reason, nothing of a bad run is stored, and a hung source is reported as still hung."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.config.models import SourceConfig
from monitor.core.clock import FrozenClock
from monitor.core.types import SeriesKey
from monitor.plans import SourcePlan
from monitor.runner import SourceRunner
from monitor.store.store import Store
from tests.support.fake_sources import REJECTED_SUBJECT, FakeLab
from tests.support.peers import wait_until

PROJECT = "churn"


@pytest.fixture
def lab() -> Iterator[FakeLab]:
    made = FakeLab()
    yield made
    made.release()


def fake_plan(lab: FakeLab, behaviour: str, name: str | None = None, timeout: str = "5s") -> SourcePlan:
    params = {"behaviour": behaviour}
    config = SourceConfig(name=name or behaviour.replace("_", "-"), kind="fake", timeout=timeout, params=params)
    return SourcePlan(PROJECT, config, lab.kinds()["fake"].create(params))


def assert_nothing_stored(store: Store, source: str) -> None:
    assert store.samples.find_series(project=PROJECT) == []
    assert store.events.events(project=PROJECT) == []
    status = store.sources.status(PROJECT, source)
    assert status is not None
    assert status.checkpoint is None


def test_ok_run_stores_samples_checkpoint_and_run(store: Store, clock: FrozenClock, lab: FakeLab) -> None:
    runner = SourceRunner(store, clock)
    seen: list[set[SeriesKey]] = []
    runner.listeners.append(seen.append)
    plan = fake_plan(lab, "ok")

    first = runner.run(plan)
    second = runner.run(plan)

    assert (first.outcome, first.error, first.samples) == ("ok", None, 1)
    assert second.ok
    key = SeriesKey(PROJECT, "fake_reading", (("source", "ok"),))
    point = store.samples.latest(key)
    assert point is not None and point.value == 1.0
    status = store.sources.status(PROJECT, "ok")
    assert status is not None
    assert (status.last_outcome, status.runs_total, status.consecutive_failures) == ("ok", 2, 0)
    assert status.checkpoint == {"runs": 2}, "the second run saw the first run's checkpoint"
    assert seen == [{key}, {key}]


FAILURES = [
    ("raise", "RuntimeError: collector exploded"),
    ("source_error", "upstream said no"),
    ("exit", "collector raised SystemExit: 3"),
    ("nan", "value nan is not a finite number"),
    ("string_value", "value '0.9' is not a finite number"),
    ("bad_metric", "'trainAcc' must be snake_case"),
    ("reserved_label", "labels.project"),
    ("not_result", "collector returned dict, expected a CollectResult"),
    ("none", "collector returned NoneType, expected a CollectResult"),
    ("future", "is out of range"),
    ("naive_ts", "ts must be an aware datetime"),
    ("readings_tuple", "readings and events must be lists"),
    ("bad_event", "event 0 is a str, expected an EventDraft"),
    ("future_event", "event 0: timestamp"),
    ("long_event_kind", "event 0: kind must be a string of 1 to 64 characters"),
    ("bad_checkpoint", "checkpoint is not JSON-serialisable"),
    ("nan_checkpoint", "checkpoint is not JSON-serialisable"),
]


@pytest.mark.parametrize(("behaviour", "reason"), FAILURES, ids=[f[0] for f in FAILURES])
def test_failures_are_recorded_with_their_reason_and_nothing_is_stored(
    store: Store, clock: FrozenClock, lab: FakeLab, behaviour: str, reason: str
) -> None:
    runner = SourceRunner(store, clock)
    plan = fake_plan(lab, behaviour)

    record = runner.run(plan)

    assert record.outcome == "failed"
    assert record.error is not None and reason in record.error
    assert_nothing_stored(store, plan.source)
    [stored] = store.sources.runs(PROJECT, plan.source)
    assert (stored.outcome, stored.error) == ("failed", record.error)
    status = store.sources.status(PROJECT, plan.source)
    assert status is not None
    assert (status.last_outcome, status.last_error, status.consecutive_failures) == (
        "failed",
        record.error,
        1,
    )


def test_a_failed_store_leaves_the_source_usable(sqlite_url: str, clock: FrozenClock, lab: FakeLab) -> None:
    """A run whose output the database refuses is failed, stores nothing, and the next run works."""
    store = Store.open(sqlite_url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON events "
                f"WHEN NEW.subject = '{REJECTED_SUBJECT}' BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
            )
        runner = SourceRunner(store, clock)
        bad = runner.run(fake_plan(lab, "trigger_rejects", name="flaky"))
        assert bad.outcome == "failed"
        assert bad.error is not None and "storing the readings failed" in bad.error
        assert "refused by trigger" in bad.error
        assert_nothing_stored(store, "flaky")

        good = runner.run(fake_plan(lab, "ok", name="flaky"))
        assert good.ok, good.error
        assert store.samples.latest(SeriesKey(PROJECT, "fake_reading", (("source", "flaky"),))) is not None
    finally:
        store.close()


def test_hung_source_times_out_then_reports_still_hung_without_a_new_thread(
    store: Store, clock: FrozenClock, lab: FakeLab
) -> None:
    runner = SourceRunner(store, clock)
    plan = fake_plan(lab, "hang", timeout="300ms")

    first = runner.run(plan)
    second = runner.run(plan)

    assert (first.outcome, first.error) == ("timeout", "timed out after 0.3s")
    assert second.outcome == "failed"
    assert second.error is not None and "still hung" in second.error
    assert clock.now().isoformat() in second.error
    assert lab.count("hang") == 1, "no second collector thread while the first one hangs"
    assert_nothing_stored(store, plan.source)
    assert [r.outcome for r in store.sources.runs(PROJECT, "hang")] == ["failed", "timeout"]

    # Once the hung thread ends, the source runs again (and the late result is not stored).
    lab.release()
    wait_until(lambda: runner.run(plan).ok, timeout=10, what="the released source to run again")
    assert lab.count("hang") == 2
    assert store.samples.find_series(project=PROJECT) != []


def test_one_hung_source_does_not_block_another(store: Store, clock: FrozenClock, lab: FakeLab) -> None:
    runner = SourceRunner(store, clock)
    assert runner.run(fake_plan(lab, "hang", timeout="200ms")).outcome == "timeout"
    assert runner.run(fake_plan(lab, "ok")).ok
    assert runner.run(fake_plan(lab, "hang", timeout="200ms")).error is not None
    assert runner.run(fake_plan(lab, "ok")).ok


def test_a_huge_error_text_is_stored_and_logged_capped(
    store: Store, clock: FrozenClock, lab: FakeLab, caplog: pytest.LogCaptureFixture
) -> None:
    from monitor.core.text_cap import MAX_ERROR_CHARS

    record = SourceRunner(store, clock).run(fake_plan(lab, "huge_error"))
    assert record.error is not None and record.error.startswith("bomb: lol")
    assert len(record.error) < MAX_ERROR_CHARS + 60 and "more characters cut" in record.error
    status = store.sources.status(PROJECT, "huge-error")
    assert status is not None and status.last_error == record.error
    [run] = store.sources.runs(PROJECT, "huge-error")
    assert run.error == record.error
    assert max(len(r.getMessage()) for r in caplog.records) < MAX_ERROR_CHARS + 200
    assert_nothing_stored(store, "huge-error")


def test_a_stopping_runner_starts_nothing_and_gives_up_on_runs_in_flight(
    store: Store, clock: FrozenClock, lab: FakeLab
) -> None:
    import threading
    import time

    runner = SourceRunner(store, clock)
    plan = fake_plan(lab, "hang", timeout="60s")
    finished: list[float] = []

    def in_flight() -> None:
        runner.run(plan)
        finished.append(time.monotonic())

    worker = threading.Thread(target=in_flight)
    worker.start()
    wait_until(lambda: lab.count("hang") == 1)
    stopped_at = time.monotonic()
    runner.stop()  # what SIGTERM does through the scheduler
    worker.join(30)
    assert finished and finished[0] - stopped_at < 30, "the run in flight gave up long before its 60 s timeout"
    later = runner.run(fake_plan(lab, "ok"))
    assert later.outcome == "cancelled" and lab.count("ok") == 0, "no new run starts once stopping"
    status = store.sources.status(PROJECT, "hang")
    assert status is not None and status.last_error == "cancelled: mlmon is shutting down"
