"""The pure builder on histories written by hand (event logs shaped as the stack's sync writes
them): the cases a single timeline does not reach."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from monitor.reports.audit import build_audit
from monitor.reports.audit_inputs import AuditInputs, ProjectInfo
from monitor.reports.finding_status import compliance, finding_doc
from monitor.stack.evidence import FindingEvent, FindingRecord
from monitor.stack.sla import Sla
from monitor.store.changes import Change

SLA = {r: Sla().for_rating(r) for r in ("unknown", "none", "low", "medium", "high", "critical")}
OPENED = datetime(2026, 1, 1, tzinfo=UTC)
FIX = datetime(2026, 1, 2, tzinfo=UTC)  # high: due 2026-02-01
DUE = FIX + timedelta(days=30)


def record(*events: FindingEvent, **values: Any) -> FindingRecord:
    base: dict[str, Any] = {
        "id": 7,
        "project": "churn",
        "package": "torch",
        "vuln_id": "CVE-2025-32434",
        "ids": ("CVE-2025-32434", "GHSA-53q9-r3pm-6pq6", "PYSEC-2025-41"),
        "versions": ("2.5.1",),
        "variant": None,
        "state": "affected",
        "severity": "high",
        "score": 8.8,
        "summary": "torch.load with weights_only=True leads to remote code execution",
        "fixed_in": "2.6.0",
        "fix_available_at": FIX,
        "published": FIX,
        "exposed_since": OPENED,
        "first_seen_at": OPENED,
        "resolved_at": None,
        "resolution": None,
        "advisory_revision": 1,
    }
    opened = FindingEvent(OPENED, "opened", {"severity": "high", "fixed_in": "2.6.0", "advisory_revision": 1})
    return FindingRecord(**{**base, **values}, events=(opened, *events))


def ignored(at: datetime, expires: date, reason: str = "accepted") -> FindingEvent:
    return FindingEvent(at, "ignored", {"id": "CVE-2025-32434", "reason": reason, "expires": expires.isoformat()})


def unignored(at: datetime, why: str) -> FindingEvent:
    return FindingEvent(at, "unignored", {"reason": why, "was": {}})


def doc(rec: FindingRecord, as_of: datetime, uploads: dict[tuple[str, str], datetime] | None = None) -> dict[str, Any]:
    return finding_doc(rec, as_of, SLA, uploads or {})


def test_fixed_late_while_an_ignore_covered_the_whole_overdue_time_is_excepted() -> None:
    fixed_at = DUE + timedelta(days=10)
    covered = record(
        ignored(OPENED + timedelta(days=3), date(2026, 3, 1)),
        FindingEvent(fixed_at, "resolved", {"resolution": "upgraded"}),
        resolved_at=fixed_at,
        resolution="upgraded",
    )
    out = doc(covered, fixed_at + timedelta(days=1))
    assert out["status"] == "fixed" and out["sla"] == "excepted" and out["days_overdue"] == 10.0
    assert out["ignore"]["state"] == "ended with the fix"
    # an ignore that lapsed before the fix leaves a gap: missed
    lapsed = covered._replace(events=(covered.events[0], ignored(OPENED, date(2026, 2, 5)), covered.events[2]))
    assert doc(lapsed, fixed_at + timedelta(days=1))["sla"] == "missed"
    # two ignores back to back (the reason changed) cover it together
    chained = covered._replace(
        events=(
            covered.events[0],
            ignored(OPENED, date(2026, 2, 5)),
            ignored(datetime(2026, 2, 4, tzinfo=UTC), date(2026, 3, 1), "re-reviewed"),
            covered.events[2],
        ),
    )
    assert doc(chained, fixed_at + timedelta(days=1))["sla"] == "excepted"


def test_an_ignore_removed_from_the_configuration_opens_the_finding_again() -> None:
    rec = record(
        ignored(OPENED, date(2027, 1, 1)),
        unignored(datetime(2026, 1, 20, tzinfo=UTC), "removed from the configuration"),
    )
    during = doc(rec, datetime(2026, 1, 10, tzinfo=UTC))
    assert during["status"] == "ignored" and during["ignore"]["state"] == "active"
    after = doc(rec, datetime(2026, 2, 10, tzinfo=UTC))
    assert after["status"] == "overdue" and after["sla"] == "overdue"
    assert after["ignore"] == {
        "reason": "accepted",
        "expires": "2027-01-01",
        "since": OPENED.isoformat(),
        "state": "removed",
    }


def test_an_ignore_is_valid_through_its_expiry_date_utc() -> None:
    rec = record(ignored(OPENED, date(2026, 2, 10)))
    assert doc(rec, datetime(2026, 2, 10, 23, 59, 59, tzinfo=UTC))["status"] == "ignored"
    lapsed = doc(rec, datetime(2026, 2, 11, tzinfo=UTC))
    assert lapsed["status"] == "overdue" and lapsed["ignore"]["state"] == "expired"


def test_changes_after_as_of_are_undone() -> None:
    """Severity raised and fix changed later: the past shows the old ones, with the fix date recomputed."""
    later = datetime(2026, 3, 1, tzinfo=UTC)
    rec = record(
        FindingEvent(later, "changed", {"severity": ["medium", "critical"], "fixed_in": ["2.5.2", "2.6.0"],
                                        "versions": [["2.5.1"], ["2.5.1", "2.5.1+cu121"]], "advisory_revision": 4}),
        severity="critical", score=9.8, versions=("2.5.1", "2.5.1+cu121"), advisory_revision=4,
    )  # fmt: skip
    uploaded = datetime(2026, 1, 10, tzinfo=UTC)
    past = doc(rec, datetime(2026, 2, 1, tzinfo=UTC), {("torch", "2.5.2"): uploaded})
    assert past["severity"] == "medium" and past["score"] is None  # the stored score is the critical one
    assert past["fixed_in"] == "2.5.2" and past["versions"] == ["2.5.1"] and past["advisory_revision"] == 1
    assert past["fix_available_at"] == uploaded.isoformat()  # later than the publication (FIX)
    assert past["due_at"] == (uploaded + timedelta(days=90)).isoformat() and past["status"] == "open"
    now = doc(rec, datetime(2026, 3, 2, tzinfo=UTC))
    assert now["severity"] == "critical" and now["score"] == 9.8 and now["advisory_revision"] == 4
    assert now["due_at"] == (FIX + timedelta(days=7)).isoformat() and now["status"] == "overdue"


def test_findings_without_an_sla() -> None:
    as_of = datetime(2026, 6, 1, tzinfo=UTC)
    assert doc(record(severity="unknown", score=None), as_of)["sla"] == "none"  # unknown: no SLA by default
    with_unknown = finding_doc(
        record(severity="unknown", score=None), as_of, {**SLA, "unknown": timedelta(days=60)}, {}
    )
    assert with_unknown["sla"] == "overdue" and with_unknown["due_at"] == (FIX + timedelta(days=60)).isoformat()
    assert doc(record(state="undetermined"), as_of)["sla"] == "none"
    assert doc(record(fixed_in=None, fix_available_at=None), as_of)["due_at"] is None


def test_compliance_by_hand() -> None:
    assert compliance(["met", "met", "missed", "within", "overdue", "excepted", "none"]) == {
        "met": 2, "missed": 1, "within": 1, "overdue": 1, "excepted": 1, "none": 1, "judged": 5, "rate": 0.6,
    }  # fmt: skip
    assert compliance(["excepted", "none"])["rate"] is None
    assert compliance(["met", "missed", "missed"])["rate"] == 0.3333


def test_report_of_inputs_by_hand() -> None:
    as_of = datetime(2026, 2, 20, tzinfo=UTC)
    inputs = AuditInputs(
        generated_at=as_of,
        as_of=as_of,
        since=as_of - timedelta(days=90),
        current=False,
        history_starts_at=OPENED,
        sla=SLA,
        projects=[ProjectInfo("churn", "Churn", "growth", ({"name": "Ada", "email": "ada@example.com"},))],
        findings=[record(), record(id=8, project="legacy", vuln_id="CVE-2024-31580", ids=("CVE-2024-31580",))],
        changes=[
            Change(OPENED, "cli:ada", "budget.set", "churn", "gpu", {"amount": 100}, 1),
            Change(OPENED, "cli:ada", "silence.create", "vision", "x", {}, 2),
            Change(OPENED, "SIGHUP", "config.reload", None, "mlmon.yaml", {}, 3),
        ],
    )
    out = build_audit(inputs)
    assert [(p["project"], p["configured"]) for p in out["projects"]] == [("churn", True), ("legacy", False)]
    assert out["summary"]["counts"] == {"open": 0, "overdue": 2, "fixed": 0, "ignored": 0}  # due 2026-02-01
    assert out["summary"]["compliance"]["overdue"] == 2 and out["summary"]["compliance"]["rate"] == 0.0
    assert [c["id"] for c in out["changes"]] == [1, 3]  # vision is not in the report
    assert out["evidence"] == {
        "advisory_feed_state": "never fetched by 2026-02-20T00:00:00+00:00",
        "advisories": None,
        "feeds": [],
    }
    # findings are evidence of a scan even without an inventory; nobody is "not scanned" here
    assert [p["scanned"] for p in out["projects"]] == [True, True] and out["summary"]["not_scanned"] == []
    assert out["projects"][0]["findings"][0]["aliases"] == ["GHSA-53q9-r3pm-6pq6", "PYSEC-2025-41"]
    assert out["projects"][0]["findings"][0]["days_exposed"] == 50.0
