"""The demo's parts on their own: its bill read by the real FOCUS reader, its allocation feed, its
history, the extras `make run` installs, and the advisory line every page carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.demo import history
from monitor.demo.allocations import answer, parse_window
from monitor.demo.fleet import FLEET, project
from monitor.demo.focus_export import daily_use, write_focus_csv
from monitor.demo.prepare import self_address
from monitor.extras import extras_for
from monitor.stack.store import FeedStatus
from monitor.web.site import advisory_line
from tests.monitor.spend.focus_data import require_pyarrow
from tests.support.peers import mlmon_command

NOW = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)


def test_the_bill_reads_back_through_mlmon_read_focus(tmp_path: Path) -> None:
    """The generated export is a FOCUS file the focus source reads: GPU spend per project and day."""
    import subprocess

    require_pyarrow()
    uses = daily_use(FLEET, NOW, 3)
    path = write_focus_csv(tmp_path / "focus" / "bill.csv", uses)
    done = subprocess.run(
        mlmon_command("spend", "read-focus", str(path), "--tag", "ml-project", "--json"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout)["projects"]
    assert set(read) == {p.id for p in FLEET}
    for demo_project in FLEET:
        mine = [u for u in uses if u.project == demo_project.id]
        assert read[demo_project.id]["gpu_billed"] == pytest.approx(sum(u.gpu_cost for u in mine), abs=0.01)
        assert read[demo_project.id]["gpu_hours"] == pytest.approx(sum(u.gpu_hours for u in mine), abs=0.01)


def test_today_is_billed_for_the_hours_so_far() -> None:
    uses = [u for u in daily_use([project("churn")], NOW, 2) if u.day == NOW.date()]
    (today,) = uses
    assert today.hours == 10
    assert today.gpu_hours == pytest.approx(today.instance_hours * 8)


def test_the_allocation_feed_answers_as_opencost_does() -> None:
    uses = daily_use(FLEET, NOW, 3)
    doc = answer(FLEET, uses, "2026-12-05T00:00:00Z,2026-12-06T00:00:00Z")
    (allocations,) = doc["data"]
    assert allocations["recsys"]["gpuEfficiency"] == 0.06
    assert allocations["recsys"]["gpuHours"] > 0
    assert allocations["vision"]["totalCost"] > allocations["vision"]["gpuCost"]
    with pytest.raises(ValueError, match="window: expected <RFC 3339 start>,<RFC 3339 end>"):
        parse_window("today")


def test_history_is_the_same_when_pushed_again() -> None:
    fraud = project("fraud")
    first = history.samples(fraud, NOW, NOW - timedelta(days=3), NOW)
    again = history.samples(fraud, NOW, NOW - timedelta(days=3), NOW)
    assert first == again
    before = history.accuracy_at(fraud, NOW, NOW - timedelta(days=3))
    after = history.accuracy_at(fraud, NOW, NOW)
    assert before - after == pytest.approx(fraud.drop_after_change, abs=0.01)
    (event,) = [e for e in history.events(FLEET, NOW) if e["project"] == "fraud"]
    assert event["message"] == "model fraud-detector version 7 -> 8 (alias production)"


def test_the_self_polling_address_follows_the_listen_address() -> None:
    assert self_address("127.0.0.1:29005") == "127.0.0.1:29005"
    assert self_address("0.0.0.0:8080") == "127.0.0.1:8080"
    assert self_address("[::]:8080") == "127.0.0.1:8080"


def test_make_run_installs_the_extras_the_configuration_needs() -> None:
    config = {"projects": [{"sources": [{"kind": "focus"}, {"kind": "torch_eval"}, {"kind": "push"}]}]}
    assert extras_for(config) == ["focus", "torch"]
    assert extras_for(config, "postgresql+psycopg://x/y") == ["focus", "postgres", "torch"]
    assert extras_for(None) == []
    assert extras_for({"projects": "nonsense"}) == []


def _feed(**fields: object) -> FeedStatus:
    base: dict[str, object] = {
        "name": "advisories",
        "kind": "snapshot",
        "location": "the OSV snapshot shipped with mlmon",
        "last_attempt_at": NOW,
        "last_success_at": NOW,
        "last_error": None,
        "consecutive_failures": 0,
        "records": 151,
        "detail": {"as_of": "2026-07-23T14:32:21+00:00"},
    }
    base.update(fields)
    return FeedStatus(**base)  # type: ignore[arg-type]


def test_the_advisory_line_says_what_data_is_in_use_and_never_calls_a_failing_feed_current() -> None:
    text, ok = advisory_line(_feed(), "offline database builtin")
    assert ok
    assert text == (
        "Advisory data: the OSV snapshot shipped with mlmon, 151 records, data as of 2026-07-23, "
        "loaded 2026-12-06 10:30 UTC"
    )
    text, ok = advisory_line(None, "OSV API https://osv.example")
    assert (text, ok) == ("Advisory data: none yet (OSV API https://osv.example, not loaded yet)", False)
    never = _feed(last_success_at=None, last_error="connect timeout", consecutive_failures=3)
    text, ok = advisory_line(never, "OSV API https://osv.example")
    assert (
        not ok and "none yet (OSV API https://osv.example failing since 2026-12-06 10:30 UTC: connect timeout)" in text
    )
    stale = _feed(consecutive_failures=2)
    text, ok = advisory_line(stale, "x")
    assert not ok and text.endswith("; refreshing has failed since 2026-12-06 10:30 UTC")


def test_a_restart_keeps_the_story_and_the_live_feed_moves_it_on(tmp_path: Path) -> None:
    """The second start re-pushes the same history (no new samples, no second version change);
    the live feed then adds one evaluation per project and rewrites today's bill."""
    from monitor.core.clock import FrozenClock
    from monitor.core.types import SeriesKey, labels_of, ms_from_datetime
    from monitor.demo.prepare import prepare_files, seed_store
    from monitor.demo.seed import LiveFeed
    from monitor.store import migrate
    from monitor.store.store import Store

    first = prepare_files(tmp_path / "demo", "127.0.0.1:29999", NOW)
    store = Store.open(first.database_url)
    try:
        migrate.upgrade(store.engine)
        pushed = seed_store(store, first, NOW)
        assert pushed > 0 and first.first_start
        later = NOW + timedelta(hours=3)
        again = prepare_files(tmp_path / "demo", "127.0.0.1:29999", later)
        assert not again.first_start and again.anchor == NOW
        seed_store(store, again, later)
        events = store.events.events(project="fraud")
        assert len(events) == 1, "the version change is pushed once"
        key = SeriesKey("fraud", "accuracy", labels_of({"model": "fraud-detector"}))
        start, end = ms_from_datetime(NOW - timedelta(days=31)), ms_from_datetime(later)
        points = store.samples.points(key, start, end)
        # every 6 h over 30 days, the first start's newest evaluation, the second start's ones
        assert len({p.ts_ms for p in points}) == len(points)
        assert points[-1].ts_ms == ms_from_datetime(later)
        assert points[-1].value == history.accuracy_at(project("fraud"), NOW, later)

        feed = LiveFeed(store, FLEET, again.data, again.anchor, FrozenClock(later))
        bill = again.data / "focus" / "demo-focus.csv"
        before = bill.read_text()
        assert feed.tick(later + timedelta(hours=1)) >= len(FLEET)
        assert bill.read_text() != before, "today's bill now covers one more hour"
    finally:
        store.close()
