"""The report over a fleet with a month of history (made by the stack's own reconcile), on SQLite and
PostgreSQL: the number of queries does not grow with the number of projects (no query per
project), and every project's findings agree with the stack's own replay of that date."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event

from monitor.reports.audit_loader import audit_report
from monitor.stack.store import StackStore
from monitor.store.store import Store
from tests.monitor.reports.fleet import IGNORED, build_fleet, ignore_expiry


def counted(store: Store, **kwargs: Any) -> tuple[dict[str, Any], int]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        return audit_report(store, **kwargs), len(statements)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def test_a_month_of_fleet_history(store: Store) -> None:
    fleet = build_fleet(store, projects=12, packages=40, days=30, runs_per_day=2)
    now = fleet.end + timedelta(hours=23)
    small = fleet.projects[:3]
    doc, queries = counted(store, config=fleet.config, now=now)
    only, fewer = counted(store, config=fleet.config, now=now, projects=small)
    past, past_queries = counted(store, config=fleet.config, now=now, as_of=fleet.start + timedelta(days=10))
    # the same handful whatever the number of projects; a past date adds the advisory records then
    # and the directory changes since
    assert queries == fewer <= 15 and past_queries <= 16  # 15: the stored plans are one more read
    assert [p["project"] for p in doc["projects"]] == fleet.projects
    assert [p["project"] for p in only["projects"]] == small
    assert all(len(p["packages"]) == 40 for p in doc["projects"])
    assert doc["summary"]["findings"] == sum(len(p["findings"]) for p in doc["projects"]) > 12

    stack = StackStore(store.engine)
    for report, moment in ((doc, now), (past, fleet.start + timedelta(days=10))):
        shown = {(p["project"], f["id"]) for p in report["projects"] for f in p["findings"] if f["status"] != "fixed"}
        assert shown == {(r.project, r.vuln_id) for r in stack.findings(as_of=moment)}
    # every fifth project ignored CVE-2025-32434 until mid-month: ignored then, open (overdue) now
    ignored_then = {
        p["project"] for p in past["projects"] for f in p["findings"] if f["id"] == IGNORED and f["status"] == "ignored"
    }
    assert ignored_then and all(int(p[1:]) % 5 == 0 for p in ignored_then)
    for project in ignored_then:
        now_doc = next(
            f for p in doc["projects"] if p["project"] == project for f in p["findings"] if f["id"] == IGNORED
        )
        assert (
            now_doc["status"] in ("overdue", "fixed")
            and now_doc["ignore"]["expires"] == ignore_expiry(fleet).isoformat()
        )
    # fixes happened during the month (weekly upgrades), and each has its SLA outcome
    fixed = [f for p in doc["projects"] for f in p["findings"] if f["status"] == "fixed"]
    assert fixed and all(f["fixed_at"] and f["resolution"] == "upgraded" for f in fixed)
    assert {f["sla"] for f in fixed} <= {"met", "missed", "excepted", "none"}
    assert len(doc["changes"]) == len(store.changes.entries(since=now - timedelta(days=90), until=now))
