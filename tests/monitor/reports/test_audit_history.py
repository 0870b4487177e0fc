"""The audit report loaded from a history made by the stack's own sync, on SQLite and PostgreSQL:
status on past dates replayed (open, overdue, fixed, ignored, expired ignore), SLA due dates and
compliance computed by hand, evidence, change log, and the refusals (before any history, future,
unknown project)."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.core.errors import InvalidInput, NotFound
from monitor.reports.audit_loader import audit_report
from tests.monitor.reports.conftest import IGNORE_REASON, NOW, T1, T2, T3, T4, T5, T6, Timeline, config_text
from tests.monitor.stack.support import torch_releases
from tests.support.peers import shared_data

A = datetime(2026, 2, 15, tzinfo=UTC)  # both CVEs open; CVE-2026-24747 still within its SLA; vision ignores it
B = datetime(2026, 3, 5, tzinfo=UTC)  # churn fixed in time; ranker overdue; vision's ignore covers it
C = datetime(2026, 4, 1, 12, tzinfo=UTC)  # vision's ignore expired 03-31 (before the sync that noted it)
E = datetime(2026, 7, 1, tzinfo=UTC)  # before CVE-2025-3730's fix was published (T6)

# PYSEC-2026-2286 (published 22:15:56) is the record that names 2.10.0 as torch's fix; its alias
# GHSA-63cw-57p8-fm3p was out two hours earlier but names the package `pytorch`, so it cannot start
# torch's SLA clock. 2.10.0 itself was uploaded before either.
FIX_24747 = datetime(2026, 1, 27, 22, 15, 56, 470000, tzinfo=UTC)
DUE_24747 = FIX_24747 + timedelta(days=30)  # high: 30 days
# 2.8.0 was uploaded in 2025-08, but the first record naming it as torch's fix, PYSEC-2026-1970, was
# published on 2026-07-07: the SLA clock starts when a fix is known, not when its alias first appeared.
FIX_3730 = datetime(2026, 7, 7, 16, 2, 51, 40640, tzinfo=UTC)
DUE_3730 = FIX_3730 + timedelta(days=90)  # medium: 90 days
CVE_24747 = "CVE-2026-24747"
CVE_3730 = "CVE-2025-3730"
SUMMARY_24747 = "PyTorch Vulnerable to Remote Code Execution via Untrusted Checkpoint Files"
SUMMARY_3730 = "PyTorch Improper Resource Shutdown or Release vulnerability"


def days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400, 2)


def report(line: Timeline, as_of: datetime | None = None, **kwargs: Any) -> dict[str, Any]:
    return audit_report(line.store, line.runtime.config, NOW, as_of=as_of, **kwargs)


def project(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in doc["projects"] if p["project"] == name)


def finding(doc: dict[str, Any], name: str, vuln: str) -> dict[str, Any]:
    found = [f for f in project(doc, name)["findings"] if f["id"] == vuln]
    assert len(found) == 1, (name, vuln, found)
    return found[0]


def statuses(doc: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    return {(p["project"], f["id"]): (f["status"], f["sla"]) for p in doc["projects"] for f in p["findings"]}


def rates(doc: dict[str, Any]) -> dict[str, float | None]:
    return {p["project"]: p["compliance"]["rate"] for p in doc["projects"]} | {
        "*": doc["summary"]["compliance"]["rate"]
    }


def high_24747(**changes: Any) -> dict[str, Any]:
    """CVE-2026-24747 on torch 2.7.1 as first seen at T1 (fields a moment changes are overridden)."""
    return {
        "package": "torch",
        "versions": ["2.7.1"],
        "variant": "unknown build",
        "id": CVE_24747,
        "aliases": ["GHSA-63cw-57p8-fm3p", "PYSEC-2026-2286"],
        "summary": SUMMARY_24747,
        "severity": "high",
        "score": 8.8,  # CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H
        "state": "affected",
        "fixed_in": "2.10.0",
        "fix_available_at": FIX_24747.isoformat(),
        "sla_seconds": 30 * 86400,
        "due_at": DUE_24747.isoformat(),
        "first_seen_at": T1.isoformat(),
        "exposed_since": T1.isoformat(),
        "fixed_at": None,
        "resolution": None,
        "days_overdue": None,
        "ignore": None,
        "advisory_revision": 1,
        **changes,
    }


def without_id(doc: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(doc["finding"], int)
    return {k: v for k, v in doc.items() if k != "finding"}


def test_three_past_dates_reproduce_the_status_then(timeline: Timeline) -> None:
    a = report(timeline, A)
    assert a["as_of"] == A.isoformat() and a["current"] is False
    assert a["period"] == {"since": (A - timedelta(days=90)).isoformat(), "until": A.isoformat()}
    assert a["history_starts_at"] == T1.isoformat()
    assert without_id(finding(a, "churn", CVE_24747)) == high_24747(
        days_exposed=days(A - T1), status="open", sla="within"
    )
    ignore = {"reason": IGNORE_REASON, "expires": "2026-03-31", "since": T2.isoformat(), "state": "active"}
    assert without_id(finding(a, "vision", CVE_24747)) == high_24747(
        versions=["2.6.0+cu124"], variant="CUDA 12.4", days_exposed=days(A - T1), status="ignored",
        sla="excepted", ignore=ignore,
    )  # fmt: skip
    assert without_id(finding(a, "ranker", CVE_3730)) == {
        "package": "torch",
        "versions": ["2.7.1"],
        "variant": "unknown build",
        "id": CVE_3730,
        "aliases": ["GHSA-887c-mr87-cxwp"],
        "summary": SUMMARY_3730,
        "severity": "medium",
        "score": 4.8,
        "state": "affected",
        "fixed_in": None,  # GHSA-887c only says last_affected 2.7.1: no known fix yet
        "fix_available_at": None,
        "sla_seconds": None,
        "due_at": None,
        "first_seen_at": T1.isoformat(),
        "exposed_since": T1.isoformat(),
        "fixed_at": None,
        "resolution": None,
        "days_exposed": days(A - T1),
        "days_overdue": None,
        "status": "open",
        "sla": "none",
        "ignore": None,
        "advisory_revision": 1,
    }
    assert statuses(a) == {
        ("churn", CVE_24747): ("open", "within"),
        ("churn", CVE_3730): ("open", "none"),
        ("ranker", CVE_24747): ("open", "within"),
        ("ranker", CVE_3730): ("open", "none"),
        ("vision", CVE_24747): ("ignored", "excepted"),
        ("vision", CVE_3730): ("open", "none"),
    }
    # by hand: churn and ranker 1 within of 1 judged; vision judges nothing (ignored, no SLA); 2 of 2
    assert rates(a) == {"billing": None, "churn": 1.0, "ranker": 1.0, "vision": None, "*": 1.0}
    assert a["summary"]["compliance"] == {
        "met": 0, "missed": 0, "within": 2, "overdue": 0, "excepted": 1, "none": 3, "judged": 2, "rate": 1.0,
    }  # fmt: skip
    assert a["summary"]["counts"] == {"open": 5, "overdue": 0, "fixed": 0, "ignored": 1}

    b = report(timeline, B)
    assert without_id(finding(b, "churn", CVE_24747)) == high_24747(
        fixed_at=T3.isoformat(), resolution="upgraded", days_exposed=18.0, status="fixed", sla="met"
    )
    assert without_id(finding(b, "ranker", CVE_24747)) == high_24747(
        days_exposed=days(B - T1), days_overdue=days(B - DUE_24747), status="overdue", sla="overdue"
    )
    assert days(B - DUE_24747) == 6.07
    assert finding(b, "churn", CVE_3730)["status"] == "fixed" and finding(b, "churn", CVE_3730)["sla"] == "none"
    assert finding(b, "vision", CVE_24747)["status"] == "ignored"  # past due, but the ignore is valid: excepted
    assert finding(b, "vision", CVE_24747)["ignore"]["state"] == "active"
    # by hand: churn 1 met of 1; ranker 0 of 1 (overdue); vision none judged; overall 1 of 2
    assert rates(b) == {"billing": None, "churn": 1.0, "ranker": 0.0, "vision": None, "*": 0.5}
    assert b["summary"]["counts"] == {"open": 2, "overdue": 1, "fixed": 2, "ignored": 1}

    c = report(timeline, C)
    expired = finding(c, "vision", CVE_24747)
    assert expired["status"] == "overdue" and expired["sla"] == "overdue"  # the ignore lapsed at 2026-04-01 00:00
    assert expired["ignore"] == {**ignore, "state": "expired"}
    assert expired["days_overdue"] == days(C - DUE_24747)
    assert without_id(finding(c, "ranker", CVE_24747)) == high_24747(
        fixed_at=T4.isoformat(), resolution="upgraded", days_exposed=41.0, days_overdue=days(T4 - DUE_24747),
        status="fixed", sla="missed",
    )  # fmt: skip
    assert days(T4 - DUE_24747) == 16.45
    # by hand: churn 1 met; ranker 1 missed; vision 1 overdue (+1 without SLA): 1 of 3
    assert rates(c) == {"billing": None, "churn": 1.0, "ranker": 0.0, "vision": 0.0, "*": 0.3333}
    assert c["summary"]["compliance"]["judged"] == 3

    # after the sync noted the expiry, the history says so too
    assert finding(report(timeline, T5 + timedelta(hours=1)), "vision", CVE_24747)["ignore"]["state"] == "expired"


def test_a_fix_published_later_is_not_seen_before_it(timeline: Timeline) -> None:
    before = report(timeline, E)
    old = finding(before, "vision", CVE_3730)
    assert old["fixed_in"] is None and old["fix_available_at"] is None and old["due_at"] is None
    assert old["status"] == "open" and old["sla"] == "none" and old["advisory_revision"] == 1
    # PYSEC-2026-1970 (an alias now) was not in the database yet: the names are those of revision 1
    assert old["aliases"] == ["GHSA-887c-mr87-cxwp"] and old["score"] == 4.8
    assert any("advisory records in force at as_of (revision" in n for n in before["notes"])
    # findings fixed before the period (90 days back from E) are left out
    assert project(before, "churn")["findings"] == [] and project(before, "ranker")["findings"] == []

    now = report(timeline)
    new = finding(now, "vision", CVE_3730)
    assert new["fixed_in"] == "2.8.0" and new["advisory_revision"] == 6
    # the later of PYSEC-2026-1970's publication (the first record naming the fix) and 2.8.0's upload
    assert new["fix_available_at"] == FIX_3730.isoformat() and new["due_at"] == DUE_3730.isoformat()
    # known for 13 days of its 90: open, within the SLA (not overdue the moment it was imported)
    assert new["status"] == "open" and new["days_overdue"] is None and NOW < DUE_3730
    assert new["aliases"] == ["GHSA-887c-mr87-cxwp", "PYSEC-2026-1970"]
    # vision: CVE-2026-24747 overdue since its ignore lapsed, this one within: 1 of 2
    assert rates(now) == {"billing": None, "churn": None, "ranker": None, "vision": 0.5, "*": 0.5}


def test_the_report_agrees_with_the_stack_history_api(timeline: Timeline) -> None:
    """What the report calls open/overdue/ignored at a date is what the stack's own as_of query finds."""
    for moment in (A, B, T3, C, E, NOW - timedelta(seconds=1)):
        doc = report(timeline, moment, since=T1)
        shown = {(p, v) for (p, v), (status, _) in statuses(doc).items() if status != "fixed"}
        assert shown == {(r.project, r.vuln_id) for r in timeline.stack.findings(as_of=moment)}, moment


def test_current_report_packages_torch_evidence(timeline: Timeline) -> None:
    doc = report(timeline)
    assert doc["current"] is True and doc["as_of"] == NOW.isoformat() and doc["generated_at"] == NOW.isoformat()
    assert doc["sla_policy_seconds"] == {
        "unknown": None, "none": None, "low": 180 * 86400, "medium": 90 * 86400, "high": 30 * 86400,
        "critical": 7 * 86400,
    }  # fmt: skip
    assert [p["project"] for p in doc["projects"]] == ["billing", "churn", "ranker", "vision"]
    churn = project(doc, "churn")
    assert churn["name"] == "Churn classifier" and churn["team"] == "growth" and churn["configured"]
    assert churn["owners"] == [{"name": "Ada", "email": "ada@example.com", "slack": "@ada"}]
    assert churn["packages"] == [
        {"package": "requests", "version": "2.32.3", "sources": ["deps"], "since": T1.isoformat()},
        {"package": "torch", "version": "2.10.0", "sources": ["deps"], "since": T3.isoformat()},
    ]
    assert churn["torch"] == [{"version": "2.10.0", "variant": "unknown", "accelerator": None, "sources": ["deps"]}]
    source = churn["sources"][0]
    assert source == {
        "source": "deps",
        "kind": "lockfile",
        "location": str(timeline.tmp / "churn" / "requirements.txt"),
        "inventory_read_at": T6.isoformat(),
        "inventory_read_from": "inventory",
        "last_run_at": T6.isoformat(),
        "last_outcome": "ok",
        "last_error": None,
    }
    vision = project(doc, "vision")
    assert vision["team"] is None and [o["name"] for o in vision["owners"]] == ["Grace", "Alan"]
    assert vision["torch"] == [
        {"version": "2.6.0+cu124", "variant": "cuda", "accelerator": "12.4", "sources": ["serving"]}
    ]
    assert [(p["package"], p["version"]) for p in vision["packages"]] == [("numpy", "2.2.6"), ("torch", "2.6.0+cu124")]
    billing = project(doc, "billing")
    assert billing == {
        "project": "billing", "name": "billing", "team": "finance", "owners": [], "configured": True,
        "scanned": False, "first_read_at": None, "torch": [], "packages": [], "findings": [], "counts": {"open": 0, "overdue": 0, "fixed": 0, "ignored": 0},
        "compliance": {"met": 0, "missed": 0, "within": 0, "overdue": 0, "excepted": 0, "none": 0, "judged": 0, "rate": None},
        "sources": [], "plan": None,
    }  # fmt: skip
    assert doc["summary"]["not_scanned"] == ["billing"]  # never scanned: "not scanned", not "0 open"
    osv = str(timeline.tmp / "osv")
    # one revision per sync (T1..T6); the records changed at T1 (5) and T6 (+1)
    assert doc["evidence"]["advisories"] == {
        "revision": 6, "refreshed_at": T6.isoformat(), "feed": "advisories", "source": osv, "records": 6,
        "content_revision": 6, "content_changed_at": T6.isoformat(),
    }  # fmt: skip
    feeds = {f["name"]: f for f in doc["evidence"]["feeds"]}
    assert feeds["advisories"] == {
        "name": "advisories", "kind": "offline", "location": osv, "last_attempt_at": T6.isoformat(),
        "last_success_at": T6.isoformat(), "last_error": None, "consecutive_failures": 0, "records": 6,
    }  # fmt: skip
    assert feeds["index:torch"]["kind"] == "pep691" and feeds["index:torch"]["records"] == len(torch_releases())
    assert feeds["index:torch"]["location"].startswith(timeline.index_url)


def test_past_evidence_is_that_of_the_date(timeline: Timeline) -> None:
    doc = report(timeline, B)
    assert doc["evidence"]["feeds"] == []  # feed states are of the present only
    assert doc["evidence"]["advisories"] == {
        "revision": 3, "refreshed_at": T3.isoformat(), "feed": "advisories", "source": str(timeline.tmp / "osv"),
        "records": 5, "content_revision": 1, "content_changed_at": T1.isoformat(),
    }  # fmt: skip
    ranker = project(doc, "ranker")
    # the stored inventory is newer (T6): the inventory in force at B was read at the last run before it
    assert ranker["sources"][0]["inventory_read_at"] == T3.isoformat()
    assert (
        ranker["sources"][0]["inventory_read_from"] == "runs" and ranker["sources"][0]["last_run_at"] == T3.isoformat()
    )
    assert ranker["packages"] == [
        {"package": "torch", "version": "2.7.1", "sources": ["deps"], "since": T1.isoformat()}
    ]
    assert ranker["torch"] == [{"version": "2.7.1", "variant": "unknown", "accelerator": None, "sources": ["deps"]}]
    assert [(p["package"], p["version"]) for p in project(doc, "churn")["packages"]] == [
        ("requests", "2.32.3"),
        ("torch", "2.10.0"),
    ]
    vision = project(doc, "vision")
    assert vision["torch"][0]["variant"] == "cuda" and vision["torch"][0]["accelerator"] == "12.4"  # from the label


def test_change_log_entries_of_the_period(timeline: Timeline) -> None:
    doc = report(timeline, since=T1)
    logged = timeline.store.changes.entries(since=T1, until=NOW)
    assert [c["id"] for c in doc["changes"]] == [c.id for c in logged] and doc["changes"]
    token = next(c for c in doc["changes"] if c["action"] == "token.create")
    assert token == {
        "id": token["id"], "at": T2.isoformat(), "actor": "ops-admin", "action": "token.create", "project": None,
        "target": "audit-team", "details": {"role": "auditor", "projects": []},
    }  # fmt: skip
    assert not doc["changes_truncated"]
    # the default period (90 days before now) starts after those changes
    assert report(timeline)["changes"] == []
    # a report of one project keeps the project-less entries and that project's own
    only = report(timeline, since=T1, projects=["churn"])
    assert [p["project"] for p in only["projects"]] == ["churn"]
    assert all(c["project"] in (None, "churn") for c in only["changes"])
    assert {c["id"] for c in only["changes"]} == {c.id for c in logged if c.project in (None, "churn")}
    vision = {c.id for c in logged if c.project == "vision"}
    assert vision  # the configuration reload at T2 logged vision's new ignore
    assert {c["id"] for c in doc["changes"]} >= vision and not {c["id"] for c in only["changes"]} & vision


def test_refusals_are_clear(timeline: Timeline) -> None:
    with pytest.raises(InvalidInput) as before:
        report(timeline, datetime(2026, 2, 1, tzinfo=UTC))
    assert str(before.value.issues[0]) == (
        "as_of: no history on or before 2026-02-01T00:00:00+00:00: the earliest inventory, finding or advisory "
        "data was recorded at 2026-02-02T09:00:00+00:00"
    )
    with pytest.raises(InvalidInput, match="is in the future"):
        report(timeline, NOW + timedelta(days=1))
    with pytest.raises(InvalidInput, match="the period must start before as_of"):
        report(timeline, B, since=B)
    with pytest.raises(NotFound, match="unknown project 'nope': not in the configuration and not in the stack history"):
        report(timeline, projects=["churn", "nope"])
    # the first moment of history is a valid as_of
    assert report(timeline, T1)["summary"]["findings"] == 6
    # the garbage collector paused while reports are made is running again, refusals included
    assert gc.isenabled()


def test_a_project_no_longer_configured_is_still_reported(timeline: Timeline) -> None:
    config = timeline.runtime.config
    trimmed = config.model_copy(update={"projects": [p for p in config.projects if p.id != "ranker"]})
    doc = audit_report(timeline.store, trimmed, NOW, as_of=B)
    ranker = project(doc, "ranker")
    assert ranker["configured"] is False and ranker["owners"] == [] and ranker["team"] is None
    assert {f["id"]: f["status"] for f in ranker["findings"]} == {CVE_24747: "overdue", CVE_3730: "open"}
    alone = audit_report(timeline.store, trimmed, NOW, as_of=B, projects=["ranker"])
    assert [p["project"] for p in alone["projects"]] == ["ranker"]


def test_a_record_rescored_later_keeps_its_old_score_in_a_past_report(timeline: Timeline) -> None:
    """GHSA-887c-mr87-cxwp re-published on 2026-07-15 with a critical vector: the finding is
    re-scored then; a report of a date before shows the score the records gave on that date."""
    record = json.loads(shared_data("osv", "PyPI", "torch", "GHSA-887c-mr87-cxwp.json").read_text())
    record["modified"] = "2026-07-15T08:00:00Z"
    record["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    (timeline.tmp / "osv" / "GHSA-887c-mr87-cxwp.json").write_text(json.dumps(record))
    timeline.step(datetime(2026, 7, 15, 9, 0, tzinfo=UTC))
    timeline.clock.set(NOW)

    now = finding(report(timeline), "vision", CVE_3730)
    assert (now["severity"], now["score"]) == ("critical", 9.8)
    before = report(timeline, E)
    old = finding(before, "vision", CVE_3730)
    # severity replayed from the finding's events, the score from the records in force on E
    assert (old["severity"], old["score"]) == ("medium", 4.8)
    assert not any("score is left empty" in n for n in before["notes"])


def test_owners_team_and_names_of_a_past_date_come_from_the_change_log(timeline: Timeline) -> None:
    """On 2026-07-15 a reload hands churn to another team and owner and drops ranker: the report of
    a date before shows who answered for them then; the current one who does now."""
    text = config_text(timeline.tmp, timeline.index_url, ignore=False)
    text = text.replace("name: Churn classifier\n    team: growth\n", "name: Churn v2\n    team: platform\n")
    text = text.replace(
        'owners: [{name: Ada, email: ada@example.com, slack: "@ada"}]',
        "owners: [{name: Grace, email: grace@example.com}]",
    )
    ranker = text.index("  - id: ranker")
    text = text[:ranker] + text[text.index("  - id: vision") :]
    timeline.clock.set(datetime(2026, 7, 15, 9, 0, tzinfo=UTC))
    Path(timeline.runtime.settings.config).write_text(text)
    assert timeline.runtime.reload(actor="ops-admin").ok
    timeline.clock.set(NOW)

    now = report(timeline)
    churn_now = project(now, "churn")
    assert (churn_now["name"], churn_now["team"], churn_now["owners"]) == (
        "Churn v2",
        "platform",
        [{"name": "Grace", "email": "grace@example.com", "slack": None}],
    )
    assert project(now, "ranker")["configured"] is False and project(now, "ranker")["owners"] == []

    past = report(timeline, E)
    churn = project(past, "churn")
    assert (churn["name"], churn["team"]) == ("Churn classifier", "growth")
    assert churn["owners"] == [{"name": "Ada", "email": "ada@example.com", "slack": "@ada"}]
    ranker_then = project(past, "ranker")
    assert ranker_then["team"] == "search" and [o["name"] for o in ranker_then["owners"]] == ["Linus"]
    assert project(past, "vision")["owners"] == project(now, "vision")["owners"], "vision did not change"
    assert any("replayed from the configuration reloads" in n for n in past["notes"])
    # a date after the reload is as now
    assert project(report(timeline, datetime(2026, 7, 16, tzinfo=UTC)), "churn")["team"] == "platform"
