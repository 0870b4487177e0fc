"""The audit report as CSV, one table per file: `findings` (default), `packages`, `compliance`, `changes`.

Every row carries its project's columns (and the report's `as_of`), so each file stands alone
in a spreadsheet. Lists are joined with "; ". Text that a spreadsheet would run as a formula
(starting with =, +, -, @, tab or carriage return; advisory summaries and change details come
from outside) is prefixed with an apostrophe, as OWASP advises for CSV exports.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

CSV_TABLES = ("findings", "packages", "compliance", "changes")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

FINDING_COLUMNS = (
    "as_of",
    "project",
    "project_name",
    "team",
    "owners",
    "finding",
    "package",
    "versions",
    "variant",
    "id",
    "aliases",
    "severity",
    "score",
    "state",
    "fixed_in",
    "fix_available_at",
    "sla_seconds",
    "due_at",
    "first_seen_at",
    "exposed_since",
    "fixed_at",
    "resolution",
    "days_exposed",
    "days_overdue",
    "status",
    "sla",
    "ignore_reason",
    "ignore_expires",
    "ignore_state",
    "advisory_revision",
    "summary",
)
PACKAGE_COLUMNS = ("as_of", "project", "team", "package", "version", "sources", "since", "variant", "accelerator")
COMPLIANCE_COLUMNS = (
    "as_of",
    "project",
    "project_name",
    "team",
    "owners",
    "torch",
    "scanned",
    "open",
    "overdue",
    "fixed",
    "ignored",
    "sla_met",
    "sla_missed",
    "sla_within",
    "sla_overdue",
    "sla_excepted",
    "sla_none",
    "sla_judged",
    "compliance",
    "inventory_read_at",
    "advisories_refreshed_at",
)
CHANGE_COLUMNS = ("id", "at", "actor", "action", "project", "target", "details")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = "; ".join(str(v) for v in value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def owners_text(owners: Sequence[Mapping[str, Any]]) -> str:
    """`Ada <ada@example.com> (@ada); Alan (#vision-oncall)`."""
    parts = []
    for owner in owners:
        text = str(owner["name"])
        if owner.get("email"):
            text += f" <{owner['email']}>"
        if owner.get("slack"):
            text += f" ({owner['slack']})"
        parts.append(text)
    return "; ".join(parts)


def _findings(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for project in doc["projects"]:
        base = {
            "as_of": doc["as_of"],
            "project": project["project"],
            "project_name": project["name"],
            "team": project["team"],
            "owners": owners_text(project["owners"]),
        }
        for finding in project["findings"]:
            ignore = finding["ignore"] or {}
            yield {
                **base,
                **{k: finding[k] for k in FINDING_COLUMNS if k in finding},
                "ignore_reason": ignore.get("reason"),
                "ignore_expires": ignore.get("expires"),
                "ignore_state": ignore.get("state"),
            }


def _packages(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for project in doc["projects"]:
        builds = {t["version"]: t for t in project["torch"]}
        for pkg in project["packages"]:
            build = builds.get(pkg["version"]) if pkg["package"] == "torch" else None
            yield {
                "as_of": doc["as_of"],
                "project": project["project"],
                "team": project["team"],
                **pkg,
                "variant": build["variant"] if build else None,
                "accelerator": build["accelerator"] if build else None,
            }


def _compliance_row(doc: Mapping[str, Any], head: Mapping[str, Any], counts: Mapping[str, int],
                    sla: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    advisories = doc["evidence"]["advisories"]
    return {
        "as_of": doc["as_of"],
        **head,
        # a project never scanned has no counts (blank), not zeros
        **{k: counts[k] if head.get("scanned", True) else None for k in ("open", "overdue", "fixed", "ignored")},
        **{f"sla_{k}": sla[k] for k in ("met", "missed", "within", "overdue", "excepted", "none", "judged")},
        "compliance": sla["rate"],
        "advisories_refreshed_at": advisories["refreshed_at"] if advisories else None,
    }


def _compliance(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for project in doc["projects"]:
        read = [s["inventory_read_at"] for s in project["sources"] if s["inventory_read_at"]]
        head = {
            "project": project["project"],
            "project_name": project["name"],
            "team": project["team"],
            "owners": owners_text(project["owners"]),
            "torch": [t["version"] for t in project["torch"]],
            "scanned": project["scanned"],
            "inventory_read_at": min(read) if read else None,
        }
        yield _compliance_row(doc, head, project["counts"], project["compliance"])
    summary = doc["summary"]
    yield _compliance_row(doc, {"project": "(all projects)"}, summary["counts"], summary["compliance"])


def _changes(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for change in doc["changes"]:
        yield {**change, "details": json.dumps(change["details"], sort_keys=True, ensure_ascii=False)}


_TABLES: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any]], Iterator[dict[str, Any]]]]] = {
    "findings": (FINDING_COLUMNS, _findings),
    "packages": (PACKAGE_COLUMNS, _packages),
    "compliance": (COMPLIANCE_COLUMNS, _compliance),
    "changes": (CHANGE_COLUMNS, _changes),
}


def render_csv(doc: Mapping[str, Any], what: str = "findings") -> str:
    """One table of the report as CSV text (with a header row)."""
    if what not in _TABLES:
        raise ValueError(f"unknown CSV table {what!r}: expected one of {', '.join(CSV_TABLES)}")
    columns, rows = _TABLES[what]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows(doc):
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return out.getvalue()
