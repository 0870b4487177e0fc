"""The `focus` source through the real runner and store: incremental, idempotent, bad files rejected."""

from __future__ import annotations

import math
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from collectors.spend.focus import CHECKPOINT_VERSION
from monitor.core.clock import FrozenClock
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.spend.ledger import read_days
from monitor.spend.sources import spend_sources
from tests.conftest import RuntimeFactory
from tests.monitor.spend.focus_data import Charge, require_pyarrow, sample_csv, write_focus

NOW = datetime(2024, 10, 2, 9, 0, tzinfo=UTC)


def config(path: Path, extra: str = "") -> str:
    return f"""
projects:
  - id: finops
    owners: [{{name: Fin, email: fin@example.com}}]
    sources:
      - name: aws
        kind: focus
        interval: 1h
        params:
          path: {path}
          attribution:
            - tag: ml-project
{extra}
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
  - id: vision
    owners: [{{name: Grace, email: grace@example.com}}]
"""


def hourly(first: date, last: date, amount: float, project: str | None) -> list[Charge]:
    out = []
    day = first
    while day <= last:
        out.extend(
            Charge(datetime(day.year, day.month, day.day, hour, tzinfo=UTC), amount, project) for hour in (3, 15)
        )
        day += timedelta(days=1)
    return out


def touch(path: Path) -> None:
    # A rewritten export gets a new modification time; make sure it differs even within one tick.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


class World:
    def __init__(self, runtime: Runtime, clock: FrozenClock) -> None:
        self.runtime, self.clock = runtime, clock
        self.runner = SourceRunner(runtime.store, clock)

    def run(self) -> object:
        [plan] = self.runtime.plans
        return self.runner.run(plan)

    def billed(self, project: str) -> dict[date, float]:
        sources = spend_sources(self.runtime.config)
        days = read_days(
            self.runtime.store,
            sources,
            [project],
            date(2024, 8, 25),
            date(2024, 10, 5),
            raw_retention=timedelta(days=3650),
            now=self.clock.now(),
        )
        return {d: v for d, v in days[project]["finops/aws"].amounts("billed", "all").items() if v}


@pytest.fixture
def world(make_runtime: RuntimeFactory, db_url: str, tmp_path: Path) -> World:
    exports = tmp_path / "exports"
    exports.mkdir()
    clock = FrozenClock(NOW)
    return World(make_runtime(config(exports), database_url=db_url, clock=clock), clock)


def test_incremental_reads_replace_days_and_never_double_count(world: World, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    part1 = write_focus(exports / "2024-09-part-1.csv", hourly(date(2024, 9, 1), date(2024, 9, 20), 1.0, "churn"))
    part2 = write_focus(exports / "2024-09-part-2.csv", hourly(date(2024, 9, 15), date(2024, 9, 30), 10.0, "churn"))
    first = world.run()
    assert first.ok and first.events == 2
    billed = world.billed("churn")
    assert billed[date(2024, 9, 1)] == 2.0
    assert billed[date(2024, 9, 15)] == 22.0  # both parts cover the 15th: 2 x 1 + 2 x 10
    assert billed[date(2024, 9, 30)] == 20.0

    again = world.run()
    assert again.ok and again.samples == 0 and again.events == 0  # nothing changed, nothing read
    assert world.billed("churn") == billed

    write_focus(part2, hourly(date(2024, 9, 15), date(2024, 9, 30), 5.0, "churn"))
    touch(part2)
    changed = world.run()
    assert changed.ok and changed.events == 1
    billed = world.billed("churn")
    assert billed[date(2024, 9, 15)] == 12.0  # re-read: replaced, not added
    assert billed[date(2024, 9, 30)] == 10.0 and billed[date(2024, 9, 1)] == 2.0
    assert math.isclose(sum(billed.values()), 20 * 2.0 + 16 * 10.0)

    part2.unlink()
    removed = world.run()
    assert removed.ok and removed.events == 1
    billed = world.billed("churn")
    assert billed[date(2024, 9, 15)] == 2.0 and date(2024, 9, 30) not in billed  # zeroed, not stale
    assert sum(billed.values()) == 40.0
    assert part1.exists()


def test_a_row_moved_to_another_project_leaves_nothing_behind(world: World, tmp_path: Path) -> None:
    path = write_focus(tmp_path / "exports" / "sep.csv", hourly(date(2024, 9, 1), date(2024, 9, 2), 3.0, "churn"))
    assert world.run().ok
    write_focus(path, hourly(date(2024, 9, 1), date(2024, 9, 2), 3.0, "vision"))
    touch(path)
    assert world.run().ok
    assert world.billed("churn") == {}
    assert world.billed("vision") == {date(2024, 9, 1): 6.0, date(2024, 9, 2): 6.0}


def test_a_bad_file_fails_the_run_naming_it_and_stored_days_stay(world: World, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    write_focus(exports / "good.csv", hourly(date(2024, 9, 1), date(2024, 9, 3), 1.0, "churn"))
    assert world.run().ok
    before = world.billed("churn")
    charges = [
        *hourly(date(2024, 9, 4), date(2024, 9, 4), 1.0, "churn"),
        Charge(datetime(2024, 9, 4, 20, tzinfo=UTC), 1.0, "churn", currency="EUR"),
    ]
    bad = write_focus(exports / "mixed.csv", charges)
    write_focus(exports / "new-good.csv", hourly(date(2024, 9, 5), date(2024, 9, 5), 7.0, "churn"))
    failed = world.run()
    assert not failed.ok
    assert failed.error == (
        f"1 of 2 new or changed files rejected; nothing stored this run: {bad}: row 3, column BillingCurrency: "
        "billed in EUR, but this source reads USD (set by good.csv, read before); configure one source per currency"
    )
    assert world.billed("churn") == before
    status = world.runtime.store.sources.status("finops", "aws")
    assert status is not None and str(bad) not in status.checkpoint["files"]

    bad.rename(bad.with_suffix(".quarantined"))  # set aside: the other new file goes in
    assert world.run().ok
    assert world.billed("churn")[date(2024, 9, 5)] == 14.0


def test_a_file_in_another_currency_than_the_files_before_is_refused(world: World, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    write_focus(exports / "usd.csv", hourly(date(2024, 9, 1), date(2024, 9, 1), 1.0, "churn"))
    assert world.run().ok
    eur = [Charge(datetime(2024, 9, 2, 1, tzinfo=UTC), 1.0, "churn", currency="EUR")]
    path = write_focus(exports / "eur.csv", eur)
    failed = world.run()
    assert not failed.ok and (
        f"{path}: row 1, column BillingCurrency: billed in EUR, but this source reads USD (set by usd.csv, read "
        "before); configure one source per currency"
    ) in (failed.error or "")


def test_unattributed_rows_are_stored_and_counted(world: World, tmp_path: Path) -> None:
    charges = [
        *hourly(date(2024, 9, 1), date(2024, 9, 1), 2.0, "churn"),
        *hourly(date(2024, 9, 1), date(2024, 9, 1), 0.5, None),
    ]
    write_focus(tmp_path / "exports" / "sep.csv", charges)
    assert world.run().ok
    assert world.billed("__unattributed__") == {date(2024, 9, 1): 1.0}
    status = world.runtime.store.sources.status("finops", "aws")
    assert status is not None
    [entry] = status.checkpoint["files"].values()
    assert (entry["rows"], entry["unattributed_rows"], entry["gpu_rows"], entry["projects"]) == (4, 2, 4, 1)
    assert status.checkpoint["version"] == CHECKPOINT_VERSION and status.checkpoint["horizon"] == "2024-09-01"
    [event] = world.runtime.store.events.events(project="finops", kinds=["spend_file_read"])
    assert event.message.endswith(
        "4 rows for 2024-09-01..2024-09-01, 5.00 USD billed, 1 projects, 2 rows unattributed, 4 GPU rows"
    )


def test_the_real_sample_through_the_source(make_runtime: RuntimeFactory, sqlite_url: str) -> None:
    clock = FrozenClock(NOW)
    runtime = make_runtime(config(sample_csv()).replace("ml-project", "application"), clock=clock)
    world = World(runtime, clock)
    record = world.run()
    assert record.ok and record.events == 1
    billed = world.billed("BrightPathMatrix")  # the tag value of the GPU rows, kept as the project id
    assert billed and all(v > 0 for v in billed.values())


def test_no_matching_file_is_an_error_not_zero_spend(world: World, tmp_path: Path) -> None:
    record = world.run()  # the exports directory is empty
    assert not record.ok and record.error == f"no FOCUS file matches {tmp_path / 'exports'}"


def test_charges_dated_in_the_future_are_refused(world: World, tmp_path: Path) -> None:
    path = write_focus(tmp_path / "exports" / "future.csv", hourly(date(2024, 10, 5), date(2024, 10, 5), 1.0, "churn"))
    record = world.run()
    assert not record.ok and f"{path}: column ChargePeriodStart: charges dated 2024-10-05 lie in the future" in (
        record.error or ""
    )


def test_a_directory_reads_data_files_only_and_exclude_sets_files_aside(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    exports = tmp_path / "exports"
    (exports / "BILLING_PERIOD=2024-09").mkdir(parents=True)
    write_focus(
        exports / "BILLING_PERIOD=2024-09" / "part-1.csv", hourly(date(2024, 9, 1), date(2024, 9, 1), 1.0, "churn")
    )
    write_focus(
        exports / "BILLING_PERIOD=2024-09" / "part-2-old.csv", hourly(date(2024, 9, 1), date(2024, 9, 1), 9.0, "churn")
    )
    (exports / "BILLING_PERIOD=2024-09" / "manifest.json").write_text('{"files": 2}')
    clock = FrozenClock(NOW)
    runtime = make_runtime(config(exports, "          exclude: ['*-old.csv']"), clock=clock)
    world = World(runtime, clock)
    assert world.run().ok
    assert world.billed("churn") == {date(2024, 9, 1): 2.0}
    status = runtime.store.sources.status("finops", "aws")
    assert status is not None and [Path(f).name for f in status.checkpoint["files"]] == ["part-1.csv"]


@pytest.fixture(autouse=True)
def _pyarrow() -> None:
    require_pyarrow()


def _append(path: Path, charges: list[Charge]) -> None:
    """Rows added at the end of the file, as an exporter growing a monthly CSV does."""
    from tests.monitor.spend.focus_data import focus_rows, write_rows

    header, rows = focus_rows(charges)
    scratch = path.with_suffix(".more")
    write_rows(scratch, header, rows)
    lines = scratch.read_text(encoding="utf-8").splitlines(keepends=True)[1:]
    with path.open("a", encoding="utf-8") as out:
        out.writelines(lines)
    scratch.unlink()
    touch(path)


def test_an_appended_file_reads_only_the_new_rows_and_adds_them(world: World, tmp_path: Path) -> None:
    path = write_focus(tmp_path / "exports" / "sep.csv", hourly(date(2024, 9, 1), date(2024, 9, 10), 1.0, "churn"))
    assert world.run().ok
    _append(
        path,
        hourly(date(2024, 9, 10), date(2024, 9, 12), 4.0, "churn")
        + hourly(date(2024, 9, 12), date(2024, 9, 12), 3.0, "vision"),
    )
    grown = world.run()
    assert grown.ok, grown
    event = world.runtime.store.events.events(project="finops", kinds=["spend_file_read"])[0]
    assert "read 8 rows appended to" in event.message and "the rows before were not read again" in event.message
    churn = world.billed("churn")
    assert churn[date(2024, 9, 1)] == 2.0 and churn[date(2024, 9, 9)] == 2.0
    assert churn[date(2024, 9, 10)] == 2.0 + 8.0 and churn[date(2024, 9, 12)] == 8.0
    assert world.billed("vision") == {date(2024, 9, 12): 6.0}
    status = world.runtime.store.sources.status("finops", "aws")
    assert status is not None
    [entry] = status.checkpoint["files"].values()
    assert entry["rows"] == 20 + 8 and entry["last_day"] == "2024-09-12"


def test_an_appended_bad_row_is_named_by_its_row_in_the_whole_file(world: World, tmp_path: Path) -> None:
    path = write_focus(tmp_path / "exports" / "sep.csv", hourly(date(2024, 9, 1), date(2024, 9, 2), 1.0, "churn"))
    assert world.run().ok
    with path.open("a", encoding="utf-8") as out:
        out.write(path.read_text(encoding="utf-8").splitlines()[1].replace("1.00000000000", "one", 1) + "\n")
    touch(path)
    failed = world.run()
    assert not failed.ok
    assert "row 5, column BilledCost: expected a number, got 'one' (in rows appended since the last run)" in str(
        failed.error
    )
    assert world.billed("churn") == {date(2024, 9, 1): 2.0, date(2024, 9, 2): 2.0}
