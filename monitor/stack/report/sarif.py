"""SARIF 2.1.0 output: one rule per vulnerability (aliases merged), one result per affected package
per target, located at the lock file line (or the environment) the package was read from.

Ignored findings are results with an accepted external suppression carrying the reason and the
expiry; undetermined findings are `note`-level results with the unparseable bound in the message.
`security-severity` carries the CVSS score (the property code scanning sorts on).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from monitor import __version__
from monitor.stack.findings import Finding, variant
from monitor.stack.findings import locations as locations_of
from monitor.stack.scan import ScanReport

SCHEMA = "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json"
_LEVELS = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "none": "note",
    "unknown": "warning",
}


def _uri(path: str) -> str:
    target = Path(path)
    try:
        return target.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return target.resolve().as_uri()


def _level(finding: Finding) -> str:
    return "note" if finding.state == "undetermined" else _LEVELS.get(finding.rating, "warning")


def _message(target: str, finding: Finding, build: str | None) -> str:
    variant = f" ({build})" if build else ""
    others = [i for i in finding.ids if i != finding.key]
    aliases = f" ({', '.join(others)})" if others else ""
    state = "may be affected (undetermined)" if finding.state == "undetermined" else "is affected"
    fix = f" Fixed in {finding.fixed_in}." if finding.fixed_in else " No known fix."
    hint = f" {finding.fix_hint}." if finding.fix_hint else ""
    why = ""
    if finding.state == "undetermined":
        reasons = [m.reason for m in finding.members if m.verdict == "undetermined" and m.reason]
        why = f" {reasons[0]}." if reasons else ""
    return (
        f"{target}: {finding.package} {', '.join(finding.versions)}{variant} {state} by "
        f"{finding.key}{aliases}: {finding.summary.strip() or 'no summary'}.{fix}{hint}{why}"
    )


def _rule(finding: Finding) -> dict[str, Any]:
    properties: dict[str, Any] = {"tags": ["security", "vulnerability", finding.package], "ids": list(finding.ids)}
    if finding.score is not None:
        properties["security-severity"] = f"{finding.score:.1f}"
    return {
        "id": finding.key,
        "name": finding.key.replace("-", ""),
        "shortDescription": {"text": finding.summary.strip() or finding.key},
        "fullDescription": {"text": f"{finding.key} ({', '.join(finding.ids)}), severity {finding.rating}"},
        "helpUri": f"https://osv.dev/vulnerability/{finding.key}",
        "defaultConfiguration": {"level": _LEVELS.get(finding.rating, "warning")},
        "properties": properties,
    }


def render_sarif(report: ScanReport) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for target, finding in report.all_findings():
        if finding.key not in rules:
            rules[finding.key] = _rule(finding)
        rule_index = list(rules).index(finding.key)
        locations = []
        for loc in locations_of(target.inventory, finding.package):
            physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(loc.origin)}}
            if loc.line:
                physical["region"] = {"startLine": loc.line}
            locations.append({"physicalLocation": physical})
        if not locations:
            locations.append({"physicalLocation": {"artifactLocation": {"uri": _uri(target.inventory.location)}}})
        fingerprint = hashlib.sha256(f"{target.name}|{finding.package}|{finding.key}".encode()).hexdigest()[:32]
        result: dict[str, Any] = {
            "ruleId": finding.key,
            "ruleIndex": rule_index,
            "level": _level(finding),
            "message": {"text": _message(target.name, finding, variant(target.inventory, finding.package))},
            "locations": locations,
            "partialFingerprints": {"mlmonFinding/v1": fingerprint},
            "properties": {
                "package": finding.package,
                "versions": list(finding.versions),
                "state": finding.state,
                "severity": finding.rating,
                "fixedIn": finding.fixed_in,
                "fixState": finding.fix_state,
                "variant": variant(target.inventory, finding.package),
                "target": target.name,
            },
        }
        if finding.ignore is not None:
            # `status` (errata 01) and `state` (CS01) name the same thing in the two published
            # 2.1.0 schemas; leaving both out is valid under either and means "accepted".
            result["suppressions"] = [
                {
                    "kind": "external",
                    "justification": f"{finding.ignore.reason} (until {finding.ignore.expires.isoformat()}, "
                    f"ignore {finding.ignore.id} in {finding.ignore.origin or 'configuration'})",
                    "properties": finding.ignore.to_doc(),
                }
            ]
        results.append(result)
    adv = report.advisories
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mlmon",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "endTimeUtc": report.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "toolExecutionNotifications": [
                            {
                                "level": "warning",
                                "message": {"text": f"advisory record rejected: {r.where}: {r.reason}"},
                            }
                            for r in adv.rejected
                        ],
                    }
                ],
                "properties": {
                    "advisories": {"source": adv.source, "kind": adv.kind, "records": len(adv.advisories)},
                    "expiredIgnores": [r.to_doc() for r in report.expired_ignores],
                },
            }
        ],
    }
