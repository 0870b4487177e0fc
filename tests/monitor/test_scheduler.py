"""The real Scheduler with test-only sources: bad sources fail on their own while the good one
keeps being collected; reloads add, reschedule and remove jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.config.settings import Settings
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.scheduler import Scheduler
from monitor.store.sources import RunRecord
from tests.support.fake_sources import FakeLab
from tests.support.peers import wait_until

ISOLATION = """
projects:
  - id: churn
    sources:
      - {name: steady, kind: fake, interval: 1s, params: {behaviour: ok}}
      - {name: raising, kind: fake, interval: 1s, params: {behaviour: raise}}
      - {name: hanging, kind: fake, interval: 1s, timeout: 1s, params: {behaviour: hang}}
      - {name: garbage-nan, kind: fake, interval: 1s, params: {behaviour: nan}}
      - {name: garbage-type, kind: fake, interval: 1s, params: {behaviour: not_result}}
      - {name: garbage-future, kind: fake, interval: 1s, params: {behaviour: future}}
      - {name: garbage-name, kind: fake, interval: 1s, params: {behaviour: bad_metric}}
"""

EXPECTED_FAILURES = {
    "raising": "RuntimeError: collector exploded",
    "garbage-nan": "value nan is not a finite number",
    "garbage-type": "collector returned dict, expected a CollectResult",
    "garbage-future": "is out of range",
    "garbage-name": "must be snake_case",
}


@pytest.fixture
def lab() -> Iterator[FakeLab]:
    made = FakeLab()
    yield made
    made.release()


@pytest.fixture
def scheduled(tmp_path: Path, lab: FakeLab) -> Iterator[Callable[[str, str], tuple[Runtime, Scheduler]]]:
    """Start a real scheduler (no election) over a config of fake sources; shut it down after."""
    started: list[tuple[Runtime, Scheduler]] = []

    def start(config_text: str, database_url: str) -> tuple[Runtime, Scheduler]:
        path = tmp_path / "mlmon.yaml"
        path.write_text(config_text)
        runtime = Runtime.create(Settings(config=path, database_url=database_url), kinds=lab.kinds())
        scheduler = Scheduler(runtime, SourceRunner(runtime.store, runtime.clock), workers=16)
        started.append((runtime, scheduler))
        scheduler.start(elect=False)
        return runtime, scheduler

    yield start
    lab.release()
    for runtime, scheduler in started:
        scheduler.shutdown()
        runtime.store.close()


def runs(runtime: Runtime, source: str) -> list[RunRecord]:
    """Runs of a source, oldest first."""
    return list(reversed(runtime.store.sources.runs("churn", source, limit=1000)))


def test_bad_sources_fail_alone_while_the_good_one_keeps_running(
    scheduled: Callable[[str, str], tuple[Runtime, Scheduler]], db_url: str, lab: FakeLab
) -> None:
    runtime, scheduler = scheduled(ISOLATION, db_url)
    assert scheduler.is_leader

    def enough() -> bool:
        return (
            len(runs(runtime, "steady")) >= 4
            and len(runs(runtime, "hanging")) >= 3
            and all(len(runs(runtime, name)) >= 2 for name in EXPECTED_FAILURES)
        )

    wait_until(enough, timeout=40, interval=0.2, what="several runs of every source")
    scheduler.shutdown()

    steady = runs(runtime, "steady")
    assert {r.outcome for r in steady} == {"ok"}
    assert all(r.samples == 1 for r in steady)

    for name, reason in EXPECTED_FAILURES.items():
        for run in runs(runtime, name):
            assert run.outcome == "failed", (name, run)
            assert run.error is not None and reason in run.error, (name, run.error)

    hanging = runs(runtime, "hanging")
    assert (hanging[0].outcome, hanging[0].error) == ("timeout", "timed out after 1s")
    for run in hanging[1:]:
        assert run.outcome == "failed"
        assert run.error is not None and "previous run is still hung" in run.error
    assert lab.count("hanging") == 1, "a hung source must not get a second thread"

    stored = {row.key.label_dict()["source"] for row in runtime.store.samples.find_series(project="churn")}
    assert stored == {"steady"}, "nothing of a failed or garbage run is stored"
    statuses = {s.source: s for s in runtime.store.sources.statuses("churn")}
    assert statuses["steady"].up and statuses["steady"].consecutive_failures == 0
    assert statuses["steady"].checkpoint == {"runs": len(steady)}
    for name in [*EXPECTED_FAILURES, "hanging"]:
        assert not statuses[name].up
        assert statuses[name].consecutive_failures == len(runs(runtime, name))


RELOAD_BEFORE = """
projects:
  - id: churn
    sources:
      - {name: kept, kind: fake, interval: 1s}
      - {name: dropped, kind: fake, interval: 1s}
      - {name: slowed, kind: fake, interval: 1s}
"""

RELOAD_AFTER = """
projects:
  - id: churn
    sources:
      - {name: kept, kind: fake, interval: 1s}
      - {name: slowed, kind: fake, interval: 1h}
      - {name: added, kind: fake, interval: 1s}
"""


def test_reload_adds_reschedules_and_removes_jobs(
    scheduled: Callable[[str, str], tuple[Runtime, Scheduler]], sqlite_url: str, tmp_path: Path
) -> None:
    runtime, scheduler = scheduled(RELOAD_BEFORE, sqlite_url)
    assert scheduler.job_ids() == ["source:churn/dropped", "source:churn/kept", "source:churn/slowed"]
    wait_until(lambda: len(runs(runtime, "slowed")) >= 1, timeout=20, what="a first run of slowed")

    runtime.settings.config.write_text(RELOAD_AFTER)
    outcome = runtime.reload()

    assert outcome.ok, outcome.error
    assert scheduler.job_ids() == ["source:churn/added", "source:churn/kept", "source:churn/slowed"]
    job = scheduler._sched.get_job("source:churn/slowed")
    assert job.trigger.interval.total_seconds() == 3600
    wait_until(lambda: len(runs(runtime, "added")) >= 2, timeout=20, what="runs of the added source")
    assert all(r.ok for r in runs(runtime, "added"))
    kept = len(runs(runtime, "kept"))
    wait_until(lambda: len(runs(runtime, "kept")) > kept, timeout=20, what="kept to keep running")
