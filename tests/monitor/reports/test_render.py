"""JSON, CSV and HTML renderings of a report replayed from a real history."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from monitor.reports.audit import build_audit
from monitor.reports.audit_inputs import AuditInputs, ProjectInfo
from monitor.reports.audit_loader import audit_report
from monitor.reports.render_csv import CHANGE_COLUMNS, COMPLIANCE_COLUMNS, FINDING_COLUMNS, PACKAGE_COLUMNS, render_csv
from monitor.reports.render_html import render_html
from monitor.reports.render_json import render_json, stdlib_json
from monitor.stack.evidence import FindingEvent, FindingRecord
from tests.monitor.reports.conftest import NOW, T1, Timeline

C = datetime(2026, 4, 1, 12, tzinfo=UTC)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """Collects what the checks need and every nesting error."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.errors: list[str] = []
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.open[-1] if self.open else 'nothing'}> at {self.getpos()}")
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        (self.style if self.open and self.open[-1] == "style" else self.text).append(data)

    @property
    def ids(self) -> list[str]:
        return [a["id"] or "" for _, a in self.attrs if a.get("id")]


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    assert not page.errors and not page.open, (page.errors, page.open)
    return page


@pytest.fixture
def past(sqlite_timeline: Timeline) -> dict[str, Any]:
    """The report at C: fixed in time, fixed late, overdue after an expired ignore, no-fix findings."""
    return audit_report(sqlite_timeline.store, sqlite_timeline.runtime.config, NOW, as_of=C, since=T1)


def findings(doc: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, f) for p in doc["projects"] for f in p["findings"]]


def test_json_round_trip(past: dict[str, Any]) -> None:
    assert json.loads(render_json(past)) == past
    assert json.loads(render_json(past, indent=True)) == past
    assert "\n" not in render_json(past) and render_json(past, indent=True).startswith('{\n  "report": "audit"')
    # the standard library's encoding (used without orjson) says the same
    assert json.loads(stdlib_json(past)) == past == json.loads(stdlib_json(past, indent=True))


def test_csv_findings_one_row_per_finding_with_project_columns(past: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(past))))
    expected = findings(past)
    assert len(rows) == len(expected) == 6
    assert list(rows[0]) == list(FINDING_COLUMNS)
    for row, (project, finding) in zip(rows, expected, strict=True):
        assert row["as_of"] == C.isoformat() and row["project"] == project["project"]
        assert row["team"] == (project["team"] or "") and row["project_name"] == project["name"]
        for key in ("id", "package", "severity", "status", "sla", "fixed_in", "due_at", "first_seen_at", "fixed_at"):
            assert row[key] == (finding[key] or ""), key
        assert row["aliases"] == "; ".join(finding["aliases"])
        assert row["days_exposed"] == str(finding["days_exposed"])
        ignore = finding["ignore"] or {}
        assert (row["ignore_reason"], row["ignore_state"]) == (ignore.get("reason", ""), ignore.get("state", ""))
    churn = next(r for r in rows if r["project"] == "churn")
    assert churn["owners"] == "Ada <ada@example.com> (@ada)"
    vision = next(r for r in rows if r["project"] == "vision" and r["id"] == "CVE-2026-24747")
    assert (
        vision["status"] == "overdue"
        and vision["ignore_state"] == "expired"
        and vision["ignore_expires"] == "2026-03-31"
    )


def test_csv_other_tables(past: dict[str, Any]) -> None:
    packages = list(csv.DictReader(io.StringIO(render_csv(past, "packages"))))
    assert list(packages[0]) == list(PACKAGE_COLUMNS)
    assert len(packages) == sum(len(p["packages"]) for p in past["projects"]) == 5
    torch = next(r for r in packages if r["project"] == "vision" and r["package"] == "torch")
    assert (torch["version"], torch["variant"], torch["accelerator"]) == ("2.6.0+cu124", "cuda", "12.4")

    table = list(csv.DictReader(io.StringIO(render_csv(past, "compliance"))))
    assert list(table[0]) == list(COMPLIANCE_COLUMNS)
    assert [r["project"] for r in table] == ["billing", "churn", "ranker", "vision", "(all projects)"]
    assert [r["compliance"] for r in table] == ["", "1.0", "0.0", "0.0", "0.3333"]
    assert table[-1]["sla_judged"] == "3" and table[-1]["fixed"] == "4" and table[-1]["overdue"] == "1"

    changes = list(csv.DictReader(io.StringIO(render_csv(past, "changes"))))
    assert list(changes[0]) == list(CHANGE_COLUMNS) and len(changes) == len(past["changes"])
    token = next(r for r in changes if r["action"] == "token.create")
    assert json.loads(token["details"]) == {"role": "auditor", "projects": []} and token["actor"] == "ops-admin"

    with pytest.raises(ValueError, match="unknown CSV table 'nope'"):
        render_csv(past, "nope")


def hostile_report() -> dict[str, Any]:
    """Text from outside (advisory summaries, owner names, change details) that must stay text."""
    at = datetime(2026, 3, 1, tzinfo=UTC)
    record = FindingRecord(
        id=1, project="churn", package="torch", vuln_id="CVE-2099-0001", ids=("CVE-2099-0001",), versions=("2.5.1",),
        variant=None, state="affected", severity="high", score=8.1, summary="=HYPERLINK(\"http://x\")<script>x</script>",
        fixed_in=None, fix_available_at=None, published=None, exposed_since=at, first_seen_at=at, resolved_at=None,
        resolution=None, advisory_revision=1, events=(FindingEvent(at, "opened", {}),),
    )  # fmt: skip
    from monitor.store.changes import Change

    return build_audit(
        AuditInputs(
            generated_at=at + timedelta(days=1),
            as_of=at + timedelta(days=1),
            since=at - timedelta(days=1),
            current=False,
            history_starts_at=at,
            sla={"high": timedelta(days=30)},
            projects=[ProjectInfo("churn", "<b>Churn</b>", "-growth", ({"name": "@ada <img src=x>", "email": None},))],
            findings=[record],
            changes=[Change(at, "+actor", "note", "churn", "@target", {"text": "</td></tr>"}, 1)],
        )  # fmt: skip
    )


def test_csv_neutralises_formulas() -> None:
    doc = hostile_report()
    row = next(csv.DictReader(io.StringIO(render_csv(doc))))
    assert row["summary"].startswith("'=HYPERLINK") and row["team"] == "'-growth"
    assert row["owners"] == "'@ada <img src=x>"
    change = next(csv.DictReader(io.StringIO(render_csv(doc, "changes"))))
    assert (change["actor"], change["target"]) == ("'+actor", "'@target")


def test_html_has_every_project_finding_and_package(past: dict[str, Any]) -> None:
    html = render_html(past)
    page = parse(html)
    assert page.doctype.lower() == "doctype html" and page.tags["title"] == 1
    ids = page.ids
    assert len(ids) == len(set(ids))
    assert {f"project-{p['project']}" for p in past["projects"]} <= set(ids)
    text = " ".join(" ".join(page.text).split())
    for project, finding in findings(past):
        assert finding["id"] in text and project["name"] in text
        for alias in finding["aliases"]:
            assert alias in text
    for project in past["projects"]:
        for pkg in project["packages"]:
            assert f"{pkg['package']} {pkg['version']}" in text
    for change in past["changes"]:
        assert change["action"] in text
    assert "torch.load runs only on weights we sign; INFRA-42" in text and "(expired)" in text
    assert "33.3%" in text  # overall compliance, 1 of 3
    # summary table up front: one row per project, in the first section
    summary = html.index('class="summary-table"')
    assert summary < html.index('<section class="project"')
    assert html.count('<section class="project"') == len(past["projects"])


def test_html_print_stylesheet() -> None:
    page = parse(render_html(hostile_report()))
    style = re.sub(r"\s+", " ", " ".join(page.style))
    assert re.search(r"@page \{ size: A4 landscape; margin: [^;]+;", style)
    assert "counter(page)" in style and "counter(pages)" in style
    assert "thead { display: table-header-group; }" in style  # headers repeat on every printed page
    assert re.search(r"tr, img \{ break-inside: avoid; page-break-inside: avoid; \}", style)
    assert re.search(r"section\.project, section\.changes \{ break-before: page; page-break-before: always; \}", style)
    assert "print-color-adjust: exact" in style and "@media print" in style
    # nothing is fetched from elsewhere
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert all("src" not in attrs for _, attrs in page.attrs)
    assert all((attrs.get("href") or "#").startswith("#") for _, attrs in page.attrs)
    assert "url(" not in style and "@import" not in style


def test_html_escapes_text_from_outside() -> None:
    page = parse(render_html(hostile_report()))
    text = " ".join(page.text)
    assert "<script>x</script>" in text and "@ada <img src=x>" in text and "<b>Churn</b>" in text
    assert "</td></tr>" in text
